{{/*
KEDA ScaledObject on the queue's depth, instead of the CPU HPA (KEDA then owns the HPA).
identityOwner "operator": KEDA's own IAM role reads the queue attributes; "pod": KEDA assumes
this service's IRSA role through a TriggerAuthentication.
*/}}
{{- define "common.keda" -}}
{{- $keda := .Values.keda | default dict -}}
{{- if $keda.enabled -}}
{{- if eq $keda.identityOwner "pod" }}
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: {{ include "common.names.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels: {{- include "common.labels.standard" . | nindent 4 }}
spec:
  podIdentity:
    provider: aws
    roleArn: {{ required "serviceAccount.irsaRoleArn is needed when keda.identityOwner is pod" .Values.serviceAccount.irsaRoleArn | quote }}
---
{{- end }}
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {{ include "common.names.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels: {{- include "common.labels.standard" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "common.names.fullname" . }}
  minReplicaCount: {{ $keda.minReplicas }}
  maxReplicaCount: {{ $keda.maxReplicas }}
  pollingInterval: {{ $keda.pollingInterval }}
  cooldownPeriod: {{ $keda.cooldownPeriod }}
  advanced:
    horizontalPodAutoscalerConfig:
      behavior: {{- toYaml .Values.autoscaling.behavior | nindent 8 }}
  triggers:
    - type: aws-sqs-queue
      metadata:
        queueURL: {{ required "keda.queueURL: the SQS queue's URL" $keda.queueURL | quote }}
        queueLength: {{ $keda.queueLength | quote }}
        awsRegion: {{ required "keda.awsRegion" $keda.awsRegion | quote }}
        {{- if eq $keda.identityOwner "operator" }}
        identityOwner: operator
        {{- end }}
      {{- if eq $keda.identityOwner "pod" }}
      authenticationRef:
        name: {{ include "common.names.fullname" . }}
      {{- end }}
{{- end -}}
{{- end -}}
