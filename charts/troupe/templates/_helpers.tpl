{{/* The chart's name, or nameOverride. */}}
{{- define "troupe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object's name: the release name when it already holds
the chart's name (release "troupe" gives troupe-manager, troupe-host), else
release-chart. Truncated so that the longest suffix (-manager-leader-election)
still fits in 63 characters.
*/}}
{{- define "troupe.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 38 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 38 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 38 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "troupe.manager.fullname" -}}{{ include "troupe.fullname" . }}-manager{{- end }}
{{- define "troupe.host.fullname" -}}{{ include "troupe.fullname" . }}-host{{- end }}
{{- define "troupe.gateway.fullname" -}}{{ include "troupe.fullname" . }}-gateway{{- end }}

{{/* Labels of every object. */}}
{{- define "troupe.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "troupe.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: troupe
{{- end }}

{{- define "troupe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "troupe.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels and selector labels of the manager's and the host's objects. */}}
{{- define "troupe.manager.labels" -}}
{{ include "troupe.labels" . }}
app.kubernetes.io/component: manager
{{- end }}
{{- define "troupe.manager.selectorLabels" -}}
{{ include "troupe.selectorLabels" . }}
app.kubernetes.io/component: manager
{{- end }}
{{- define "troupe.host.labels" -}}
{{ include "troupe.labels" . }}
app.kubernetes.io/component: host
{{- end }}
{{- define "troupe.host.selectorLabels" -}}
{{ include "troupe.selectorLabels" . }}
app.kubernetes.io/component: host
{{- end }}

{{- define "troupe.gateway.labels" -}}
{{ include "troupe.labels" . }}
app.kubernetes.io/component: gateway
{{- end }}
{{- define "troupe.gateway.selectorLabels" -}}
{{ include "troupe.selectorLabels" . }}
app.kubernetes.io/component: gateway
{{- end }}

{{/* The service accounts they run as. */}}
{{- define "troupe.manager.serviceAccountName" -}}
{{- if .Values.manager.serviceAccount.create }}
{{- default (include "troupe.manager.fullname" .) .Values.manager.serviceAccount.name }}
{{- else }}
{{- required "manager.serviceAccount.name is required when manager.serviceAccount.create is false" .Values.manager.serviceAccount.name }}
{{- end }}
{{- end }}
{{- define "troupe.host.serviceAccountName" -}}
{{- if .Values.host.serviceAccount.create }}
{{- default (include "troupe.host.fullname" .) .Values.host.serviceAccount.name }}
{{- else }}
{{- required "host.serviceAccount.name is required when host.serviceAccount.create is false" .Values.host.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "troupe.gateway.serviceAccountName" -}}
{{- if .Values.gateway.serviceAccount.create }}
{{- default (include "troupe.gateway.fullname" .) .Values.gateway.serviceAccount.name }}
{{- else }}
{{- required "gateway.serviceAccount.name is required when gateway.serviceAccount.create is false" .Values.gateway.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The one image of both: /manager and /host are two of its binaries. */}}
{{- define "troupe.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}

{{/*
The leader election Lease's name: the manager's default
(--leader-election-id), which its Role names too.
*/}}
{{- define "troupe.leaderElectionID" -}}troupe-manager.theater.troupe.dev{{- end }}

{{/*
The archive's store, as the host and the manager take it (the same flags,
internal/objstore's Flags): nothing when archive.enabled is false.
*/}}
{{- define "troupe.archive.storeArgs" -}}
{{- with .Values.archive }}
{{- if .enabled }}
{{- if not .bucket }}{{ fail "archive.bucket is required when archive.enabled is true" }}{{ end }}
- --archive-bucket={{ .bucket }}
{{- with .endpoint }}
- --archive-endpoint={{ . }}
{{- end }}
{{- with .prefix }}
- --archive-prefix={{ . }}
{{- end }}
{{- with .region }}
- --archive-region={{ . }}
{{- end }}
{{- if .pathStyle }}
- --archive-path-style
{{- end }}
{{- if .insecure }}
- --archive-insecure
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The archive's credentials: from archive.credentialsSecret as the AWS
variables, which the binaries read (never a flag: flags show in the pod
spec and in ps). No Secret: the AWS chain (IRSA, instance metadata).
*/}}
{{- define "troupe.archive.env" -}}
{{- with .Values.archive }}
{{- if and .enabled .credentialsSecret.name }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .credentialsSecret.name }}
      key: {{ .credentialsSecret.accessKeyIDKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .credentialsSecret.name }}
      key: {{ .credentialsSecret.secretAccessKeyKey }}
{{- with .credentialsSecret.sessionTokenKey }}
- name: AWS_SESSION_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.archive.credentialsSecret.name }}
      key: {{ . }}
      optional: true
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
A quantity value as a flag takes it: a string as it is, a number (--set
archive.localTail=-1) as an integer, never in a float's exponent form.
*/}}
{{- define "troupe.quantity" -}}
{{- if kindIs "string" . }}{{ . }}{{ else }}{{ . | int64 }}{{ end }}
{{- end }}
