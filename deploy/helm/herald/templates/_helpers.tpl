{{/* The chart's name. */}}
{{- define "herald.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's resource name. */}}
{{- define "herald.fullname" -}}
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

{{- define "herald.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "herald.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "herald.selectorLabels" -}}
app.kubernetes.io/name: {{ include "herald.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "herald.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "herald.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret with admin-token, encryption-key and, in postgres mode, database-url. */}}
{{- define "herald.secretName" -}}
{{- .Values.secret.existingSecret | default (include "herald.fullname" .) }}
{{- end }}

{{/* Where the PersistentVolumeClaim is mounted in sqlite mode; HERALD_DB is herald.db in it. */}}
{{- define "herald.dataDir" -}}
/var/lib/herald
{{- end }}

{{/* Fails the render on values that cannot work. */}}
{{- define "herald.validate" -}}
{{- if not (has .Values.mode (list "sqlite" "postgres")) }}
{{- fail (printf "mode must be sqlite or postgres, not %q" .Values.mode) }}
{{- end }}
{{- if not .Values.secret.existingSecret }}
{{- if not (and .Values.secret.adminToken .Values.secret.encryptionKey) }}
{{- fail "set secret.adminToken and secret.encryptionKey, or secret.existingSecret: Herald's admin token and the key that seals endpoint secrets come from a Secret" }}
{{- end }}
{{- if and (eq .Values.mode "postgres") (not .Values.secret.databaseURL) }}
{{- fail "mode postgres needs secret.databaseURL (postgres://…), or secret.existingSecret with a database-url key" }}
{{- end }}
{{- end }}
{{- if eq .Values.mode "sqlite" }}
{{- if .Values.autoscaling.enabled }}
{{- fail "autoscaling needs mode postgres: on SQLite exactly one Herald may open the database" }}
{{- end }}
{{- if .Values.secret.databaseURL }}
{{- fail "secret.databaseURL is for mode postgres; mode sqlite keeps the database on the volume" }}
{{- end }}
{{- end }}
{{- if and .Values.secret.adminToken (lt (len .Values.secret.adminToken) 16) }}
{{- fail "secret.adminToken must be at least 16 characters" }}
{{- end }}
{{- if and (not .Values.image.tag) (eq .Chart.AppVersion "dev") }}
{{- fail "set image.tag to the Herald release to run (for example 1.2.3): the chart in the repository names no released image of its own" }}
{{- end }}
{{- end }}
