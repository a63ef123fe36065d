{{- define "common.serviceaccount" -}}
{{- if .Values.serviceAccount.create -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "common.names.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
  labels: {{- include "common.labels.standard" . | nindent 4 }}
  {{- if or .Values.serviceAccount.irsaRoleArn .Values.serviceAccount.annotations }}
  annotations:
    {{- with .Values.serviceAccount.irsaRoleArn }}
    # IAM role for service accounts: AWS access without static keys.
    eks.amazonaws.com/role-arn: {{ . | quote }}
    {{- end }}
    {{- with .Values.serviceAccount.annotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
# Pods mount no Kubernetes API token (IRSA's web-identity token is projected separately).
automountServiceAccountToken: false
{{- end -}}
{{- end -}}
