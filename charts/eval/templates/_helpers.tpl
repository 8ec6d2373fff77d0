{{/*
Helpers shared by every manifest of the chart. The Argo templates themselves are plain YAML under
files/ (never run through Helm's template engine, so `{{workflow.parameters.study}}` is written
literally); these helpers only add infrastructure to them: image, resources, GPUs, node pool,
security context, scratch volumes and storage credentials.
*/}}

{{- define "ldmscale.labels" -}}
app.kubernetes.io/name: ldmscale
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "ldmscale.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{/*
ldmscale.job: the pod settings of one job kind, .Values.jobs.<kind> merged over
.Values.jobDefaults, as JSON. Arguments (a dict): kind, root.
*/}}
{{- define "ldmscale.job" -}}
{{- $v := .root.Values -}}
{{- if not (hasKey $v.jobs .kind) -}}
{{- fail (printf "no jobs.%s in the values; the job kinds are %s" .kind (keys $v.jobs | sortAlpha | join ", ")) -}}
{{- end -}}
{{- toJson (mergeOverwrite (deepCopy $v.jobDefaults) (deepCopy (index $v.jobs .kind))) -}}
{{- end -}}

{{/*
ldmscale.pod: give one pod its infrastructure, in place. Arguments (a dict):
  pod        an Argo template (container templates) or a Kubernetes PodSpec (podSpec: true)
  container  the job's container inside it
  kind       a key of .Values.jobs (plan, prepare, train, eval, merge, analyze, check)
  podSpec    true for a Kubernetes PodSpec (adds imagePullSecrets, which Argo sets per workflow)
  root       the chart's root context
Renders nothing.
*/}}
{{- define "ldmscale.pod" -}}
{{- $v := .root.Values -}}
{{- $job := include "ldmscale.job" (dict "kind" .kind "root" .root) | fromJson -}}
{{- $pod := .pod -}}
{{- $c := .container -}}
{{- $gpus := int $job.gpus -}}
{{- $_ := set $c "image" (include "ldmscale.image" .root) -}}
{{- $_ = set $c "imagePullPolicy" $v.image.pullPolicy -}}
{{- /* Extended resources (GPUs) must request exactly what they limit. */ -}}
{{- $resources := deepCopy $job.resources -}}
{{- if gt $gpus 0 -}}
{{- $_ = set $resources.requests $v.gpu.resourceName (toString $gpus) -}}
{{- $_ = set $resources.limits $v.gpu.resourceName (toString $gpus) -}}
{{- end -}}
{{- $_ = set $c "resources" $resources -}}
{{- $_ = set $c "securityContext" (dict
      "allowPrivilegeEscalation" false
      "readOnlyRootFilesystem" $job.readOnlyRootFilesystem
      "runAsNonRoot" true
      "capabilities" (dict "drop" (list "ALL"))) -}}
{{- $env := concat (list (dict "name" "GPUS_PER_NODE" "value" (toString (max $gpus 1)))) ($c.env | default list) -}}
{{- range $name, $key := $v.storage.secretKeys -}}
{{- $ref := dict "name" $v.storage.existingSecret "key" $key -}}
{{- $env = append $env (dict "name" $name "valueFrom" (dict "secretKeyRef" $ref)) -}}
{{- end -}}
{{- $_ = set $c "env" $env -}}
{{- $envFrom := list (dict "configMapRef" (dict "name" "ldmscale-defaults")) -}}
{{- if not $v.storage.secretKeys -}}
{{- $envFrom = append $envFrom (dict "secretRef" (dict "name" $v.storage.existingSecret)) -}}
{{- end -}}
{{- $_ = set $c "envFrom" $envFrom -}}
{{- $_ = set $c "volumeMounts" (concat ($c.volumeMounts | default list) (list
      (dict "name" "tmp" "mountPath" "/tmp")
      (dict "name" "cache" "mountPath" "/cache")
      (dict "name" "dshm" "mountPath" "/dev/shm"))) -}}
{{- $_ = set $pod "volumes" (concat ($pod.volumes | default list) (list
      (dict "name" "tmp" "emptyDir" (dict "sizeLimit" $job.tmp))
      (dict "name" "cache" "emptyDir" (dict "sizeLimit" $job.cache))
      (dict "name" "dshm" "emptyDir" (dict "medium" "Memory" "sizeLimit" $job.shm)))) -}}
{{- $_ = set $pod "securityContext" (dict
      "runAsNonRoot" true "runAsUser" 1000 "runAsGroup" 1000 "fsGroup" 1000
      "seccompProfile" (dict "type" "RuntimeDefault")) -}}
{{- $selector := deepCopy ($job.nodeSelector | default dict) -}}
{{- $tolerations := $job.tolerations | default list -}}
{{- if gt $gpus 0 -}}
{{- $selector = merge $selector ($v.gpu.nodeSelector | default dict) -}}
{{- $tolerations = concat ($v.gpu.tolerations | default list) $tolerations -}}
{{- end -}}
{{- if $selector -}}
{{- $_ = set $pod "nodeSelector" $selector -}}
{{- end -}}
{{- if $tolerations -}}
{{- $_ = set $pod "tolerations" $tolerations -}}
{{- end -}}
{{- if and .podSpec $v.image.pullSecrets -}}
{{- $secrets := list -}}
{{- range $v.image.pullSecrets -}}
{{- $secrets = append $secrets (dict "name" .) -}}
{{- end -}}
{{- $_ = set $pod "imagePullSecrets" $secrets -}}
{{- end -}}
{{- end -}}

{{/*
ldmscale.load: parse a YAML file of the chart (files/...) or fail naming it.
*/}}
{{- define "ldmscale.load" -}}
{{- $doc := .root.Files.Get .path | fromYaml -}}
{{- if or (not $doc) (hasKey $doc "Error") -}}
{{- fail (printf "%s is not valid YAML: %v" .path ($doc | default dict).Error) -}}
{{- end -}}
{{- toJson $doc -}}
{{- end -}}
