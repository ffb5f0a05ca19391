{{- define "shardwarden.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "shardwarden.labels" -}}
app.kubernetes.io/name: shardwarden-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: shardwarden
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "shardwarden.selectorLabels" -}}
app.kubernetes.io/name: shardwarden-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "shardwarden.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "shardwarden.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{/* The rules the operator needs on DiscordBots and the objects it owns. */}}
{{- define "shardwarden.rules" -}}
- apiGroups: ["shardwarden.io"]
  resources: ["discordbots"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["shardwarden.io"]
  resources: ["discordbots/status"]
  verbs: ["get", "patch"]
# Owned objects name their bot with blockOwnerDeletion; where the
# OwnerReferencesPermissionEnforcement admission plugin is on, setting it needs this.
- apiGroups: ["shardwarden.io"]
  resources: ["discordbots/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["secrets"]
  {{- if .Values.rbac.keda }}
  # KEDA wants host:port and a password where the bot's Secret holds a URL: the operator
  # derives a Secret (<bot>-keda-redis) from it, and deletes it when the bot leaves KEDA.
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
  {{- else }}
  verbs: ["get", "list", "watch"]
  {{- end }}
- apiGroups: [""]
  resources: ["services", "configmaps"]
  verbs: ["get", "list", "watch", "create", "patch"]
# The public Service goes when worker.publicUrl is unset; a worker metrics Service with a
# virtual IP (older releases) is deleted to be created again headless.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["delete"]
- apiGroups: ["apps"]
  resources: ["statefulsets", "deployments"]
  verbs: ["get", "list", "watch", "create", "patch"]
# One PodDisruptionBudget per gateway generation (deleted with it) and one for the workers.
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- if .Values.rbac.keda }}
- apiGroups: ["keda.sh"]
  resources: ["scaledobjects", "triggerauthentications"]
  verbs: ["get", "create", "patch", "delete"]
{{- end }}
{{- end -}}
