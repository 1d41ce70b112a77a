{{- define "relaywatch.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "relaywatch.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "relaywatch.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "relaywatch.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "relaywatch.databaseSecret" -}}
{{- if .Values.database.existingSecret -}}{{ .Values.database.existingSecret }}{{- else -}}{{ include "relaywatch.fullname" . }}-database{{- end -}}
{{- end -}}

{{- define "relaywatch.databaseSecretKey" -}}
{{- if .Values.database.existingSecret -}}{{ .Values.database.existingSecretKey }}{{- else -}}database-url{{- end -}}
{{- end -}}

{{- define "relaywatch.signingSecret" -}}
{{- if .Values.signingSecret.existingSecret -}}{{ .Values.signingSecret.existingSecret }}{{- else -}}{{ include "relaywatch.fullname" . }}-signing{{- end -}}
{{- end -}}

{{- define "relaywatch.signingSecretKey" -}}
{{- if .Values.signingSecret.existingSecret -}}{{ .Values.signingSecret.existingSecretKey }}{{- else -}}signing-secret{{- end -}}
{{- end -}}

{{/* The environment both roles share: database, signing secret, data dir and extra settings. */}}
{{- define "relaywatch.env" -}}
- name: RELAYWATCH_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "relaywatch.databaseSecret" . }}
      key: {{ include "relaywatch.databaseSecretKey" . }}
- name: RELAYWATCH_SIGNING_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "relaywatch.signingSecret" . }}
      key: {{ include "relaywatch.signingSecretKey" . }}
- name: RELAYWATCH_DATA_DIR
  value: /var/lib/relaywatch
{{- range $k, $v := .Values.env }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- end -}}
