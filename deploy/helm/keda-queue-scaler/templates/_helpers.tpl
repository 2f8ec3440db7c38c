{{/* Chart name, truncated to a DNS label. */}}
{{- define "keda-queue-scaler.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of every object: the release name when it already contains the chart name, so that
`helm install keda-queue-scaler ... -n keda` gives keda-queue-scaler.keda.svc.cluster.local.
*/}}
{{- define "keda-queue-scaler.fullname" -}}
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

{{- define "keda-queue-scaler.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the pods (Service, PDB, NetworkPolicy, spread constraints). */}}
{{- define "keda-queue-scaler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keda-queue-scaler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: external-scaler
{{- end }}

{{- define "keda-queue-scaler.labels" -}}
helm.sh/chart: {{ include "keda-queue-scaler.chart" . }}
{{ include "keda-queue-scaler.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: keda
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "keda-queue-scaler.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "keda-queue-scaler.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "keda-queue-scaler.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Where TLS files and the profiles file are mounted. */}}
{{- define "keda-queue-scaler.tlsDir" -}}/etc/keda-queue-scaler/tls{{- end }}
{{- define "keda-queue-scaler.clientCADir" -}}/etc/keda-queue-scaler/client-ca{{- end }}
{{- define "keda-queue-scaler.profilesDir" -}}/etc/keda-queue-scaler/profiles{{- end }}

{{/* The scaler's address for trigger metadata. */}}
{{- define "keda-queue-scaler.address" -}}
{{- printf "%s.%s.svc.cluster.local:%v" (include "keda-queue-scaler.fullname" .) .Release.Namespace .Values.ports.grpc }}
{{- end }}

{{/*
One probe: native gRPC on the gRPC port, or a TCP check when the port speaks TLS (the kubelet's
gRPC probes are plaintext only). Call with (dict "root" $ "probe" <settings> "service" <name>).
*/}}
{{- define "keda-queue-scaler.probe" -}}
grpc:
  {{- /* kubelet gRPC probes speak plaintext only: with TLS they use the health-only port */}}
  port: {{ if .root.Values.tls.enabled }}{{ .root.Values.ports.health }}{{ else }}{{ .root.Values.ports.grpc }}{{ end }}
  {{- with .service }}
  service: {{ . }}
  {{- end }}
{{- toYaml .probe | nindent 0 }}
{{- end }}
