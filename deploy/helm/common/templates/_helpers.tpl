{{/* "true" when an autoscaler (the HPA or KEDA's) owns the replica count, else "". */}}
{{- define "common.autoscaled" -}}
{{- $keda := .Values.keda | default dict -}}
{{- if or .Values.autoscaling.enabled $keda.enabled -}}true{{- end -}}
{{- end -}}

{{/* The HPA is rendered only when KEDA is off: KEDA creates its own HPA for a ScaledObject. */}}
{{- define "common.hpa.enabled" -}}
{{- $keda := .Values.keda | default dict -}}
{{- if and .Values.autoscaling.enabled (not $keda.enabled) -}}true{{- end -}}
{{- end -}}

{{/*
Termination grace: after SIGTERM the pod sleeps in preStop (endpoints drain), then the app
has GRACEFUL_TIMEOUT_SECONDS to finish, and a consumer may first have to return from a long
poll. A grace period that does not cover all three kills work in flight, so refuse it.
*/}}
{{- define "common.terminationGracePeriodSeconds" -}}
{{- $needed := add .Values.preStopSleepSeconds .Values.gracefulTimeoutSeconds -}}
{{- if .Values.consumer -}}
{{- $needed = add $needed .Values.sqsWaitSeconds -}}
{{- end -}}
{{- if le (int .Values.terminationGracePeriodSeconds) (int $needed) -}}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed preStopSleepSeconds + gracefulTimeoutSeconds%s = %v" .Values.terminationGracePeriodSeconds (ternary " + sqsWaitSeconds" "" (eq .Values.consumer true)) $needed) -}}
{{- end -}}
{{- .Values.terminationGracePeriodSeconds -}}
{{- end -}}

{{/* The non-secret environment, shared by the ConfigMap and its checksum annotation. */}}
{{- define "common.configmap.data" -}}
APP_ENV: "production"
HOST: "0.0.0.0"
PORT: {{ .Values.containerPort | quote }}
LOG_LEVEL: {{ .Values.logLevel | quote }}
GRACEFUL_TIMEOUT_SECONDS: {{ .Values.gracefulTimeoutSeconds | quote }}
{{- if .Values.consumer }}
SQS_WAIT_SECONDS: {{ .Values.sqsWaitSeconds | quote }}
{{- end }}
{{- range $name, $value := .Values.env }}
{{ $name }}: {{ tpl (toString $value) $ | quote }}
{{- end }}
{{- end -}}
