{{/* The Secret holding the metrics server's certificate: cert-manager's, an existing one, or none (self-signed). */}}
{{- define "token-operator.metricsCertSecret" -}}
{{- if .Values.metrics.enabled }}
{{- if and .Values.metrics.certManager.enabled .Values.metrics.certSecret }}
{{- fail "metrics.certManager.enabled and metrics.certSecret: set one" }}
{{- end }}
{{- if and (or .Values.metrics.certManager.enabled .Values.metrics.certSecret) (not .Values.metrics.secure) }}
{{- fail "metrics.certManager and metrics.certSecret need metrics.secure: a certificate is served over HTTPS only" }}
{{- end }}
{{- if .Values.metrics.certManager.enabled }}
{{- printf "%s-metrics-cert" (include "token-operator.fullname" .) }}
{{- else }}
{{- .Values.metrics.certSecret }}
{{- end }}
{{- end }}
{{- end }}

{{/* The DNS name scrapers reach the metrics Service by, which its certificate names. */}}
{{- define "token-operator.metricsServerName" -}}
{{- printf "%s-metrics.%s.svc" (include "token-operator.fullname" .) .Release.Namespace }}
{{- end }}
