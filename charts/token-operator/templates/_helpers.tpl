{{/* Name of the chart, overridable. */}}
{{- define "token-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, with the chart name unless it already holds it. */}}
{{- define "token-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "token-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "token-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "token-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "token-operator.labels" -}}
helm.sh/chart: {{ include "token-operator.chart" . }}
{{ include "token-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "token-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "token-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image: repository@digest when image.digest is set, else repository:tag. */}}
{{- define "token-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}

{{/* Secure metrics need the metrics server's TokenReview and SubjectAccessReview rights. */}}
{{- define "token-operator.secureMetrics" -}}
{{- if and .Values.metrics.enabled .Values.metrics.secure }}true{{ end }}
{{- end }}

{{/*
A manager flag from a value: a line "- --flag=value" of the manager's args
(indented for deployment.yaml) when the value is set, also to
a zero (0, false, 0s), which means something for several flags ("no limit");
nothing when the key is missing, null or an empty string. Whole numbers print
as integers (YAML numbers arrive as floats).
Usage: include "token-operator.flag" (list .Values "key" "flag-name")
*/}}
{{- define "token-operator.flag" -}}
{{- $values := index . 0 }}
{{- $key := index . 1 }}
{{- if hasKey $values $key }}
{{- $v := index $values $key }}
{{- if and (kindIs "float64" $v) (eq (float64 (int64 $v)) $v) }}
{{- $v = int64 $v }}
{{- end }}
{{- if not (or (kindIs "invalid" $v) (and (kindIs "string" $v) (eq $v ""))) }}
{{- printf "- %s" (printf "--%s=%v" (index . 2) $v | quote) | nindent 8 }}
{{- end }}
{{- end }}
{{- end }}

{{/* The leader-election Lease: one per release, so that releases in one namespace (shards) never share it. */}}
{{- define "token-operator.leaseName" -}}
{{- .Values.leaderElection.leaseName | default (printf "%s-leader-election" (include "token-operator.fullname" .)) }}
{{- end }}

{{/* A probe of the health port: path, and the timings of the value without its enabled switch. */}}
{{- define "token-operator.probe" -}}
{{- $probe := index . 0 -}}
httpGet:
  path: {{ index . 1 }}
  port: health
{{- with omit $probe "enabled" }}
{{ toYaml . }}
{{- end }}
{{- end }}
