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
{{- include "gca.validateExtraTokens" . -}}
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

{{/* Values of the seed's chart (its deployment guide) that were renamed or dropped: `helm install` and
`helm template` fail naming the key to use instead, never silently ignoring what an operator set.
`replicaCount` and every other seed key (gitlab.*, github.*, jira.*, jobRunner.*, telemetry.*,
serviceAccount.*, image.*) still work as the guide documents them. */}}
{{- define "gca.seedValues" -}}
{{- $renamed := dict
  "port" "api.port"
  "logLevel" "logLevel (top level)"
  "taskExecutor" "taskExecutor (top level)"
  "copilotModel" "copilot.model"
  "copilotProviderType" "copilot.providerType"
  "copilotProviderBaseUrl" "copilot.providerBaseUrl"
  "copilotProviderApiKey" "copilot.providerApiKey"
  "copilotPlugins" "extraEnv with COPILOT_PLUGINS"
  "copilotPluginMarketplaces" "extraEnv with COPILOT_PLUGIN_MARKETPLACES"
  "resources" "api.resources and worker.resources (the controller is now two Deployments)"
  "stateBackend" "nothing: Temporal holds all state (docs/adr/0001); remove controller.stateBackend"
  "dispatchBackend" "nothing: agent runs are Temporal activities, in the worker or a Kubernetes Job (taskExecutor); remove controller.dispatchBackend"
-}}
{{- range $key, $value := (.Values.controller | default dict) -}}
{{- if hasKey $renamed $key -}}
{{- fail (printf "controller.%s is a value of the seed's chart: use %s (docs/migration-from-seed.md)" $key (get $renamed $key)) -}}
{{- else -}}
{{- fail (printf "controller.%s is not a value of this chart: the seed's controller is now api.* and worker.* (docs/migration-from-seed.md)" $key) -}}
{{- end -}}
{{- end -}}
{{- if .Values.redis -}}
{{- fail "redis.* is a value of the seed's chart: there is no Redis any more, Temporal holds all state (docs/adr/0001); remove redis" -}}
{{- end -}}
{{- end -}}

{{/* Replicas of one component: the seed's top-level replicaCount, when set, sizes both. */}}
{{- define "gca.replicas" -}}
{{- $component := index . 1 -}}
{{- with index . 0 -}}
{{- if kindIs "invalid" .Values.replicaCount -}}
{{- (get .Values $component).replicaCount -}}
{{- else -}}
{{- .Values.replicaCount -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Pod-spec scheduling and host entries of one of the chart's own pods: (list $ "api"). The
top-level values apply to every pod of the chart (API, worker, bootstrap); a component's own
nodeSelector and podAnnotations are merged over them, its tolerations added, its affinity replaces. */}}
{{- define "gca.podPlacement" -}}
{{- $root := index . 0 -}}
{{- $own := get $root.Values (index . 1) | default dict -}}
{{- with $root.Values.hostAliases }}
hostAliases:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- $selector := merge (deepCopy ($own.nodeSelector | default dict)) ($root.Values.nodeSelector | default dict) -}}
{{- with $selector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- $tolerations := concat ($root.Values.tolerations | default list) ($own.tolerations | default list) -}}
{{- with $tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with ($own.affinity | default $root.Values.affinity) }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "gca.podAnnotations" -}}
{{- $root := index . 0 -}}
{{- $own := get $root.Values (index . 1) | default dict -}}
{{- with merge (deepCopy ($own.podAnnotations | default dict)) ($root.Values.podAnnotations | default dict) }}
{{- toYaml . }}
{{- end }}
{{- end -}}

{{/* The operator's own environment, after the chart's (so extraEnvFrom overrides the ConfigMap and
extraEnv overrides everything): settings the chart does not map, or values from your own Secrets. */}}
{{- define "gca.extraEnvFrom" -}}
{{- with .Values.extraEnvFrom }}
{{- toYaml . }}
{{- end }}
{{- end -}}

{{- define "gca.extraEnv" -}}
{{- with .Values.extraEnv }}
{{- toYaml . }}
{{- end }}
{{- end -}}

{{/* GITLAB_TOKEN__<ALIAS> of each gitlab.extraTokens entry, from a Secret key (never the ConfigMap).
Not optional: a key that is missing stops the pod with the Secret and key named. */}}
{{- define "gca.extraTokenEnv" -}}
{{- $root := . -}}
{{- range .Values.gitlab.extraTokens }}
{{- $name := printf "GITLAB_TOKEN__%s" (upper .alias) }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secretName | default (include "gca.secretName" $root) }}
      key: {{ .secretKey | default $name }}
{{- end }}
{{- end -}}

{{/* gitlab.extraTokens: each alias once, and a `token` only where the chart writes the Secret. */}}
{{- define "gca.validateExtraTokens" -}}
{{- $seen := dict -}}
{{- range .Values.gitlab.extraTokens -}}
{{- $alias := upper .alias -}}
{{- if eq $alias "DEFAULT" -}}
{{- fail "gitlab.extraTokens: alias default is GITLAB_TOKEN; set gitlab.token instead" -}}
{{- end -}}
{{- if hasKey $seen $alias -}}
{{- fail (printf "gitlab.extraTokens: alias %s is listed twice (aliases are case-insensitive)" .alias) -}}
{{- end -}}
{{- $_ := set $seen $alias true -}}
{{- if and .token (or .secretName $.Values.secrets.existingSecret) -}}
{{- fail (printf "gitlab.extraTokens %s: token is written to the chart's Secret, which is not used with secretName or secrets.existingSecret; put the token in that Secret instead" .alias) -}}
{{- end -}}
{{- end -}}
{{- end -}}
