{{/*
The chart's name, at most 63 characters (a DNS label).
*/}}
{{- define "zentralink.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The full name of the release's objects: the release name, followed by the
chart's name unless the release name already contains it. At most 63
characters, since some Kubernetes names are DNS labels.
*/}}
{{- define "zentralink.fullname" -}}
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

{{/*
The full name cut to 50 characters, the stem of the names that get a
suffix (-operator, -webhook-tls, ...): they stay within 63 characters and
distinct from each other.
*/}}
{{- define "zentralink.baseName" -}}
{{- include "zentralink.fullname" . | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{/*
The chart label: name and version.
*/}}
{{- define "zentralink.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The labels of every object of the release.
*/}}
{{- define "zentralink.labels" -}}
helm.sh/chart: {{ include "zentralink.chart" . }}
{{ include "zentralink.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: zentralink
{{- end -}}

{{/*
The labels that select the release's pods (never changed on upgrade: a
Deployment's selector is immutable). Each component adds
app.kubernetes.io/component.
*/}}
{{- define "zentralink.selectorLabels" -}}
app.kubernetes.io/name: {{ include "zentralink.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
The operator's Deployment, its pods and its PodDisruptionBudget.
*/}}
{{- define "zentralink.operatorName" -}}
{{- printf "%s-operator" (include "zentralink.baseName" .) -}}
{{- end -}}

{{/*
The web service's Deployment and Service.
*/}}
{{- define "zentralink.webName" -}}
{{- printf "%s-web" (include "zentralink.baseName" .) -}}
{{- end -}}

{{/*
The Service the API server sends admission requests to.
*/}}
{{- define "zentralink.webhookServiceName" -}}
{{- printf "%s-webhook" (include "zentralink.baseName" .) -}}
{{- end -}}

{{/*
The Service in front of the operator's /metrics.
*/}}
{{- define "zentralink.metricsServiceName" -}}
{{- printf "%s-metrics" (include "zentralink.baseName" .) -}}
{{- end -}}

{{/*
The ServiceAccount the operator (and the web service) runs as.
*/}}
{{- define "zentralink.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "zentralink.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false: name an existing ServiceAccount" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The ValidatingWebhookConfiguration's name.
*/}}
{{- define "zentralink.validatingWebhookName" -}}
{{- default (include "zentralink.fullname" .) .Values.admission.validatingWebhookConfigurationName -}}
{{- end -}}

{{/*
The MutatingWebhookConfiguration's name.
*/}}
{{- define "zentralink.mutatingWebhookName" -}}
{{- default (include "zentralink.fullname" .) .Values.admission.mutatingWebhookConfigurationName -}}
{{- end -}}

{{/*
The cert-manager Certificate of the webhook, its Secret and its Issuer.
*/}}
{{- define "zentralink.certificateName" -}}
{{- printf "%s-webhook" (include "zentralink.baseName" .) -}}
{{- end -}}

{{- define "zentralink.tlsSecretName" -}}
{{- printf "%s-webhook-tls" (include "zentralink.baseName" .) -}}
{{- end -}}

{{- define "zentralink.issuerName" -}}
{{- printf "%s-selfsigned" (include "zentralink.baseName" .) -}}
{{- end -}}

{{/*
The image of both components: the tag defaults to the chart's appVersion.
*/}}
{{- define "zentralink.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) -}}
{{- end -}}

{{/*
The Secret holding DATABASE_URL and its key: an existing Secret, or the
one the chart makes from database.url.
*/}}
{{- define "zentralink.databaseSecretName" -}}
{{- if .Values.database.existingSecret -}}
{{- .Values.database.existingSecret -}}
{{- else if .Values.database.url -}}
{{- printf "%s-database" (include "zentralink.baseName" .) -}}
{{- else -}}
{{- required "database.existingSecret or database.url is required: name a Secret holding the PostgreSQL URL, or give the URL and the chart makes the Secret" .Values.database.url -}}
{{- end -}}
{{- end -}}

{{- define "zentralink.databaseSecretKey" -}}
{{- if .Values.database.existingSecret -}}
{{- required "database.existingSecretKey is required: the key of database.existingSecret that holds the URL" .Values.database.existingSecretKey -}}
{{- else -}}
DATABASE_URL
{{- end -}}
{{- end -}}

{{/*
The environment both components share: the database URL and the platform
encryption key, each from a Secret.
*/}}
{{- define "zentralink.env" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "zentralink.databaseSecretName" . | quote }}
      key: {{ include "zentralink.databaseSecretKey" . | quote }}
- name: PLATFORM_ENCRYPTION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ required "encryptionKey.existingSecret is required: create a Secret holding the key (`zentralink secrets generate-key`) and name it here" .Values.encryptionKey.existingSecret | quote }}
      key: {{ required "encryptionKey.existingSecretKey is required: the key of encryptionKey.existingSecret that holds the encryption key" .Values.encryptionKey.existingSecretKey | quote }}
{{- end -}}
