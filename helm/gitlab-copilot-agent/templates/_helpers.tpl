{{/* Chart name, possibly overridden. */}}
{{- define "gca.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name; the release name alone when it already contains the chart name.
At most 48 characters, so every object named "<fullname>-<component>" (the longest component suffix
is "-otel-collector", 15) stays within the 63 of a Service name or a Job's pod label. A longer name
is cut to 39 and gets "-" and 8 hex of its SHA-256, so two long release names never collide. */}}
{{- define "gca.fullname" -}}
{{- $full := "" -}}
{{- if .Values.fullnameOverride -}}
{{- $full = .Values.fullnameOverride -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- $full = .Release.Name -}}
{{- else -}}
{{- $full = printf "%s-%s" .Release.Name $name -}}
{{- end -}}
{{- end -}}
{{- if gt (len $full) 48 -}}
{{- printf "%s-%s" ($full | trunc 39 | trimSuffix "-") ($full | sha256sum | trunc 8) -}}
{{- else -}}
{{- $full | trimSuffix "-" -}}
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

{{/* host:port of the Temporal frontend: explicit address (Temporal Cloud, an existing cluster, the
official chart as its own release), else the in-chart dev server. */}}
{{- define "gca.temporalAddress" -}}
{{- if .Values.temporal.enabled -}}
{{- fail "temporal.enabled=true: the Temporal chart is no longer a subchart. Install it as its own release (docs/deployment.md, helm/temporal-values.yaml) and set temporal.address, or use temporalDev.enabled=true" -}}
{{- else if .Values.temporal.address -}}
{{- .Values.temporal.address -}}
{{- else if .Values.temporalDev.enabled -}}
{{- printf "%s-temporal-dev:7233" (include "gca.fullname" .) -}}
{{- else -}}
{{- fail "temporal.address is required when temporalDev.enabled=false (host:port of Temporal Cloud or your cluster's frontend)" -}}
{{- end -}}
{{- end -}}

{{/* Combinations the schema cannot express, failed with what to do (included by the ConfigMap). */}}
{{- define "gca.validate" -}}
{{- if and .Values.codecServer.enabled (not .Values.secrets.existingSecret) -}}
{{- if not .Values.codecServer.token -}}
{{- fail "codecServer.enabled needs codecServer.token (or CODEC_SERVER_TOKEN in secrets.existingSecret)" -}}
{{- end -}}
{{- if not .Values.payloadEncryption.keys -}}
{{- fail "codecServer.enabled needs payloadEncryption.keys (or PAYLOAD_ENCRYPTION_KEYS in secrets.existingSecret): without encryption there is nothing to decode" -}}
{{- end -}}
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
    # Readable by the pod's group (fsGroup) only; mounted into the API, worker and bootstrap pods,
    # never into agent Jobs (they mount no Secret at all).
    defaultMode: 0440
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
