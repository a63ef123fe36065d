{{/*
Default deny both ways for this service's pods, then allow: its callers and the monitoring
namespace (metrics) on its port; egress to DNS, PostgreSQL, the in-cluster services it calls
and the outside ports it needs (SQS, SES, STS for IRSA, the CRM).
*/}}
{{- define "common.networkpolicy" -}}
{{- if .Values.networkPolicy.enabled -}}
{{- $np := .Values.networkPolicy -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "common.names.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels: {{- include "common.labels.standard" . | nindent 4 }}
spec:
  podSelector:
    matchLabels: {{- include "common.labels.matchLabels" . | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    {{- range $np.ingress.fromPods }}
    - from:
        - podSelector:
            matchLabels: {{- toYaml . | nindent 14 }}
      ports:
        - port: http
          protocol: TCP
    {{- end }}
    {{- with concat $np.ingress.fromCidrs (.Values.albSubnetCidrs | default list) }}
    - from:
        {{- range . }}
        - ipBlock:
            cidr: {{ . }}
        {{- end }}
      ports:
        - port: http
          protocol: TCP
    {{- end }}
    {{- with $np.ingress.monitoringNamespace }}
    - from:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ . }}
      ports:
        - port: http
          protocol: TCP
    {{- end }}
  egress:
    - to:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ $np.egress.dnsNamespace }}
      ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
    {{- range $np.egress.toPods }}
    - to:
        - podSelector:
            matchLabels: {{- toYaml .matchLabels | nindent 14 }}
      ports:
        - port: {{ .port }}
          protocol: TCP
    {{- end }}
    {{- with $np.egress.postgres }}
    {{- if .cidrs }}
    - to:
        {{- range .cidrs }}
        - ipBlock:
            cidr: {{ . }}
        {{- end }}
      ports:
        - port: {{ .port }}
          protocol: TCP
    {{- end }}
    {{- end }}
    {{- with $np.egress.external }}
    {{- if .ports }}
    - to:
        {{- range .cidrs }}
        - ipBlock:
            cidr: {{ . }}
        {{- end }}
      ports:
        {{- range .ports }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
    {{- end }}
    {{- end }}
{{- end -}}
{{- end -}}
