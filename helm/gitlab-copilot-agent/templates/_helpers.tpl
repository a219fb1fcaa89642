{{/* Chart name, possibly overridden. */}}
{{- define "gca.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name; the release name alone when it already contains the chart name. */}}
{{- define "gca.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "gca.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "gca.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "gca.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gca.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector labels of one component: (list $ "api"). */}}
{{- define "gca.componentSelector" -}}
{{ include "gca.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "gca.componentLabels" -}}
{{ include "gca.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "gca.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "gca.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gca.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "gca.secretName" -}}
{{- default (include "gca.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* The Temporal subchart's fullname, computed the way the official chart does. */}}
{{- define "gca.temporalFullname" -}}
{{- if .Values.temporal.fullnameOverride -}}
{{- .Values.temporal.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default "temporal" .Values.temporal.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* host:port of the Temporal frontend: explicit address, else the dev server, else the subchart. */}}
{{- define "gca.temporalAddress" -}}
{{- if .Values.temporal.address -}}
{{- .Values.temporal.address -}}
{{- else if .Values.temporalDev.enabled -}}
{{- printf "%s-temporal-dev:7233" (include "gca.fullname" .) -}}
{{- else if .Values.temporal.enabled -}}
{{- printf "%s-frontend:7233" (include "gca.temporalFullname" .) -}}
{{- else -}}
{{- fail "temporal.address is required when temporal.enabled=false and temporalDev.enabled=false" -}}
{{- end -}}
{{- end -}}

{{- define "gca.otlpEndpoint" -}}
{{- if .Values.telemetry.otlpEndpoint -}}
{{- .Values.telemetry.otlpEndpoint -}}
{{- else if .Values.telemetry.collector.enabled -}}
{{- printf "http://%s-otel-collector:4318" (include "gca.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Pod-level security context meeting the Pod Security "restricted" profile. */}}
{{- define "gca.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
fsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "gca.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* An env entry from the Secret; optional so a Secret may leave out what a deployment does not use. */}}
{{- define "gca.secretEnv" -}}
- name: {{ index . 1 }}
  valueFrom:
    secretKeyRef:
      name: {{ include "gca.secretName" (index . 0) }}
      key: {{ index . 1 }}
      optional: true
{{- end -}}

{{/* Volume and mount of the Temporal client certificates, when configured. */}}
{{- define "gca.temporalTlsVolume" -}}
{{- if .Values.temporal.tls.existingSecret }}
- name: temporal-tls
  secret:
    secretName: {{ .Values.temporal.tls.existingSecret }}
{{- end }}
{{- end -}}

{{- define "gca.temporalTlsMount" -}}
{{- if .Values.temporal.tls.existingSecret }}
- name: temporal-tls
  mountPath: /etc/temporal-tls
  readOnly: true
{{- end }}
{{- end -}}

{{- define "gca.metricsAnnotations" -}}
{{- if .Values.metrics.enabled }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.metrics.port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}
