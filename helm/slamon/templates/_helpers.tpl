{{/* Names, labels and the parts the shards and the API share. */}}

{{- define "slamon.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, at most 46 characters: the StatefulSet (full name + -shard) must stay
within 52, as its controller-revision-hash label adds 11 characters to the name (63 at most). */}}
{{- define "slamon.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 46 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 46 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 46 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "slamon.selectorLabels" -}}
app.kubernetes.io/name: {{ include "slamon.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Every object's labels. part-of is always "slamon": the ServiceMonitors take the job label from
it, and the alert rules select job="slamon" (SlamonServiceDown). */}}
{{- define "slamon.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "slamon.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: slamon
{{- end }}

{{- define "slamon.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "slamon.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "slamon.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "slamon.configMapName" -}}
{{- default (printf "%s-config" (include "slamon.fullname" .)) .Values.config.existingConfigMap }}
{{- end }}

{{- define "slamon.secretName" -}}
{{- default (printf "%s-database" (include "slamon.fullname" .)) .Values.database.existingSecret }}
{{- end }}

{{/* The key of the password in the Secret, or "" when there is none. */}}
{{- define "slamon.passwordKey" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.passwordKey }}
{{- else if .Values.database.password }}
{{- "password" }}
{{- end }}
{{- end }}

{{/* Stops the render with a message when the values cannot make a working release. */}}
{{- define "slamon.validate" -}}
{{- if not (or .Values.database.existingSecret .Values.database.url) }}
{{- fail "database: set database.url (the chart creates a Secret) or database.existingSecret: slamon's pods share one PostgreSQL" }}
{{- end }}
{{- if and .Values.database.existingSecret (or .Values.database.url .Values.database.password) }}
{{- fail "database: database.url and database.password are for the Secret the chart creates; with database.existingSecret put them in that Secret" }}
{{- end }}
{{- if not .Values.config.existingConfigMap }}
{{- if not .Values.config.inventory }}
{{- fail "config: set config.inventory (the inventory's text) and config.contracts, or name config.existingConfigMap" }}
{{- end }}
{{- if not .Values.config.contracts }}
{{- fail "config: config.contracts needs at least one contract (file name -> text)" }}
{{- end }}
{{- range $key := list "listen" "journal" "inventory" "contracts" "exclusions" }}
{{- if hasKey $.Values.config.settings $key }}
{{- fail (printf "config.settings.%s: the chart sets %s itself (see README.md)" $key $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The globs of the contract files in the ConfigMap (contract-NAME), one per suffix used: each
glob must match a file. */}}
{{- define "slamon.contractGlobs" -}}
{{- $globs := list }}
{{- range $suffix := list "yaml" "yml" }}
{{- range $name, $_ := $.Values.config.contracts }}
{{- if hasSuffix (printf ".%s" $suffix) $name }}
{{- $globs = append $globs (printf "contract-*.%s" $suffix) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml (uniq $globs) }}
{{- end }}

{{/* slamon.yaml as the chart writes it: the settings and what the chart decides. */}}
{{- define "slamon.configYaml" -}}
{{- $own := dict "listen" (printf "0.0.0.0:%d" (int .Values.port)) "journal" "/var/lib/slamon/journal" "inventory" (printf "inventory.%s" .Values.config.inventoryFormat) "contracts" (include "slamon.contractGlobs" . | fromYamlArray) }}
{{- if .Values.config.exclusions }}
{{- $_ := set $own "exclusions" "exclusions.yaml" }}
{{- end }}
{{- toYaml (merge $own (deepCopy .Values.config.settings)) }}
{{- end }}

{{/* Pod annotations that roll the pods when the config or the chart's Secret change. */}}
{{- define "slamon.checksums" -}}
{{- if not .Values.config.existingConfigMap }}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}
{{- if not .Values.database.existingSecret }}
checksum/database: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end }}

{{/* The container's environment: the config's path, the store's URL and password, a writable HOME. */}}
{{- define "slamon.env" -}}
- name: SLAMON_CONFIG
  value: /etc/slamon/slamon.yaml
- name: HOME
  value: /tmp
- name: SLAMON_DATABASE
  valueFrom:
    secretKeyRef:
      name: {{ include "slamon.secretName" . }}
      key: {{ .Values.database.urlKey }}
{{- with include "slamon.passwordKey" . }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "slamon.secretName" $ }}
      key: {{ . }}
{{- end }}
{{- with .Values.env }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "slamon.volumeMounts" -}}
- name: config
  mountPath: /etc/slamon
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "slamon.volumes" -}}
- name: config
  configMap:
    name: {{ include "slamon.configMapName" . }}
- name: tmp
  emptyDir: {}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Placement of a pod: called with the component's values (.Values.shards or .Values.api). */}}
{{- define "slamon.placement" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
