"""The structural schema of every kind pyk8s serves, written once.

Field names, JSON types, formats and list/patch annotations are upstream's
(they are the wire contract); the descriptions are the project's own short
words. Everything that needs to know the shape of an object reads this one
table: the unknown-field and type checks (`schema.unknown_fields`,
`schema.type_errors`) and the OpenAPI v3 documents that `kubectl explain` and
`kubectl apply` read (`controlplane/apiserver/openapi.py`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType

from controlplane.api.resources import RESOURCES, ResourceType
from controlplane.api.schema import reviews
from controlplane.api.schema.build import (
    APPS,
    BATCH,
    COORDINATION,
    CORE,
    DISCOVERY,
    INT_OR_STRING,
    META,
    QUANTITY,
    RAW_EXTENSION,
    Schema,
    arr,
    boolean,
    int_or_string,
    integer,
    map_of,
    obj,
    open_object,
    quantity,
    quantity_map,
    ref,
    refs,
    string,
    string_map,
    strings,
    time,
)

_API_VERSION = string("Schema version of this object, such as v1 or apps/v1.")
_KIND = string("Kind of this object, such as Pod; CamelCase.")
_METADATA = ref(META + "ObjectMeta", "Name, namespace, labels, annotations and bookkeeping of the object.",
                default={})
_LIST_METADATA = ref(META + "ListMeta", "Version and paging information of the list.", default={})


def _cond(name: str, what: str, *, probe: bool = False, update: bool = False, heartbeat: bool = False,
          generation: bool = False) -> dict[str, Schema]:
    """A `<Kind>Condition` definition: type/status/reason/message and timestamps."""
    props: dict[str, Schema] = {
        "type": string(f"Kind of {what} condition.", default=""),
        "status": string("True, False or Unknown.", default=""),
        "reason": string("One-word CamelCase cause of the last transition."),
        "message": string("Human-readable details of the last transition."),
        "lastTransitionTime": time("When the status last changed."),
    }
    if probe:
        props["lastProbeTime"] = time("When the condition was last checked.")
    if update:
        props["lastUpdateTime"] = time("When the condition was last refreshed.")
    if heartbeat:
        props["lastHeartbeatTime"] = time("When the node last reported this condition.")
    if generation:
        props["observedGeneration"] = integer("metadata.generation the condition was computed from.", "int64")
    return {name: obj(f"One observed condition of a {what}.", props, ["type", "status"])}


def _conditions(name: str, what: str, *, list_map: bool = True) -> Schema:
    if list_map:
        return refs(name, f"Latest observations of the {what}'s state.", keys=["type"], merge_key="type")
    return refs(name, f"Latest observations of the {what}'s state.", list_type="atomic", merge_key="type")


def _meta() -> dict[str, Schema]:
    m = META
    return {
        m + "Time": {"type": "string", "format": "date-time",
                     "description": "A timestamp in RFC 3339 form with second precision, in UTC."},
        m + "MicroTime": {"type": "string", "format": "date-time",
                          "description": "A timestamp in RFC 3339 form with microsecond precision."},
        QUANTITY: {"description": "An amount of a resource, such as 100m, 2, 512Mi or 1.5Gi.",
                   "oneOf": [{"type": "string"}, {"type": "number"}]},
        INT_OR_STRING: {"description": "Either a number or a string, such as 8080 or \"http\" or \"25%\".",
                        "format": "int-or-string", "x-kubernetes-int-or-string": True,
                        "oneOf": [{"type": "integer"}, {"type": "string"}]},
        RAW_EXTENSION: open_object("An embedded object kept as the client sent it."),
        m + "ObjectMeta": obj("Identity and bookkeeping shared by every stored object.", {
            "name": string("Unique name within the namespace (or the cluster for cluster-wide kinds)."),
            "generateName": string("Prefix for a server-generated name when name is empty."),
            "namespace": string("Namespace the object lives in; empty for cluster-wide kinds."),
            "selfLink": string("Deprecated; never set."),
            "uid": string("Unique id the server assigns at creation; never reused."),
            "resourceVersion": string("Opaque version of the object, for optimistic concurrency and watches."),
            "generation": integer("Sequence number of changes to the desired state.", "int64"),
            "creationTimestamp": time("When the server stored the object first."),
            "deletionTimestamp": time("When a graceful deletion was requested; read-only."),
            "deletionGracePeriodSeconds": integer("Seconds left for graceful termination.", "int64"),
            "labels": string_map("Key/value pairs that selectors match."),
            "annotations": string_map("Free-form key/value metadata for tools; not used for selection."),
            "ownerReferences": refs(m + "OwnerReference", "Objects this one depends on; garbage collected "
                                    "when all owners are gone.", keys=["uid"], merge_key="uid"),
            "finalizers": strings("Conditions that must clear before the object is removed.", list_type="set",
                                  strategy="merge"),
            "managedFields": refs(m + "ManagedFieldsEntry", "Which manager owns which fields "
                                  "(server-side apply).", list_type="atomic"),
        }),
        m + "ListMeta": obj("Version and paging information of a list.", {
            "selfLink": string("Deprecated; never set."),
            "resourceVersion": string("Version of the collection the list was read at."),
            "continue": string("Token for the next page when the list was limited."),
            "remainingItemCount": integer("Items left after this page, when known.", "int64"),
        }),
        m + "OwnerReference": obj("Points at an owning object in the same namespace.", {
            "apiVersion": string("Schema version of the owner.", default=""),
            "kind": string("Kind of the owner.", default=""),
            "name": string("Name of the owner.", default=""),
            "uid": string("UID of the owner.", default=""),
            "controller": boolean("True for the one owner that manages this object."),
            "blockOwnerDeletion": boolean("Foreground deletion of the owner waits for this object."),
        }, ["apiVersion", "kind", "name", "uid"], atomic=True),
        m + "ManagedFieldsEntry": obj("The fields one manager set through one operation.", {
            "manager": string("Name of the manager."),
            "operation": string("Apply or Update."),
            "apiVersion": string("Version the fields are expressed in."),
            "time": time("When the manager last changed these fields."),
            "fieldsType": string("Format of fieldsV1; always FieldsV1."),
            "fieldsV1": open_object("The set of owned fields, as a trie of field keys."),
            "subresource": string("Subresource the fields were written through, if any."),
        }),
        m + "LabelSelector": obj("Selects objects by label; all requirements must hold (AND).", {
            "matchLabels": string_map("Labels that must be equal to these values."),
            "matchExpressions": refs(m + "LabelSelectorRequirement", "Set-based requirements.",
                                     list_type="atomic"),
        }, atomic=True),
        m + "LabelSelectorRequirement": obj("One set-based label requirement.", {
            "key": string("Label key.", default=""),
            "operator": string("In, NotIn, Exists or DoesNotExist.", default=""),
            "values": strings("Values for In and NotIn; empty for Exists and DoesNotExist."),
        }, ["key", "operator"]),
        m + "Condition": obj("A generic observed condition.", {
            "type": string("Kind of condition, CamelCase.", default=""),
            "status": string("True, False or Unknown.", default=""),
            "observedGeneration": integer("metadata.generation the condition was computed from.", "int64"),
            "lastTransitionTime": time("When the status last changed."),
            "reason": string("One-word CamelCase cause of the last transition.", default=""),
            "message": string("Human-readable details.", default=""),
        }, ["type", "status", "lastTransitionTime", "reason", "message"]),
    }


def _request_meta() -> dict[str, Schema]:
    """The kinds of request and error bodies that the OpenAPI operations name: DeleteOptions, Patch,
    Status and autoscaling/v1 Scale."""
    m = META
    scale = "io.k8s.api.autoscaling.v1."
    return {
        m + "DeleteOptions": obj("Options of a delete.", {
            "apiVersion": _API_VERSION, "kind": _KIND,
            "dryRun": strings("All: run every stage without persisting the result."),
            "gracePeriodSeconds": integer("Seconds before the object is deleted; 0 deletes at once.", "int64"),
            "orphanDependents": boolean("Deprecated: orphan the dependents instead of deleting them."),
            "preconditions": ref(m + "Preconditions", "What must hold for the delete to go ahead."),
            "propagationPolicy": string("Orphan, Background or Foreground: what happens to the dependents."),
        }, gvk=("", "v1", "DeleteOptions")),
        m + "Preconditions": obj("Conditions the object must meet before it is deleted.", {
            "resourceVersion": string("The object's resourceVersion must be this."),
            "uid": string("The object's uid must be this."),
        }),
        m + "Patch": {"type": "object", "description": "The body of a PATCH request: a JSON patch, a merge "
                      "patch, a strategic merge patch or an apply configuration."},
        m + "Status": obj("The result of a request that returns no object: a failure or a deletion.", {
            "apiVersion": _API_VERSION, "kind": _KIND,
            "metadata": ref(m + "ListMeta", "Standard list metadata.", default={}),
            "status": string("Success or Failure."),
            "message": string("Human-readable description of the status."),
            "reason": string("Machine-readable CamelCase reason of a failure."),
            "details": ref(m + "StatusDetails", "What the reason refers to."),
            "code": integer("The HTTP status code of the answer."),
        }, gvk=("", "v1", "Status")),
        m + "StatusDetails": obj("The object a Status refers to, and the causes of a failure.", {
            "name": string("Name of the object."),
            "group": string("API group of the object."),
            "kind": string("Kind (resource) of the object."),
            "uid": string("UID of the object."),
            "causes": refs(m + "StatusCause", "Field-level causes of a failure.", list_type="atomic"),
            "retryAfterSeconds": integer("Seconds to wait before a retry."),
        }),
        m + "StatusCause": obj("One cause of a failure.", {
            "reason": string("Machine-readable reason, such as FieldValueInvalid."),
            "message": string("Human-readable description of the cause."),
            "field": string("The field that caused the failure, such as spec.replicas."),
        }),
        scale + "Scale": obj("The desired and observed replica count of a scalable object.", {
            "apiVersion": _API_VERSION, "kind": _KIND, "metadata": _METADATA,
            "spec": ref(scale + "ScaleSpec", "The desired replica count.", default={}),
            "status": ref(scale + "ScaleStatus", "The observed replica count.", default={}),
        }, gvk=("autoscaling", "v1", "Scale")),
        scale + "ScaleSpec": obj("The desired replica count.", {
            "replicas": integer("Desired number of replicas."),
        }),
        scale + "ScaleStatus": obj("The observed replica count.", {
            "replicas": integer("Observed number of replicas.", default=0),
            "selector": string("Label selector of the pods, in query-parameter form."),
        }, ["replicas"]),
    }


def _container(ephemeral: bool = False) -> Schema:
    c = CORE
    props: dict[str, Schema] = {
        "name": string("Name of the container, a DNS label unique in the pod.", default=""),
        "image": string("Image reference to run, such as registry.local/app:1."),
        "command": strings("Entrypoint; replaces the image's ENTRYPOINT. $(VAR) references are expanded."),
        "args": strings("Arguments to the entrypoint; replace the image's CMD."),
        "workingDir": string("Working directory; the image's default when empty."),
        "ports": refs(c + "ContainerPort", "Ports the container listens on; informational except for "
                      "hostPort.", keys=["containerPort", "protocol"], merge_key="containerPort"),
        "envFrom": refs(c + "EnvFromSource", "Sources whose keys all become environment variables.",
                        list_type="atomic"),
        "env": refs(c + "EnvVar", "Environment variables to set.", keys=["name"], merge_key="name"),
        "resources": ref(c + "ResourceRequirements", "Compute resources requested and allowed.", default={}),
        "resizePolicy": refs(c + "ContainerResizePolicy", "How resources may be resized in place.",
                             list_type="atomic"),
        "restartPolicy": string("Per-container restart policy; only Always, for sidecar init containers."),
        "volumeMounts": refs(c + "VolumeMount", "Pod volumes to mount into the filesystem.",
                             keys=["mountPath"], merge_key="mountPath"),
        "volumeDevices": refs(c + "VolumeDevice", "Block devices to expose.", keys=["devicePath"],
                              merge_key="devicePath"),
        "livenessProbe": ref(c + "Probe", "Check that restarts the container when it fails."),
        "readinessProbe": ref(c + "Probe", "Check that removes the pod from endpoints when it fails."),
        "startupProbe": ref(c + "Probe", "Check that must pass before the other probes start."),
        "lifecycle": ref(c + "Lifecycle", "Actions run after start and before stop."),
        "terminationMessagePath": string("File whose content becomes the termination message.",
                                         default="/dev/termination-log"),
        "terminationMessagePolicy": string("File, or FallbackToLogsOnError to use the log tail.",
                                           enum=["FallbackToLogsOnError", "File"], default="File"),
        "imagePullPolicy": string("Always, Never or IfNotPresent.", enum=["Always", "IfNotPresent", "Never"]),
        "securityContext": ref(c + "SecurityContext", "Security options of this container."),
        "stdin": boolean("Keep a stdin buffer open for the container."),
        "stdinOnce": boolean("Close stdin after the first attach disconnects."),
        "tty": boolean("Allocate a terminal; needs stdin."),
    }
    if ephemeral:
        props["targetContainerName"] = string("Container whose namespaces this debug container joins.")
        return obj("A temporary container added to a running pod for debugging.", props, ["name"])
    return obj("One container of a pod.", props, ["name"])


def _probe_handlers() -> dict[str, Schema]:
    c = CORE
    return {
        "exec": ref(c + "ExecAction", "Run a command in the container."),
        "httpGet": ref(c + "HTTPGetAction", "Send an HTTP GET request."),
        "tcpSocket": ref(c + "TCPSocketAction", "Open a TCP connection."),
    }


def _pod() -> dict[str, Schema]:
    c = CORE
    local_ref = ref(c + "LocalObjectReference", default={})
    return {
        c + "Pod": obj("A group of containers scheduled together on one node.", {
            "apiVersion": _API_VERSION, "kind": _KIND, "metadata": _METADATA,
            "spec": ref(c + "PodSpec", "Desired containers, volumes and scheduling of the pod.", default={}),
            "status": ref(c + "PodStatus", "Observed state, reported by the node.", default={}),
        }, gvk=("", "v1", "Pod")),
        c + "PodTemplateSpec": obj("A pod description used by controllers to create pods.", {
            "metadata": _METADATA,
            "spec": ref(c + "PodSpec", "Desired state of the pods created from this template.", default={}),
        }),
        c + "PodSpec": obj("Desired state of a pod.", {
            "volumes": refs(c + "Volume", "Volumes the containers may mount.", keys=["name"], merge_key="name",
                            strategy="merge,retainKeys"),
            "initContainers": refs(c + "Container", "Containers run in order before the app containers.",
                                   keys=["name"], merge_key="name"),
            "containers": refs(c + "Container", "The containers of the pod; at least one.", keys=["name"],
                               merge_key="name"),
            "ephemeralContainers": refs(c + "EphemeralContainer", "Debug containers added to a running pod.",
                                        keys=["name"], merge_key="name"),
            "restartPolicy": string("Always, OnFailure or Never.", enum=["Always", "Never", "OnFailure"]),
            "terminationGracePeriodSeconds": integer("Seconds between SIGTERM and SIGKILL.", "int64", default=30),
            "activeDeadlineSeconds": integer("Seconds the pod may run before it is failed.", "int64"),
            "dnsPolicy": string("ClusterFirst, ClusterFirstWithHostNet, Default or None.",
                                enum=["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
                                default="ClusterFirst"),
            "nodeSelector": string_map("Labels a node must carry to run the pod."),
            "serviceAccountName": string("Service account the pod runs as."),
            "serviceAccount": string("Deprecated alias of serviceAccountName."),
            "automountServiceAccountToken": boolean("Mount the service account token automatically."),
            "nodeName": string("Node the pod is bound to; set by the scheduler."),
            "hostNetwork": boolean("Use the node's network namespace."),
            "hostPID": boolean("Use the node's PID namespace."),
            "hostIPC": boolean("Use the node's IPC namespace."),
            "shareProcessNamespace": boolean("One PID namespace for all containers of the pod."),
            "securityContext": ref(c + "PodSecurityContext", "Security options for every container."),
            "imagePullSecrets": refs(c + "LocalObjectReference", "Secrets with registry credentials.",
                                     keys=["name"], merge_key="name"),
            "hostname": string("Hostname inside the pod; the pod name when empty."),
            "subdomain": string("Subdomain for the pod's DNS name (headless service)."),
            "affinity": ref(c + "Affinity", "Node and pod (anti-)affinity rules."),
            "schedulerName": string("Scheduler that places the pod.", default="default-scheduler"),
            "tolerations": refs(c + "Toleration", "Taints the pod tolerates.", list_type="atomic"),
            "hostAliases": refs(c + "HostAlias", "Extra /etc/hosts entries.", keys=["ip"], merge_key="ip"),
            "priorityClassName": string("Name of the pod's PriorityClass."),
            "priority": integer("Priority resolved from the priority class."),
            "dnsConfig": ref(c + "PodDNSConfig", "Extra resolver settings."),
            "readinessGates": refs(c + "PodReadinessGate", "Extra conditions required for readiness.",
                                   list_type="atomic"),
            "runtimeClassName": string("RuntimeClass that runs the pod."),
            "enableServiceLinks": boolean("Inject service environment variables.", default=True),
            "preemptionPolicy": string("Never or PreemptLowerPriority."),
            "overhead": quantity_map("Resources the runtime itself uses for the pod."),
            "topologySpreadConstraints": refs(c + "TopologySpreadConstraint", "How to spread matching pods "
                                              "across topology domains.",
                                              keys=["topologyKey", "whenUnsatisfiable"], merge_key="topologyKey"),
            "setHostnameAsFQDN": boolean("Set the hostname to the fully qualified domain name."),
            "os": ref(c + "PodOS", "Operating system the pod needs."),
            "hostUsers": boolean("Use the host user namespace; false requests a new one."),
            "schedulingGates": refs(c + "PodSchedulingGate", "Gates that hold the pod back from scheduling.",
                                    keys=["name"], merge_key="name"),
            "resourceClaims": refs(c + "PodResourceClaim", "Dynamic resource claims of the pod.", keys=["name"],
                                   merge_key="name", strategy="merge,retainKeys"),
            "resources": ref(c + "ResourceRequirements", "Pod-level resource requests and limits."),
        }, ["containers"]),
        c + "Container": _container(),
        c + "EphemeralContainer": _container(ephemeral=True),
        c + "ContainerPort": obj("A network port of a container.", {
            "name": string("IANA service name of the port, unique in the pod."),
            "hostPort": integer("Port on the node mapped to this one."),
            "containerPort": integer("Port number in the pod's network namespace.", default=0),
            "protocol": string("TCP, UDP or SCTP.", enum=["SCTP", "TCP", "UDP"], default="TCP"),
            "hostIP": string("Node IP the host port binds to."),
        }, ["containerPort"]),
        c + "EnvVar": obj("One environment variable.", {
            "name": string("Variable name.", default=""),
            "value": string("Literal value; $(VAR) references to earlier variables are expanded."),
            "valueFrom": ref(c + "EnvVarSource", "Where to read the value from."),
        }, ["name"]),
        c + "EnvVarSource": obj("A source for one variable's value.", {
            "fieldRef": ref(c + "ObjectFieldSelector", "A field of the pod."),
            "resourceFieldRef": ref(c + "ResourceFieldSelector", "A resource limit or request."),
            "configMapKeyRef": ref(c + "ConfigMapKeySelector", "A key of a ConfigMap."),
            "secretKeyRef": ref(c + "SecretKeySelector", "A key of a Secret."),
        }),
        c + "EnvFromSource": obj("A ConfigMap or Secret whose keys become variables.", {
            "prefix": string("Prefix added to every key."),
            "configMapRef": ref(c + "ConfigMapEnvSource", "The ConfigMap."),
            "secretRef": ref(c + "SecretEnvSource", "The Secret."),
        }),
        c + "ConfigMapEnvSource": obj("A ConfigMap used as environment.", {
            "name": string("Name of the ConfigMap.", default=""),
            "optional": boolean("Allow the ConfigMap to be missing."),
        }),
        c + "SecretEnvSource": obj("A Secret used as environment.", {
            "name": string("Name of the Secret.", default=""),
            "optional": boolean("Allow the Secret to be missing."),
        }),
        c + "ConfigMapKeySelector": obj("One key of a ConfigMap.", {
            "name": string("Name of the ConfigMap.", default=""),
            "key": string("The key.", default=""),
            "optional": boolean("Allow the ConfigMap or key to be missing."),
        }, ["key"], atomic=True),
        c + "SecretKeySelector": obj("One key of a Secret.", {
            "name": string("Name of the Secret.", default=""),
            "key": string("The key.", default=""),
            "optional": boolean("Allow the Secret or key to be missing."),
        }, ["key"], atomic=True),
        c + "ObjectFieldSelector": obj("A field of the object, by path.", {
            "apiVersion": string("Version the path is written in; v1 by default."),
            "fieldPath": string("Path of the field, such as metadata.name.", default=""),
        }, ["fieldPath"], atomic=True),
        c + "ResourceFieldSelector": obj("A container's resource request or limit.", {
            "containerName": string("Container, for volumes; the current one for env."),
            "resource": string("Such as limits.cpu or requests.memory.", default=""),
            "divisor": quantity("Unit the value is expressed in; 1 by default."),
        }, ["resource"], atomic=True),
        c + "ResourceRequirements": obj("Compute resources of a container.", {
            "limits": quantity_map("Most of each resource the container may use."),
            "requests": quantity_map("Resources the scheduler reserves for the container."),
            "claims": refs(c + "ResourceClaim", "Dynamic resource claims this container uses.", keys=["name"]),
        }),
        c + "ResourceClaim": obj("A pod resource claim used by a container.", {
            "name": string("Name of an entry in pod.spec.resourceClaims.", default=""),
            "request": string("One request of the claim, when only that is wanted."),
        }, ["name"]),
        c + "ContainerResizePolicy": obj("Resize rule for one resource.", {
            "resourceName": string("cpu or memory.", default=""),
            "restartPolicy": string("NotRequired or RestartContainer.", default=""),
        }, ["resourceName", "restartPolicy"]),
        c + "VolumeMount": obj("Where a volume appears in a container.", {
            "name": string("Name of the pod volume.", default=""),
            "readOnly": boolean("Mount read-only."),
            "recursiveReadOnly": string("Disabled, IfPossible or Enabled."),
            "mountPath": string("Path inside the container.", default=""),
            "subPath": string("Sub-path of the volume to mount instead of its root."),
            "mountPropagation": string("None, HostToContainer or Bidirectional."),
            "subPathExpr": string("Like subPath, with $(VAR) expansion."),
        }, ["name", "mountPath"]),
        c + "VolumeDevice": obj("A raw block device in a container.", {
            "name": string("Name of a persistentVolumeClaim volume.", default=""),
            "devicePath": string("Device path inside the container.", default=""),
        }, ["name", "devicePath"]),
        c + "Probe": obj("A health check the kubelet runs against a container.", {
            **_probe_handlers(),
            "grpc": ref(c + "GRPCAction", "Call the gRPC health service."),
            "initialDelaySeconds": integer("Seconds after start before the first check."),
            "timeoutSeconds": integer("Seconds before a check counts as failed.", default=1),
            "periodSeconds": integer("Seconds between checks.", default=10),
            "successThreshold": integer("Consecutive passes that count as success.", default=1),
            "failureThreshold": integer("Consecutive failures that count as failure.", default=3),
            "terminationGracePeriodSeconds": integer("Grace period when a failed probe kills the pod.",
                                                     "int64"),
        }),
        c + "ExecAction": obj("A command run in the container; exit status 0 is healthy.", {
            "command": strings("Command line, run without a shell."),
        }),
        c + "HTTPGetAction": obj("An HTTP GET; a 2xx or 3xx status is healthy.", {
            "path": string("Request path.", default="/"),
            "port": int_or_string("Port number or container port name."),
            "host": string("Host to connect to; the pod IP by default."),
            "scheme": string("HTTP or HTTPS.", enum=["HTTP", "HTTPS"], default="HTTP"),
            "httpHeaders": refs(c + "HTTPHeader", "Extra request headers.", list_type="atomic"),
        }, ["port"]),
        c + "HTTPHeader": obj("One HTTP header.", {
            "name": string("Header name.", default=""),
            "value": string("Header value.", default=""),
        }, ["name", "value"]),
        c + "TCPSocketAction": obj("A TCP connect; an open connection is healthy.", {
            "port": int_or_string("Port number or container port name."),
            "host": string("Host to connect to; the pod IP by default."),
        }, ["port"]),
        c + "GRPCAction": obj("A gRPC health check call.", {
            "port": integer("Port of the gRPC service.", default=0),
            "service": string("Service name sent in the health request.", default=""),
        }, ["port"]),
        c + "SleepAction": obj("Wait before continuing.", {
            "seconds": integer("Seconds to sleep.", "int64", default=0),
        }, ["seconds"]),
        c + "Lifecycle": obj("Hooks the kubelet runs around the container's life.", {
            "postStart": ref(c + "LifecycleHandler", "Run right after the container starts."),
            "preStop": ref(c + "LifecycleHandler", "Run before the container is stopped."),
            "stopSignal": string("Signal sent to stop the container."),
        }),
        c + "LifecycleHandler": obj("One lifecycle action.", {
            **_probe_handlers(),
            "sleep": ref(c + "SleepAction", "Sleep for a while."),
        }),
        c + "SecurityContext": obj("Security options of one container.", {
            "capabilities": ref(c + "Capabilities", "Linux capabilities to add or drop."),
            "privileged": boolean("Run as privileged (root on the host)."),
            "seLinuxOptions": ref(c + "SELinuxOptions", "SELinux context."),
            "windowsOptions": ref(c + "WindowsSecurityContextOptions", "Windows-only options."),
            "runAsUser": integer("UID the process runs as.", "int64"),
            "runAsGroup": integer("GID the process runs as.", "int64"),
            "runAsNonRoot": boolean("Refuse to start as UID 0."),
            "readOnlyRootFilesystem": boolean("Mount the root filesystem read-only."),
            "allowPrivilegeEscalation": boolean("Allow gaining more privileges than the parent (no_new_privs)."),
            "procMount": string("Default or Unmasked /proc."),
            "seccompProfile": ref(c + "SeccompProfile", "Seccomp filter."),
            "appArmorProfile": ref(c + "AppArmorProfile", "AppArmor profile."),
        }),
        c + "PodSecurityContext": obj("Security options for every container of a pod.", {
            "seLinuxOptions": ref(c + "SELinuxOptions", "SELinux context."),
            "windowsOptions": ref(c + "WindowsSecurityContextOptions", "Windows-only options."),
            "runAsUser": integer("UID the processes run as.", "int64"),
            "runAsGroup": integer("GID the processes run as.", "int64"),
            "runAsNonRoot": boolean("Refuse to start containers as UID 0."),
            "supplementalGroups": arr(integer(fmt="int64", default=0), "Extra GIDs of every process.",
                                      list_type="atomic"),
            "supplementalGroupsPolicy": string("Merge or Strict."),
            "fsGroup": integer("GID that owns volumes and is added to every process.", "int64"),
            "sysctls": refs(c + "Sysctl", "Namespaced sysctls to set.", list_type="atomic"),
            "fsGroupChangePolicy": string("OnRootMismatch or Always."),
            "seccompProfile": ref(c + "SeccompProfile", "Seccomp filter."),
            "appArmorProfile": ref(c + "AppArmorProfile", "AppArmor profile."),
            "seLinuxChangePolicy": string("Recursive or MountOption."),
        }),
        c + "Capabilities": obj("Capabilities to add and drop.", {
            "add": strings("Capabilities to add."), "drop": strings("Capabilities to drop."),
        }),
        c + "SELinuxOptions": obj("An SELinux label.", {
            "user": string("User part."), "role": string("Role part."), "type": string("Type part."),
            "level": string("Level part."),
        }),
        c + "WindowsSecurityContextOptions": obj("Windows container options.", {
            "gmsaCredentialSpecName": string("Name of the GMSA credential spec."),
            "gmsaCredentialSpec": string("Content of the GMSA credential spec."),
            "runAsUserName": string("Windows user name."),
            "hostProcess": boolean("Run as a host process."),
        }),
        c + "SeccompProfile": obj("A seccomp profile.", {
            "type": string("RuntimeDefault, Unconfined or Localhost.", default=""),
            "localhostProfile": string("Profile file on the node, for Localhost."),
        }, ["type"]),
        c + "AppArmorProfile": obj("An AppArmor profile.", {
            "type": string("RuntimeDefault, Unconfined or Localhost.", default=""),
            "localhostProfile": string("Profile loaded on the node, for Localhost."),
        }, ["type"]),
        c + "Sysctl": obj("One kernel parameter.", {
            "name": string("Parameter name.", default=""), "value": string("Value.", default=""),
        }, ["name", "value"]),
        c + "Affinity": obj("Scheduling preferences and requirements.", {
            "nodeAffinity": ref(c + "NodeAffinity", "Rules about the node's labels."),
            "podAffinity": ref(c + "PodAffinity", "Run near pods that match."),
            "podAntiAffinity": ref(c + "PodAntiAffinity", "Stay away from pods that match."),
        }),
        c + "NodeAffinity": obj("Node selection by labels.", {
            "requiredDuringSchedulingIgnoredDuringExecution": ref(c + "NodeSelector", "Must hold to schedule."),
            "preferredDuringSchedulingIgnoredDuringExecution": refs(
                c + "PreferredSchedulingTerm", "Weighted preferences.", list_type="atomic"),
        }),
        c + "NodeSelector": obj("Node selector terms, any of which may match (OR).", {
            "nodeSelectorTerms": refs(c + "NodeSelectorTerm", "The terms.", list_type="atomic"),
        }, ["nodeSelectorTerms"], atomic=True),
        c + "NodeSelectorTerm": obj("Requirements that must all hold (AND).", {
            "matchExpressions": refs(c + "NodeSelectorRequirement", "Requirements on node labels.",
                                     list_type="atomic"),
            "matchFields": refs(c + "NodeSelectorRequirement", "Requirements on node fields.",
                                list_type="atomic"),
        }, atomic=True),
        c + "NodeSelectorRequirement": obj("One requirement on a node label or field.", {
            "key": string("Label key or field name.", default=""),
            "operator": string("In, NotIn, Exists, DoesNotExist, Gt or Lt.", default=""),
            "values": strings("Values to compare with."),
        }, ["key", "operator"]),
        c + "PreferredSchedulingTerm": obj("A weighted node preference.", {
            "weight": integer("Weight, 1 to 100.", default=0),
            "preference": ref(c + "NodeSelectorTerm", "The preferred nodes.", default={}),
        }, ["weight", "preference"]),
        c + "PodAffinity": obj("Co-location with other pods.", _pod_affinity_props()),
        c + "PodAntiAffinity": obj("Separation from other pods.", _pod_affinity_props()),
        c + "PodAffinityTerm": obj("Pods to be near or away from, within a topology domain.", {
            "labelSelector": ref(META + "LabelSelector", "The pods to consider."),
            "namespaces": strings("Namespaces to look in; the pod's own when empty."),
            "topologyKey": string("Node label whose value defines a domain.", default=""),
            "namespaceSelector": ref(META + "LabelSelector", "Namespaces to look in, by label."),
            "matchLabelKeys": strings("Label keys whose pod values are added to the selector."),
            "mismatchLabelKeys": strings("Label keys whose pod values must differ."),
        }, ["topologyKey"]),
        c + "WeightedPodAffinityTerm": obj("A weighted pod affinity preference.", {
            "weight": integer("Weight, 1 to 100.", default=0),
            "podAffinityTerm": ref(c + "PodAffinityTerm", "The term.", default={}),
        }, ["weight", "podAffinityTerm"]),
        c + "Toleration": obj("Lets the pod schedule onto nodes with a matching taint.", {
            "key": string("Taint key; empty with Exists matches every taint."),
            "operator": string("Exists or Equal.", enum=["Equal", "Exists"]),
            "value": string("Taint value, for Equal."),
            "effect": string("NoSchedule, PreferNoSchedule or NoExecute; empty matches all.",
                             enum=["NoExecute", "NoSchedule", "PreferNoSchedule"]),
            "tolerationSeconds": integer("How long a NoExecute taint is tolerated.", "int64"),
        }),
        c + "TopologySpreadConstraint": obj("How matching pods spread over topology domains.", {
            "maxSkew": integer("Largest allowed difference in pod counts between domains.", default=0),
            "topologyKey": string("Node label that defines the domains.", default=""),
            "whenUnsatisfiable": string("DoNotSchedule or ScheduleAnyway.", default=""),
            "labelSelector": ref(META + "LabelSelector", "Pods that are counted."),
            "minDomains": integer("Minimum number of eligible domains."),
            "nodeAffinityPolicy": string("Honor or Ignore the pod's node affinity."),
            "nodeTaintsPolicy": string("Honor or Ignore node taints."),
            "matchLabelKeys": strings("Label keys whose pod values are added to the selector."),
        }, ["maxSkew", "topologyKey", "whenUnsatisfiable"]),
        c + "HostAlias": obj("An /etc/hosts entry.", {
            "ip": string("IP address.", default=""),
            "hostnames": strings("Names for the address."),
        }, ["ip"]),
        c + "PodDNSConfig": obj("Resolver settings of a pod.", {
            "nameservers": strings("Name server addresses."),
            "searches": strings("Search domains."),
            "options": refs(c + "PodDNSConfigOption", "resolv.conf options.", list_type="atomic"),
        }),
        c + "PodDNSConfigOption": obj("One resolver option.", {
            "name": string("Option name."), "value": string("Option value."),
        }),
        c + "PodReadinessGate": obj("An extra pod condition needed for readiness.", {
            "conditionType": string("Condition type that must be True.", default=""),
        }, ["conditionType"]),
        c + "PodSchedulingGate": obj("A gate that blocks scheduling while present.", {
            "name": string("Gate name.", default=""),
        }, ["name"]),
        c + "PodOS": obj("Operating system of a pod.", {"name": string("linux or windows.", default="")},
                         ["name"]),
        c + "PodResourceClaim": obj("A resource claim made available to the pod.", {
            "name": string("Name used by containers to refer to the claim.", default=""),
            "resourceClaimName": string("Existing ResourceClaim to use."),
            "resourceClaimTemplateName": string("ResourceClaimTemplate to create a claim from."),
        }, ["name"]),
        c + "LocalObjectReference": obj("Names an object in the same namespace.", {
            "name": string("Name of the object.", default=""),
        }, atomic=True),
        c + "ObjectReference": obj("Points at any object.", {
            "kind": string("Kind of the object."),
            "namespace": string("Namespace of the object."),
            "name": string("Name of the object."),
            "uid": string("UID of the object."),
            "apiVersion": string("Schema version of the object."),
            "resourceVersion": string("Version of the object that was meant."),
            "fieldPath": string("Part of the object meant, such as spec.containers{web}."),
        }, atomic=True),
        **_volumes(local_ref),
        **_pod_status(),
    }


def _pod_affinity_props() -> dict[str, Schema]:
    c = CORE
    return {
        "requiredDuringSchedulingIgnoredDuringExecution": refs(c + "PodAffinityTerm", "Must hold to schedule.",
                                                               list_type="atomic"),
        "preferredDuringSchedulingIgnoredDuringExecution": refs(c + "WeightedPodAffinityTerm",
                                                                "Weighted preferences.", list_type="atomic"),
    }


def _volumes(local_ref: Schema) -> dict[str, Schema]:
    c = CORE
    secret_ref = ref(c + "LocalObjectReference", "Secret with credentials.")
    fs_type = string("Filesystem type, such as ext4.")
    read_only = boolean("Mount read-only.")
    key_paths = refs(c + "KeyToPath", "Keys to project, and their file paths; all keys when empty.",
                     list_type="atomic")
    return {
        c + "Volume": obj("A named volume the pod's containers can mount; exactly one source is set.", {
            "name": string("Volume name, a DNS label unique in the pod.", default=""),
            "hostPath": ref(c + "HostPathVolumeSource", "A file or directory of the node."),
            "emptyDir": ref(c + "EmptyDirVolumeSource", "A scratch directory that lives as long as the pod."),
            "secret": ref(c + "SecretVolumeSource", "The keys of a Secret as files."),
            "configMap": ref(c + "ConfigMapVolumeSource", "The keys of a ConfigMap as files."),
            "persistentVolumeClaim": ref(c + "PersistentVolumeClaimVolumeSource", "A claimed persistent volume."),
            "projected": ref(c + "ProjectedVolumeSource", "Several sources merged into one directory."),
            "downwardAPI": ref(c + "DownwardAPIVolumeSource", "Pod fields as files."),
            "nfs": ref(c + "NFSVolumeSource", "An NFS export."),
            "iscsi": ref(c + "ISCSIVolumeSource", "An iSCSI disk."),
            "csi": ref(c + "CSIVolumeSource", "An inline volume of a CSI driver."),
            "ephemeral": ref(c + "EphemeralVolumeSource", "A claim created and deleted with the pod."),
            "image": ref(c + "ImageVolumeSource", "The content of an OCI image, read-only."),
            "gitRepo": ref(c + "GitRepoVolumeSource", "Deprecated: a git checkout."),
            "fc": ref(c + "FCVolumeSource", "A Fibre Channel disk."),
            "rbd": ref(c + "RBDVolumeSource", "Deprecated: a Ceph block device."),
            "cephfs": ref(c + "CephFSVolumeSource", "Deprecated: a CephFS mount."),
            "glusterfs": ref(c + "GlusterfsVolumeSource", "Deprecated: a GlusterFS mount."),
            "awsElasticBlockStore": ref(c + "AWSElasticBlockStoreVolumeSource", "Deprecated: an EBS disk."),
            "gcePersistentDisk": ref(c + "GCEPersistentDiskVolumeSource", "Deprecated: a GCE disk."),
            "azureDisk": ref(c + "AzureDiskVolumeSource", "Deprecated: an Azure data disk."),
            "azureFile": ref(c + "AzureFileVolumeSource", "Deprecated: an Azure file share."),
            "cinder": ref(c + "CinderVolumeSource", "Deprecated: an OpenStack Cinder volume."),
            "vsphereVolume": ref(c + "VsphereVirtualDiskVolumeSource", "Deprecated: a vSphere disk."),
            "flexVolume": ref(c + "FlexVolumeSource", "Deprecated: a FlexVolume driver."),
            "flocker": ref(c + "FlockerVolumeSource", "Deprecated: a Flocker dataset."),
            "photonPersistentDisk": ref(c + "PhotonPersistentDiskVolumeSource", "Deprecated: a Photon disk."),
            "portworxVolume": ref(c + "PortworxVolumeSource", "Deprecated: a Portworx volume."),
            "quobyte": ref(c + "QuobyteVolumeSource", "Deprecated: a Quobyte mount."),
            "scaleIO": ref(c + "ScaleIOVolumeSource", "Deprecated: a ScaleIO volume."),
            "storageos": ref(c + "StorageOSVolumeSource", "Deprecated: a StorageOS volume."),
        }, ["name"]),
        c + "FlockerVolumeSource": obj("A Flocker dataset.", {
            "datasetName": string("Dataset name."), "datasetUUID": string("Dataset UUID."),
        }),
        c + "PhotonPersistentDiskVolumeSource": obj("A Photon Controller disk.", {
            "pdID": string("Disk id.", default=""), "fsType": fs_type,
        }, ["pdID"]),
        c + "PortworxVolumeSource": obj("A Portworx volume.", {
            "volumeID": string("Volume id.", default=""), "fsType": fs_type, "readOnly": read_only,
        }, ["volumeID"]),
        c + "QuobyteVolumeSource": obj("A Quobyte mount.", {
            "registry": string("Registry services, host:port list.", default=""),
            "volume": string("Volume name.", default=""), "readOnly": read_only,
            "user": string("User to map access to."), "group": string("Group to map access to."),
            "tenant": string("Tenant owning the volume."),
        }, ["registry", "volume"]),
        c + "ScaleIOVolumeSource": obj("A ScaleIO volume.", {
            "gateway": string("Gateway address.", default=""), "system": string("Storage system name.", default=""),
            "secretRef": ref(c + "LocalObjectReference", "Secret with credentials."),
            "sslEnabled": boolean("Talk to the gateway over TLS."),
            "protectionDomain": string("Protection domain."), "storagePool": string("Storage pool."),
            "storageMode": string("ThickProvisioned or ThinProvisioned."),
            "volumeName": string("Volume name."), "fsType": fs_type, "readOnly": read_only,
        }, ["gateway", "system", "secretRef"]),
        c + "StorageOSVolumeSource": obj("A StorageOS volume.", {
            "volumeName": string("Volume name."), "volumeNamespace": string("StorageOS namespace."),
            "fsType": fs_type, "readOnly": read_only, "secretRef": secret_ref,
        }),
        c + "HostPathVolumeSource": obj("A path on the node.", {
            "path": string("Path on the node.", default=""),
            "type": string("Expected kind of path, such as Directory or FileOrCreate."),
        }, ["path"]),
        c + "EmptyDirVolumeSource": obj("A scratch directory.", {
            "medium": string("Storage medium; Memory for tmpfs."),
            "sizeLimit": quantity("Most space the directory may use."),
        }),
        c + "SecretVolumeSource": obj("A Secret mounted as files.", {
            "secretName": string("Name of the Secret."),
            "items": key_paths,
            "defaultMode": integer("Permission bits of the files.", default=420),
            "optional": boolean("Allow the Secret to be missing."),
        }),
        c + "ConfigMapVolumeSource": obj("A ConfigMap mounted as files.", {
            "name": string("Name of the ConfigMap.", default=""),
            "items": key_paths,
            "defaultMode": integer("Permission bits of the files.", default=420),
            "optional": boolean("Allow the ConfigMap to be missing."),
        }),
        c + "KeyToPath": obj("One key and the file it is written to.", {
            "key": string("The key.", default=""),
            "path": string("Relative file path.", default=""),
            "mode": integer("Permission bits of this file."),
        }, ["key", "path"]),
        c + "PersistentVolumeClaimVolumeSource": obj("A PersistentVolumeClaim in the pod's namespace.", {
            "claimName": string("Name of the claim.", default=""),
            "readOnly": read_only,
        }, ["claimName"]),
        c + "ProjectedVolumeSource": obj("Several sources in one directory.", {
            "sources": refs(c + "VolumeProjection", "The sources.", list_type="atomic"),
            "defaultMode": integer("Permission bits of the files.", default=420),
        }),
        c + "VolumeProjection": obj("One source of a projected volume.", {
            "secret": ref(c + "SecretProjection", "Keys of a Secret."),
            "downwardAPI": ref(c + "DownwardAPIProjection", "Pod fields."),
            "configMap": ref(c + "ConfigMapProjection", "Keys of a ConfigMap."),
            "serviceAccountToken": ref(c + "ServiceAccountTokenProjection", "A service account token."),
            "clusterTrustBundle": ref(c + "ClusterTrustBundleProjection", "Trust anchors of a signer."),
        }),
        c + "SecretProjection": obj("Keys of a Secret in a projected volume.", {
            "name": string("Name of the Secret.", default=""), "items": key_paths,
            "optional": boolean("Allow the Secret to be missing."),
        }),
        c + "ConfigMapProjection": obj("Keys of a ConfigMap in a projected volume.", {
            "name": string("Name of the ConfigMap.", default=""), "items": key_paths,
            "optional": boolean("Allow the ConfigMap to be missing."),
        }),
        c + "DownwardAPIProjection": obj("Pod fields in a projected volume.", {
            "items": refs(c + "DownwardAPIVolumeFile", "The files.", list_type="atomic"),
        }),
        c + "ServiceAccountTokenProjection": obj("A bound service account token as a file.", {
            "audience": string("Intended audience of the token."),
            "expirationSeconds": integer("Requested lifetime of the token.", "int64"),
            "path": string("Relative file path.", default=""),
        }, ["path"]),
        c + "ClusterTrustBundleProjection": obj("ClusterTrustBundle certificates as a file.", {
            "name": string("One bundle by name."),
            "signerName": string("Bundles of this signer."),
            "labelSelector": ref(META + "LabelSelector", "Bundles with these labels."),
            "optional": boolean("Allow no bundle to match."),
            "path": string("Relative file path.", default=""),
        }, ["path"]),
        c + "DownwardAPIVolumeSource": obj("Pod fields as files.", {
            "items": refs(c + "DownwardAPIVolumeFile", "The files.", list_type="atomic"),
            "defaultMode": integer("Permission bits of the files.", default=420),
        }),
        c + "DownwardAPIVolumeFile": obj("One pod field written to a file.", {
            "path": string("Relative file path.", default=""),
            "fieldRef": ref(c + "ObjectFieldSelector", "A pod field."),
            "resourceFieldRef": ref(c + "ResourceFieldSelector", "A container resource."),
            "mode": integer("Permission bits of this file."),
        }, ["path"]),
        c + "NFSVolumeSource": obj("An NFS export.", {
            "server": string("Server host or IP.", default=""), "path": string("Exported path.", default=""),
            "readOnly": read_only,
        }, ["server", "path"]),
        c + "ISCSIVolumeSource": obj("An iSCSI disk.", {
            "targetPortal": string("Target portal, IP[:port].", default=""),
            "iqn": string("Target IQN.", default=""),
            "lun": integer("Target LUN.", default=0),
            "iscsiInterface": string("iSCSI interface name."),
            "fsType": fs_type, "readOnly": read_only,
            "portals": strings("Extra target portals."),
            "chapAuthDiscovery": boolean("Use CHAP for discovery."),
            "chapAuthSession": boolean("Use CHAP for the session."),
            "secretRef": secret_ref,
            "initiatorName": string("Initiator name."),
        }, ["targetPortal", "iqn", "lun"]),
        c + "CSIVolumeSource": obj("An inline CSI volume.", {
            "driver": string("CSI driver name.", default=""),
            "readOnly": read_only, "fsType": fs_type,
            "volumeAttributes": string_map("Driver-specific attributes."),
            "nodePublishSecretRef": secret_ref,
        }, ["driver"]),
        c + "EphemeralVolumeSource": obj("A claim created with the pod.", {
            "volumeClaimTemplate": ref(c + "PersistentVolumeClaimTemplate", "Template of the claim."),
        }),
        c + "PersistentVolumeClaimTemplate": obj("Template of an ephemeral claim.", {
            "metadata": _METADATA,
            "spec": ref(c + "PersistentVolumeClaimSpec", "Spec of the claim.", default={}),
        }, ["spec"]),
        c + "ImageVolumeSource": obj("An OCI image as a volume.", {
            "reference": string("Image reference."),
            "pullPolicy": string("Always, Never or IfNotPresent."),
        }),
        c + "GitRepoVolumeSource": obj("A git repository checkout.", {
            "repository": string("Repository URL.", default=""), "revision": string("Commit hash."),
            "directory": string("Target directory name."),
        }, ["repository"]),
        c + "FCVolumeSource": obj("A Fibre Channel disk.", {
            "targetWWNs": strings("Target world wide names."), "lun": integer("Target LUN."),
            "fsType": fs_type, "readOnly": read_only, "wwids": strings("Volume world wide identifiers."),
        }),
        c + "RBDVolumeSource": obj("A Ceph RBD image.", {
            "monitors": strings("Ceph monitors."), "image": string("Image name.", default=""),
            "fsType": fs_type, "pool": string("Pool name."), "user": string("RADOS user."),
            "keyring": string("Keyring path."), "secretRef": secret_ref, "readOnly": read_only,
        }, ["monitors", "image"]),
        c + "CephFSVolumeSource": obj("A CephFS mount.", {
            "monitors": strings("Ceph monitors."), "path": string("Mounted path."),
            "user": string("RADOS user."), "secretFile": string("Secret file path."),
            "secretRef": secret_ref, "readOnly": read_only,
        }, ["monitors"]),
        c + "GlusterfsVolumeSource": obj("A GlusterFS mount.", {
            "endpoints": string("Endpoints object name.", default=""), "path": string("Volume path.", default=""),
            "readOnly": read_only,
        }, ["endpoints", "path"]),
        c + "AWSElasticBlockStoreVolumeSource": obj("An AWS EBS disk.", {
            "volumeID": string("Volume id.", default=""), "fsType": fs_type,
            "partition": integer("Partition number."), "readOnly": read_only,
        }, ["volumeID"]),
        c + "GCEPersistentDiskVolumeSource": obj("A GCE persistent disk.", {
            "pdName": string("Disk name.", default=""), "fsType": fs_type,
            "partition": integer("Partition number."), "readOnly": read_only,
        }, ["pdName"]),
        c + "AzureDiskVolumeSource": obj("An Azure data disk.", {
            "diskName": string("Disk name.", default=""), "diskURI": string("Disk URI.", default=""),
            "cachingMode": string("None, ReadOnly or ReadWrite."), "fsType": fs_type,
            "readOnly": read_only, "kind": string("Shared, Dedicated or Managed."),
        }, ["diskName", "diskURI"]),
        c + "AzureFileVolumeSource": obj("An Azure file share.", {
            "secretName": string("Secret with the account key.", default=""),
            "shareName": string("Share name.", default=""), "readOnly": read_only,
        }, ["secretName", "shareName"]),
        c + "CinderVolumeSource": obj("An OpenStack Cinder volume.", {
            "volumeID": string("Volume id.", default=""), "fsType": fs_type, "readOnly": read_only,
            "secretRef": secret_ref,
        }, ["volumeID"]),
        c + "VsphereVirtualDiskVolumeSource": obj("A vSphere virtual disk.", {
            "volumePath": string("Disk path.", default=""), "fsType": fs_type,
            "storagePolicyName": string("Storage policy name."), "storagePolicyID": string("Storage policy id."),
        }, ["volumePath"]),
        c + "FlexVolumeSource": obj("A FlexVolume driver mount.", {
            "driver": string("Driver name.", default=""), "fsType": fs_type, "secretRef": secret_ref,
            "readOnly": read_only, "options": string_map("Driver options."),
        }, ["driver"]),
        c + "PersistentVolumeClaimSpec": obj("What a claim asks for.", {
            "accessModes": strings("Wanted access modes, such as ReadWriteOnce."),
            "selector": ref(META + "LabelSelector", "Volumes that may bind."),
            "resources": ref(c + "VolumeResourceRequirements", "Wanted size.", default={}),
            "volumeName": string("A specific volume to bind."),
            "storageClassName": string("StorageClass to provision from."),
            "volumeMode": string("Filesystem or Block."),
            "dataSource": ref(c + "TypedLocalObjectReference", "Object to populate from."),
            "dataSourceRef": ref(c + "TypedObjectReference", "Object to populate from, any namespace."),
            "volumeAttributesClassName": string("VolumeAttributesClass to use."),
        }),
        c + "VolumeResourceRequirements": obj("Storage requested and allowed.", {
            "limits": quantity_map("Most storage allowed."), "requests": quantity_map("Storage requested."),
        }),
        c + "TypedLocalObjectReference": obj("A typed object in the same namespace.", {
            "apiGroup": string("API group of the object."), "kind": string("Kind.", default=""),
            "name": string("Name.", default=""),
        }, ["kind", "name"], atomic=True),
        c + "TypedObjectReference": obj("A typed object, possibly in another namespace.", {
            "apiGroup": string("API group of the object."), "kind": string("Kind.", default=""),
            "name": string("Name.", default=""), "namespace": string("Namespace."),
        }, ["kind", "name"]),
        c + "PersistentVolumeClaim": obj("A request for storage.", {
            "apiVersion": _API_VERSION, "kind": _KIND, "metadata": _METADATA,
            "spec": ref(c + "PersistentVolumeClaimSpec", "What the claim asks for.", default={}),
            "status": ref(c + "PersistentVolumeClaimStatus", "Binding state of the claim.", default={}),
        }),
        c + "PersistentVolumeClaimStatus": obj("Binding state of a claim.", {
            "phase": string("Pending, Bound or Lost."),
            "accessModes": strings("Access modes of the bound volume."),
            "capacity": quantity_map("Size of the bound volume."),
            "conditions": _conditions(c + "PersistentVolumeClaimCondition", "claim"),
            "allocatedResources": quantity_map("Storage allocated to the claim."),
            "allocatedResourceStatuses": string_map("Resize state per resource."),
            "currentVolumeAttributesClassName": string("VolumeAttributesClass in use."),
            "modifyVolumeStatus": ref(c + "ModifyVolumeStatus", "State of a volume modification."),
        }),
        **_cond(c + "PersistentVolumeClaimCondition", "claim", probe=True),
        c + "ModifyVolumeStatus": obj("State of a volume modification.", {
            "targetVolumeAttributesClassName": string("Class being applied."),
            "status": string("Pending, InProgress or Infeasible.", default=""),
        }, ["status"]),
    }


def _pod_status() -> dict[str, Schema]:
    c = CORE
    return {
        c + "PodStatus": obj("Observed state of a pod.", {
            "observedGeneration": integer("metadata.generation the status reflects.", "int64"),
            "phase": string("Pending, Running, Succeeded, Failed or Unknown.",
                            enum=["Failed", "Pending", "Running", "Succeeded", "Unknown"]),
            "conditions": _conditions(c + "PodCondition", "pod"),
            "message": string("Why the pod is in this state."),
            "reason": string("One-word cause, such as Evicted."),
            "nominatedNodeName": string("Node preemption made room on."),
            "hostIP": string("IP of the pod's node."),
            "hostIPs": refs(c + "HostIP", "IPs of the pod's node.", keys=["ip"], merge_key="ip"),
            "podIP": string("Primary IP of the pod."),
            "podIPs": refs(c + "PodIP", "IPs of the pod, one per family.", keys=["ip"], merge_key="ip"),
            "startTime": time("When the node accepted the pod."),
            "initContainerStatuses": refs(c + "ContainerStatus", "State of each init container.",
                                          list_type="atomic"),
            "containerStatuses": refs(c + "ContainerStatus", "State of each container.", list_type="atomic"),
            "qosClass": string("Guaranteed, Burstable or BestEffort."),
            "ephemeralContainerStatuses": refs(c + "ContainerStatus", "State of each debug container.",
                                               list_type="atomic"),
            "resize": string("State of an in-place resize."),
            "resourceClaimStatuses": refs(c + "PodResourceClaimStatus", "Claims generated for the pod.",
                                          keys=["name"], merge_key="name", strategy="merge,retainKeys"),
        }),
        **_cond(c + "PodCondition", "pod", probe=True, generation=True),
        c + "PodIP": obj("One IP of a pod.", {"ip": string("The address.", default="")}, ["ip"]),
        c + "HostIP": obj("One IP of a node.", {"ip": string("The address.", default="")}, ["ip"]),
        c + "PodResourceClaimStatus": obj("The claim generated for one pod claim entry.", {
            "name": string("Entry in pod.spec.resourceClaims.", default=""),
            "resourceClaimName": string("Name of the generated ResourceClaim."),
        }, ["name"]),
        c + "ContainerStatus": obj("Observed state of one container.", {
            "name": string("Container name.", default=""),
            "state": ref(c + "ContainerState", "Current state.", default={}),
            "lastState": ref(c + "ContainerState", "State before the last restart.", default={}),
            "ready": boolean("Passes its readiness probe.", default=False),
            "restartCount": integer("Times the container was restarted.", default=0),
            "image": string("Image the container runs.", default=""),
            "imageID": string("Resolved image id.", default=""),
            "containerID": string("Runtime id, as <runtime>://<id>."),
            "started": boolean("Has passed its startup probe."),
            "allocatedResources": quantity_map("Resources the node allocated."),
            "resources": ref(c + "ResourceRequirements", "Resources the runtime applied."),
            "volumeMounts": refs(c + "VolumeMountStatus", "Mounts as applied.", keys=["mountPath"],
                                 merge_key="mountPath"),
            "user": ref(c + "ContainerUser", "Identity of the first process."),
            "allocatedResourcesStatus": refs(c + "ResourceStatus", "Health of allocated devices.",
                                             keys=["name"], merge_key="name"),
            "stopSignal": string("Signal used to stop the container."),
        }, ["name", "ready", "restartCount", "image", "imageID"]),
        c + "ContainerState": obj("Exactly one of waiting, running, terminated.", {
            "waiting": ref(c + "ContainerStateWaiting", "Not running yet."),
            "running": ref(c + "ContainerStateRunning", "Running."),
            "terminated": ref(c + "ContainerStateTerminated", "Finished."),
        }),
        c + "ContainerStateWaiting": obj("A container that has not started.", {
            "reason": string("Why it waits, such as ContainerCreating."), "message": string("Details."),
        }),
        c + "ContainerStateRunning": obj("A running container.", {"startedAt": time("When it started.")}),
        c + "ContainerStateTerminated": obj("A finished container.", {
            "exitCode": integer("Exit status.", default=0), "signal": integer("Signal that ended it."),
            "reason": string("Why it ended."), "message": string("Details."),
            "startedAt": time("When it started."), "finishedAt": time("When it ended."),
            "containerID": string("Runtime id, as <runtime>://<id>."),
        }, ["exitCode"]),
        c + "VolumeMountStatus": obj("A mount as applied.", {
            "name": string("Volume name.", default=""), "mountPath": string("Path.", default=""),
            "readOnly": boolean("Mounted read-only."), "recursiveReadOnly": string("Recursive read-only state."),
        }, ["name", "mountPath"]),
        c + "ContainerUser": obj("Identity of a container's process.", {
            "linux": ref(c + "LinuxContainerUser", "Linux ids."),
        }),
        c + "LinuxContainerUser": obj("Linux uid and gids.", {
            "uid": integer("User id.", "int64", default=0), "gid": integer("Group id.", "int64", default=0),
            "supplementalGroups": arr(integer(fmt="int64", default=0), "Extra group ids.", list_type="atomic"),
        }, ["uid", "gid"]),
        c + "ResourceStatus": obj("Health of the devices of one resource.", {
            "name": string("Resource name.", default=""),
            "resources": refs(c + "ResourceHealth", "Per-device health.", keys=["resourceID"]),
        }, ["name"]),
        c + "ResourceHealth": obj("Health of one device.", {
            "resourceID": string("Device id.", default=""), "health": string("Healthy, Unhealthy or Unknown."),
        }, ["resourceID"]),
    }


def _core_other() -> dict[str, Schema]:
    c = CORE
    top = {"apiVersion": _API_VERSION, "kind": _KIND, "metadata": _METADATA}
    return {
        c + "Service": obj("A stable virtual IP and DNS name in front of a set of pods.", {
            **top, "spec": ref(c + "ServiceSpec", "Ports, selector and type of the service.", default={}),
            "status": ref(c + "ServiceStatus", "Load balancer state of the service.", default={}),
        }, gvk=("", "v1", "Service")),
        c + "ServiceSpec": obj("Desired state of a service.", {
            "ports": refs(c + "ServicePort", "Ports the service exposes.", keys=["port", "protocol"],
                          merge_key="port"),
            "selector": string_map("Pods with these labels receive the traffic."),
            "clusterIP": string("Virtual IP; None for a headless service."),
            "clusterIPs": strings("Virtual IPs, one per family."),
            "type": string("ClusterIP, NodePort, LoadBalancer or ExternalName.",
                           enum=["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"], default="ClusterIP"),
            "externalIPs": strings("Extra IPs that nodes accept traffic for."),
            "sessionAffinity": string("None or ClientIP.", enum=["ClientIP", "None"], default="None"),
            "loadBalancerIP": string("Deprecated: requested load balancer IP."),
            "loadBalancerSourceRanges": strings("Client ranges allowed through the load balancer."),
            "externalName": string("DNS name returned for an ExternalName service."),
            "externalTrafficPolicy": string("Cluster or Local."),
            "healthCheckNodePort": integer("Node port for load balancer health checks."),
            "publishNotReadyAddresses": boolean("Publish endpoints of pods that are not ready."),
            "sessionAffinityConfig": ref(c + "SessionAffinityConfig", "Session affinity settings."),
            "ipFamilies": strings("IPv4 and/or IPv6, in order."),
            "ipFamilyPolicy": string("SingleStack, PreferDualStack or RequireDualStack."),
            "allocateLoadBalancerNodePorts": boolean("Allocate node ports for a load balancer."),
            "loadBalancerClass": string("Load balancer implementation to use."),
            "internalTrafficPolicy": string("Cluster or Local, for traffic from inside the cluster."),
            "trafficDistribution": string("Preference for how traffic is spread, such as PreferClose."),
        }),
        c + "ServicePort": obj("One port of a service.", {
            "name": string("Port name; required when there are several ports."),
            "protocol": string("TCP, UDP or SCTP.", enum=["SCTP", "TCP", "UDP"], default="TCP"),
            "appProtocol": string("Application protocol, such as http."),
            "port": integer("Port on the service IP.", default=0),
            "targetPort": int_or_string("Port number or name on the pods; port when empty."),
            "nodePort": integer("Port on every node, for NodePort and LoadBalancer."),
        }, ["port"]),
        c + "SessionAffinityConfig": obj("Session affinity settings.", {
            "clientIP": ref(c + "ClientIPConfig", "ClientIP affinity settings."),
        }),
        c + "ClientIPConfig": obj("ClientIP affinity settings.", {
            "timeoutSeconds": integer("Seconds a client sticks to one endpoint."),
        }),
        c + "ServiceStatus": obj("Observed state of a service.", {
            "loadBalancer": ref(c + "LoadBalancerStatus", "The load balancer, when there is one.", default={}),
            "conditions": refs(META + "Condition", "Latest observations of the service's state.",
                               keys=["type"], merge_key="type"),
        }),
        c + "LoadBalancerStatus": obj("Addresses of a load balancer.", {
            "ingress": refs(c + "LoadBalancerIngress", "Entry points of the load balancer.",
                            list_type="atomic"),
        }),
        c + "LoadBalancerIngress": obj("One entry point of a load balancer.", {
            "ip": string("IP address."), "hostname": string("DNS name."), "ipMode": string("VIP or Proxy."),
            "ports": refs(c + "PortStatus", "State of each port.", list_type="atomic"),
        }),
        c + "PortStatus": obj("State of one port.", {
            "port": integer("Port number.", default=0), "protocol": string("TCP, UDP or SCTP.", default=""),
            "error": string("Problem with the port, if any."),
        }, ["port", "protocol"]),
        c + "Endpoints": obj("Addresses behind a service (superseded by EndpointSlice).", {
            **top, "subsets": refs(c + "EndpointSubset", "Groups of addresses sharing the same ports.",
                                   list_type="atomic"),
        }, gvk=("", "v1", "Endpoints")),
        c + "EndpointSubset": obj("Addresses that share a set of ports.", {
            "addresses": refs(c + "EndpointAddress", "Ready addresses.", list_type="atomic"),
            "notReadyAddresses": refs(c + "EndpointAddress", "Addresses not ready yet.", list_type="atomic"),
            "ports": refs(c + "EndpointPort", "Ports of the addresses.", list_type="atomic"),
        }),
        c + "EndpointAddress": obj("One endpoint address.", {
            "ip": string("IP address.", default=""), "hostname": string("Hostname of the endpoint."),
            "nodeName": string("Node of the endpoint."),
            "targetRef": ref(c + "ObjectReference", "Object behind the address, usually a pod."),
        }, ["ip"], atomic=True),
        c + "EndpointPort": obj("One port of an endpoint subset.", {
            "name": string("Name of the matching service port."), "port": integer("Port number.", default=0),
            "protocol": string("TCP, UDP or SCTP.", default="TCP"), "appProtocol": string("Application protocol."),
        }, ["port"], atomic=True),
        c + "ConfigMap": obj("Non-secret configuration as key/value pairs.", {
            **top,
            "immutable": boolean("When true the data can no longer change."),
            "data": string_map("UTF-8 values by key."),
            "binaryData": map_of({"type": "string", "format": "byte"}, "Binary values by key, base64 on the "
                                 "wire."),
        }, gvk=("", "v1", "ConfigMap")),
        c + "Secret": obj("Sensitive data as key/value pairs.", {
            **top,
            "immutable": boolean("When true the data can no longer change."),
            "data": map_of({"type": "string", "format": "byte"}, "Values by key, base64 on the wire."),
            "stringData": string_map("Write-only plain-text values merged into data on write."),
            "type": string("Kind of secret, such as Opaque or kubernetes.io/tls.", default="Opaque"),
        }, gvk=("", "v1", "Secret")),
        c + "ServiceAccount": obj("An identity for processes in pods.", {
            **top,
            "secrets": refs(c + "ObjectReference", "Secrets pods of this account may use (legacy).",
                            keys=["name"], merge_key="name"),
            "imagePullSecrets": refs(c + "LocalObjectReference", "Registry credentials added to pods.",
                                     list_type="atomic"),
            "automountServiceAccountToken": boolean("Mount a token into pods by default."),
        }, gvk=("", "v1", "ServiceAccount")),
        c + "Event": obj("A report of something that happened to an object.", {
            **top,
            "involvedObject": ref(c + "ObjectReference", "Object the event is about.", default={}),
            "reason": string("Short CamelCase cause, such as Scheduled."),
            "message": string("Human-readable description."),
            "source": ref(c + "EventSource", "Component that reported the event.", default={}),
            "firstTimestamp": time("When the event first happened."),
            "lastTimestamp": time("When the event last happened."),
            "count": integer("How many times it happened."),
            "type": string("Normal or Warning."),
            "eventTime": ref(META + "MicroTime", "When the event first happened, precisely."),
            "series": ref(c + "EventSeries", "The series this event belongs to."),
            "action": string("What was done or failed."),
            "related": ref(c + "ObjectReference", "A second object involved."),
            "reportingComponent": string("Controller that reported the event."),
            "reportingInstance": string("Instance of that controller."),
        }, ["metadata", "involvedObject"], gvk=("", "v1", "Event")),
        c + "EventSource": obj("The reporter of an event.", {
            "component": string("Component name."), "host": string("Node name."),
        }),
        c + "EventSeries": obj("Repeats of one event.", {
            "count": integer("Number of occurrences so far."),
            "lastObservedTime": ref(META + "MicroTime", "When it last happened."),
        }),
        c + "Namespace": obj("A scope for names, policies and quotas.", {
            **top, "spec": ref(c + "NamespaceSpec", "Finalizers of the namespace.", default={}),
            "status": ref(c + "NamespaceStatus", "Phase of the namespace.", default={}),
        }, gvk=("", "v1", "Namespace")),
        c + "NamespaceSpec": obj("Desired state of a namespace.", {
            "finalizers": strings("Steps that must finish before the namespace is removed."),
        }),
        c + "NamespaceStatus": obj("Observed state of a namespace.", {
            "phase": string("Active or Terminating.", enum=["Active", "Terminating"]),
            "conditions": _conditions(c + "NamespaceCondition", "namespace"),
        }),
        **_cond(c + "NamespaceCondition", "namespace"),
        c + "ReplicationController": obj("Keeps a number of pod replicas running (predecessor of "
                                         "ReplicaSet).", {
            **top, "spec": ref(c + "ReplicationControllerSpec", "Desired replicas and pod template.",
                               default={}),
            "status": ref(c + "ReplicationControllerStatus", "Observed replicas.", default={}),
        }, gvk=("", "v1", "ReplicationController")),
        c + "ReplicationControllerSpec": obj("Desired state of a replication controller.", {
            "replicas": integer("Wanted number of pods.", default=1),
            "minReadySeconds": integer("Seconds a pod must be ready to count as available."),
            "selector": string_map("Labels of the pods it manages."),
            "template": ref(c + "PodTemplateSpec", "Pod created when replicas are missing."),
        }),
        c + "ReplicationControllerStatus": obj("Observed state of a replication controller.", {
            "replicas": integer("Current number of pods.", default=0),
            "fullyLabeledReplicas": integer("Pods whose labels match the template."),
            "readyReplicas": integer("Ready pods."),
            "availableReplicas": integer("Available pods."),
            "observedGeneration": integer("Generation last processed.", "int64"),
            "conditions": _conditions(c + "ReplicationControllerCondition", "replication controller"),
        }, ["replicas"]),
        **_cond(c + "ReplicationControllerCondition", "replication controller"),
        **_node(),
    }


def _node() -> dict[str, Schema]:
    c = CORE
    return {
        c + "Node": obj("A machine that runs pods.", {
            "apiVersion": _API_VERSION, "kind": _KIND, "metadata": _METADATA,
            "spec": ref(c + "NodeSpec", "How the node is configured.", default={}),
            "status": ref(c + "NodeStatus", "Capacity, conditions and addresses the kubelet reports.",
                          default={}),
        }, gvk=("", "v1", "Node")),
        c + "NodeSpec": obj("Desired configuration of a node.", {
            "podCIDR": string("Pod IP range of the node."),
            "podCIDRs": strings("Pod IP ranges, one per family.", list_type="set", strategy="merge"),
            "providerID": string("Cloud provider id of the machine."),
            "unschedulable": boolean("Keep new pods off the node (cordon)."),
            "taints": refs(c + "Taint", "Taints that repel pods without a toleration.", list_type="atomic"),
            "configSource": ref(c + "NodeConfigSource", "Deprecated: dynamic kubelet config."),
            "externalID": string("Deprecated."),
        }),
        c + "Taint": obj("Repels pods that do not tolerate it.", {
            "key": string("Taint key.", default=""), "value": string("Taint value."),
            "effect": string("NoSchedule, PreferNoSchedule or NoExecute.", default="",
                             enum=["NoExecute", "NoSchedule", "PreferNoSchedule"]),
            "timeAdded": time("When a NoExecute taint was added."),
        }, ["key", "effect"]),
        c + "NodeConfigSource": obj("Deprecated dynamic kubelet configuration.", {
            "configMap": ref(c + "ConfigMapNodeConfigSource", "ConfigMap with the configuration."),
        }),
        c + "ConfigMapNodeConfigSource": obj("A ConfigMap with kubelet configuration.", {
            "namespace": string("Namespace.", default=""), "name": string("Name.", default=""),
            "uid": string("UID."), "resourceVersion": string("Version."),
            "kubeletConfigKey": string("Key holding the configuration.", default=""),
        }, ["namespace", "name", "kubeletConfigKey"]),
        c + "NodeStatus": obj("Observed state of a node.", {
            "capacity": quantity_map("Total resources of the node."),
            "allocatable": quantity_map("Resources available to pods."),
            "phase": string("Deprecated."),
            "conditions": _conditions(c + "NodeCondition", "node"),
            "addresses": refs(c + "NodeAddress", "Addresses of the node.", keys=["type"], merge_key="type"),
            "daemonEndpoints": ref(c + "NodeDaemonEndpoints", "Ports of daemons on the node.", default={}),
            "nodeInfo": ref(c + "NodeSystemInfo", "Versions and ids of the machine.", default={}),
            "images": refs(c + "ContainerImage", "Images present on the node.", list_type="atomic"),
            "volumesInUse": strings("Attachable volumes in use."),
            "volumesAttached": refs(c + "AttachedVolume", "Volumes attached to the node.",
                                    list_type="atomic"),
            "config": ref(c + "NodeConfigStatus", "Deprecated: dynamic config state."),
            "runtimeHandlers": refs(c + "NodeRuntimeHandler", "Runtime handlers available.",
                                    list_type="atomic"),
            "features": ref(c + "NodeFeatures", "Features the node supports."),
        }),
        **_cond(c + "NodeCondition", "node", heartbeat=True),
        c + "NodeAddress": obj("One address of a node.", {
            "type": string("Hostname, InternalIP, ExternalIP, InternalDNS or ExternalDNS.", default=""),
            "address": string("The address.", default=""),
        }, ["type", "address"]),
        c + "NodeDaemonEndpoints": obj("Ports of daemons on a node.", {
            "kubeletEndpoint": ref(c + "DaemonEndpoint", "Port of the kubelet.", default={}),
        }),
        c + "DaemonEndpoint": obj("A daemon's port.", {"Port": integer("Port number.", default=0)}, ["Port"]),
        c + "NodeSystemInfo": obj("Versions and ids of a node.", {
            "machineID": string("Machine id.", default=""), "systemUUID": string("System UUID.", default=""),
            "bootID": string("Boot id.", default=""), "kernelVersion": string("Kernel version.", default=""),
            "osImage": string("Operating system name.", default=""),
            "containerRuntimeVersion": string("Runtime, as <name>://<version>.", default=""),
            "kubeletVersion": string("Kubelet version.", default=""),
            "kubeProxyVersion": string("Deprecated.", default=""),
            "operatingSystem": string("linux or windows.", default=""),
            "architecture": string("CPU architecture.", default=""),
            "swap": ref(c + "NodeSwapStatus", "Swap of the node."),
        }, ["machineID", "systemUUID", "bootID", "kernelVersion", "osImage", "containerRuntimeVersion",
            "kubeletVersion", "kubeProxyVersion", "operatingSystem", "architecture"]),
        c + "NodeSwapStatus": obj("Swap of a node.", {"capacity": integer("Swap size in bytes.", "int64")}),
        c + "ContainerImage": obj("An image on a node.", {
            "names": strings("Names and digests of the image."), "sizeBytes": integer("Size.", "int64"),
        }),
        c + "AttachedVolume": obj("A volume attached to a node.", {
            "name": string("Volume name.", default=""), "devicePath": string("Device path.", default=""),
        }, ["name", "devicePath"]),
        c + "NodeConfigStatus": obj("Deprecated dynamic config state.", {
            "assigned": ref(c + "NodeConfigSource", "Assigned config."),
            "active": ref(c + "NodeConfigSource", "Active config."),
            "lastKnownGood": ref(c + "NodeConfigSource", "Last config known to work."),
            "error": string("Problem applying the config."),
        }),
        c + "NodeRuntimeHandler": obj("A runtime handler of the node.", {
            "name": string("Handler name; empty for the default."),
            "features": ref(c + "NodeRuntimeHandlerFeatures", "Its features."),
        }),
        c + "NodeRuntimeHandlerFeatures": obj("Features of a runtime handler.", {
            "recursiveReadOnlyMounts": boolean("Supports recursive read-only mounts."),
            "userNamespaces": boolean("Supports user namespaces."),
        }),
        c + "NodeFeatures": obj("Features of a node.", {
            "supplementalGroupsPolicy": boolean("Supports supplementalGroupsPolicy."),
        }),
    }


def _workload(kind: str, what: str, spec: str, status: str) -> Schema:
    return obj(what, {
        "apiVersion": _API_VERSION, "kind": _KIND, "metadata": _METADATA,
        "spec": ref(spec, f"Desired state of the {kind}.", default={}),
        "status": ref(status, f"Observed state of the {kind}.", default={}),
    }, gvk=(*_GROUPS[spec.rsplit(".", 1)[0] + "."], kind))


_GROUPS: Mapping[str, tuple[str, str]] = MappingProxyType({
    CORE: ("", "v1"), APPS: ("apps", "v1"), BATCH: ("batch", "v1"), DISCOVERY: ("discovery.k8s.io", "v1"),
    COORDINATION: ("coordination.k8s.io", "v1"),
})


def _apps() -> dict[str, Schema]:
    a, c, m = APPS, CORE, META
    selector = ref(m + "LabelSelector", "Labels of the pods it manages; must match the template.")
    template = ref(c + "PodTemplateSpec", "Pods it creates.", default={})
    history = integer("Old revisions kept for rollback.", default=10)
    min_ready = integer("Seconds a new pod must be ready to count as available.")
    return {
        a + "Deployment": _workload("Deployment", "Declarative rolling updates of replicated pods.",
                                    a + "DeploymentSpec", a + "DeploymentStatus"),
        a + "DeploymentSpec": obj("Desired state of a deployment.", {
            "replicas": integer("Wanted number of pods.", default=1),
            "selector": selector, "template": template,
            "strategy": ref(a + "DeploymentStrategy", "How old pods are replaced by new ones.", default={}),
            "minReadySeconds": min_ready, "revisionHistoryLimit": history,
            "paused": boolean("Stop rolling out template changes."),
            "progressDeadlineSeconds": integer("Seconds without progress before the rollout is reported as "
                                               "failed.", default=600),
        }, ["selector", "template"]),
        a + "DeploymentStrategy": obj("How a deployment replaces pods.", {
            "type": string("RollingUpdate or Recreate.", enum=["Recreate", "RollingUpdate"]),
            "rollingUpdate": ref(a + "RollingUpdateDeployment", "Pace of a rolling update."),
        }),
        a + "RollingUpdateDeployment": obj("Pace of a rolling update.", {
            "maxUnavailable": int_or_string("Pods (or percent) that may be unavailable during the update."),
            "maxSurge": int_or_string("Pods (or percent) that may exist above the wanted count."),
        }),
        a + "DeploymentStatus": obj("Observed state of a deployment.", {
            "observedGeneration": integer("Generation last processed.", "int64"),
            "replicas": integer("Pods that exist."), "updatedReplicas": integer("Pods of the current template."),
            "readyReplicas": integer("Ready pods."), "availableReplicas": integer("Available pods."),
            "unavailableReplicas": integer("Pods still missing or not available."),
            "terminatingReplicas": integer("Pods being deleted."),
            "conditions": _conditions(a + "DeploymentCondition", "deployment"),
            "collisionCount": integer("Hash collisions seen; salts the pod-template-hash."),
        }),
        **_cond(a + "DeploymentCondition", "deployment", update=True),
        a + "ReplicaSet": _workload("ReplicaSet", "Keeps a number of identical pods running.",
                                    a + "ReplicaSetSpec", a + "ReplicaSetStatus"),
        a + "ReplicaSetSpec": obj("Desired state of a replica set.", {
            "replicas": integer("Wanted number of pods.", default=1),
            "minReadySeconds": min_ready, "selector": selector,
            "template": ref(c + "PodTemplateSpec", "Pods it creates.", default={}),
        }, ["selector"]),
        a + "ReplicaSetStatus": obj("Observed state of a replica set.", {
            "replicas": integer("Pods that exist.", default=0),
            "fullyLabeledReplicas": integer("Pods whose labels match the template."),
            "readyReplicas": integer("Ready pods."), "availableReplicas": integer("Available pods."),
            "terminatingReplicas": integer("Pods being deleted."),
            "observedGeneration": integer("Generation last processed.", "int64"),
            "conditions": _conditions(a + "ReplicaSetCondition", "replica set"),
        }, ["replicas"]),
        **_cond(a + "ReplicaSetCondition", "replica set"),
        a + "DaemonSet": _workload("DaemonSet", "Runs one pod on every eligible node.",
                                   a + "DaemonSetSpec", a + "DaemonSetStatus"),
        a + "DaemonSetSpec": obj("Desired state of a daemon set.", {
            "selector": selector, "template": template,
            "updateStrategy": ref(a + "DaemonSetUpdateStrategy", "How pods are replaced.", default={}),
            "minReadySeconds": min_ready, "revisionHistoryLimit": history,
        }, ["selector", "template"]),
        a + "DaemonSetUpdateStrategy": obj("How a daemon set replaces pods.", {
            "type": string("RollingUpdate or OnDelete.", enum=["OnDelete", "RollingUpdate"]),
            "rollingUpdate": ref(a + "RollingUpdateDaemonSet", "Pace of a rolling update."),
        }),
        a + "RollingUpdateDaemonSet": obj("Pace of a daemon set rolling update.", {
            "maxUnavailable": int_or_string("Nodes (or percent) whose pod may be unavailable."),
            "maxSurge": int_or_string("Nodes (or percent) that may run an old and a new pod at once."),
        }),
        a + "DaemonSetStatus": obj("Observed state of a daemon set.", {
            "currentNumberScheduled": integer("Nodes running a pod that should.", default=0),
            "numberMisscheduled": integer("Nodes running a pod that should not.", default=0),
            "desiredNumberScheduled": integer("Nodes that should run a pod.", default=0),
            "numberReady": integer("Nodes with a ready pod.", default=0),
            "observedGeneration": integer("Generation last processed.", "int64"),
            "updatedNumberScheduled": integer("Nodes running the current template."),
            "numberAvailable": integer("Nodes with an available pod."),
            "numberUnavailable": integer("Nodes without an available pod."),
            "collisionCount": integer("Hash collisions seen."),
            "conditions": _conditions(a + "DaemonSetCondition", "daemon set"),
        }, ["currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady"]),
        **_cond(a + "DaemonSetCondition", "daemon set"),
        a + "StatefulSet": _workload("StatefulSet", "Pods with stable names and storage, created in order.",
                                     a + "StatefulSetSpec", a + "StatefulSetStatus"),
        a + "StatefulSetSpec": obj("Desired state of a stateful set.", {
            "replicas": integer("Wanted number of pods.", default=1),
            "selector": selector, "template": template,
            "volumeClaimTemplates": refs(c + "PersistentVolumeClaim", "Claims created for every pod.",
                                         list_type="atomic"),
            "serviceName": string("Headless service that gives the pods DNS names."),
            "podManagementPolicy": string("OrderedReady or Parallel.", default="OrderedReady"),
            "updateStrategy": ref(a + "StatefulSetUpdateStrategy", "How pods are replaced.", default={}),
            "revisionHistoryLimit": history, "minReadySeconds": min_ready,
            "persistentVolumeClaimRetentionPolicy": ref(
                a + "StatefulSetPersistentVolumeClaimRetentionPolicy", "What happens to claims on scale-down "
                "and deletion."),
            "ordinals": ref(a + "StatefulSetOrdinals", "Numbering of the pods."),
        }, ["selector", "template"]),
        a + "StatefulSetUpdateStrategy": obj("How a stateful set replaces pods.", {
            "type": string("RollingUpdate or OnDelete.", enum=["OnDelete", "RollingUpdate"]),
            "rollingUpdate": ref(a + "RollingUpdateStatefulSetStrategy", "Pace of a rolling update."),
        }),
        a + "RollingUpdateStatefulSetStrategy": obj("Pace of a stateful set rolling update.", {
            "partition": integer("Only pods with an ordinal at least this are updated."),
            "maxUnavailable": int_or_string("Pods (or percent) that may be unavailable."),
        }),
        a + "StatefulSetPersistentVolumeClaimRetentionPolicy": obj("Claim retention of a stateful set.", {
            "whenDeleted": string("Retain or Delete, when the set is deleted."),
            "whenScaled": string("Retain or Delete, when the set scales down."),
        }),
        a + "StatefulSetOrdinals": obj("Numbering of stateful set pods.", {
            "start": integer("First ordinal.", default=0),
        }),
        a + "StatefulSetStatus": obj("Observed state of a stateful set.", {
            "observedGeneration": integer("Generation last processed.", "int64"),
            "replicas": integer("Pods that exist.", default=0), "readyReplicas": integer("Ready pods."),
            "currentReplicas": integer("Pods of currentRevision."),
            "updatedReplicas": integer("Pods of updateRevision."),
            "currentRevision": string("Revision of the older pods."),
            "updateRevision": string("Revision of the newest template."),
            "collisionCount": integer("Hash collisions seen."),
            "conditions": _conditions(a + "StatefulSetCondition", "stateful set"),
            "availableReplicas": integer("Available pods.", default=0),
        }, ["replicas"]),
        **_cond(a + "StatefulSetCondition", "stateful set"),
        a + "ControllerRevision": obj("An immutable snapshot of a controller's pod template, for rollback.", {
            "apiVersion": _API_VERSION, "kind": _KIND, "metadata": _METADATA,
            "data": ref(RAW_EXTENSION, "The snapshot."),
            "revision": integer("Revision number.", "int64", default=0),
        }, ["revision"], gvk=("apps", "v1", "ControllerRevision")),
    }


def _batch() -> dict[str, Schema]:
    b, c, m = BATCH, CORE, META
    return {
        b + "Job": _workload("Job", "Runs pods until a number of them succeed.", b + "JobSpec", b + "JobStatus"),
        b + "JobSpec": obj("Desired state of a job.", {
            "parallelism": integer("Most pods running at once."),
            "completions": integer("Successful pods needed."),
            "activeDeadlineSeconds": integer("Seconds the job may run before it is failed.", "int64"),
            "podFailurePolicy": ref(b + "PodFailurePolicy", "How pod failures are counted."),
            "successPolicy": ref(b + "SuccessPolicy", "When an indexed job counts as succeeded."),
            "backoffLimit": integer("Retries before the job fails.", default=6),
            "backoffLimitPerIndex": integer("Retries per index of an indexed job."),
            "maxFailedIndexes": integer("Failed indexes before the job fails."),
            "selector": ref(m + "LabelSelector", "Labels of the job's pods; generated by default."),
            "manualSelector": boolean("Use the given selector instead of a generated one."),
            "template": ref(c + "PodTemplateSpec", "Pods it creates.", default={}),
            "ttlSecondsAfterFinished": integer("Seconds after finishing before the job is deleted."),
            "completionMode": string("NonIndexed or Indexed.", default="NonIndexed"),
            "suspend": boolean("Hold off creating pods."),
            "podReplacementPolicy": string("TerminatingOrFailed or Failed."),
            "managedBy": string("Controller responsible for the job."),
        }, ["template"]),
        b + "PodFailurePolicy": obj("Rules for pod failures.", {
            "rules": refs(b + "PodFailurePolicyRule", "Rules, first match wins.", list_type="atomic"),
        }, ["rules"]),
        b + "PodFailurePolicyRule": obj("What to do with a matching pod failure.", {
            "action": string("FailJob, FailIndex, Ignore or Count.", default=""),
            "onExitCodes": ref(b + "PodFailurePolicyOnExitCodesRequirement", "Match on exit codes."),
            "onPodConditions": refs(b + "PodFailurePolicyOnPodConditionsPattern", "Match on pod conditions.",
                                    list_type="atomic"),
        }, ["action"]),
        b + "PodFailurePolicyOnExitCodesRequirement": obj("Exit codes to match.", {
            "containerName": string("Only this container."),
            "operator": string("In or NotIn.", default=""),
            "values": arr(integer(default=0), "The exit codes.", list_type="set"),
        }, ["operator", "values"]),
        b + "PodFailurePolicyOnPodConditionsPattern": obj("A pod condition to match.", {
            "type": string("Condition type.", default=""), "status": string("Condition status.", default=""),
        }, ["type"]),
        b + "SuccessPolicy": obj("When an indexed job succeeds.", {
            "rules": refs(b + "SuccessPolicyRule", "Rules; any may match.", list_type="atomic"),
        }, ["rules"]),
        b + "SuccessPolicyRule": obj("A set of indexes that must succeed.", {
            "succeededIndexes": string("Index ranges, such as 0-2,5."),
            "succeededCount": integer("How many of them."),
        }),
        b + "JobStatus": obj("Observed state of a job.", {
            "conditions": _conditions(b + "JobCondition", "job", list_map=False),
            "startTime": time("When the job started."), "completionTime": time("When the job completed."),
            "active": integer("Running pods."), "succeeded": integer("Succeeded pods."),
            "failed": integer("Failed pods."), "terminating": integer("Pods being deleted."),
            "completedIndexes": string("Completed indexes, compressed."),
            "failedIndexes": string("Failed indexes, compressed."),
            "uncountedTerminatedPods": ref(b + "UncountedTerminatedPods", "Finished pods not counted yet."),
            "ready": integer("Ready pods."),
        }),
        **_cond(b + "JobCondition", "job", probe=True),
        b + "UncountedTerminatedPods": obj("UIDs of finished pods not yet counted.", {
            "succeeded": strings("Succeeded pod UIDs.", list_type="set"),
            "failed": strings("Failed pod UIDs.", list_type="set"),
        }),
        b + "CronJob": _workload("CronJob", "Creates jobs on a schedule.", b + "CronJobSpec", b + "CronJobStatus"),
        b + "CronJobSpec": obj("Desired state of a cron job.", {
            "schedule": string("Cron schedule, such as */5 * * * *.", default=""),
            "timeZone": string("Time zone of the schedule; the controller's when empty."),
            "startingDeadlineSeconds": integer("Seconds a missed run may still start.", "int64"),
            "concurrencyPolicy": string("Allow, Forbid or Replace.", enum=["Allow", "Forbid", "Replace"],
                                        default="Allow"),
            "suspend": boolean("Hold off new runs."),
            "jobTemplate": ref(b + "JobTemplateSpec", "Jobs it creates.", default={}),
            "successfulJobsHistoryLimit": integer("Finished successful jobs kept.", default=3),
            "failedJobsHistoryLimit": integer("Failed jobs kept.", default=1),
        }, ["schedule", "jobTemplate"]),
        b + "JobTemplateSpec": obj("A job description used by a cron job.", {
            "metadata": _METADATA, "spec": ref(b + "JobSpec", "Desired state of the jobs.", default={}),
        }),
        b + "CronJobStatus": obj("Observed state of a cron job.", {
            "active": refs(c + "ObjectReference", "Jobs running now.", list_type="atomic"),
            "lastScheduleTime": time("When a job was last scheduled."),
            "lastSuccessfulTime": time("When a job last succeeded."),
        }),
    }


def _discovery_coordination() -> dict[str, Schema]:
    d, c, co, m = DISCOVERY, CORE, COORDINATION, META
    return {
        d + "EndpointSlice": obj("A group of network endpoints of a service.", {
            "apiVersion": _API_VERSION, "kind": _KIND, "metadata": _METADATA,
            "addressType": string("IPv4, IPv6 or FQDN.", default=""),
            "endpoints": refs(d + "Endpoint", "The endpoints.", list_type="atomic"),
            "ports": refs(d + "EndpointPort", "Ports every endpoint serves.", list_type="atomic"),
        }, ["addressType", "endpoints"], gvk=("discovery.k8s.io", "v1", "EndpointSlice")),
        d + "Endpoint": obj("One endpoint, usually a pod.", {
            "addresses": strings("Addresses of the endpoint.", list_type="set"),
            "conditions": ref(d + "EndpointConditions", "Readiness of the endpoint.", default={}),
            "hostname": string("Hostname of the endpoint."),
            "targetRef": ref(c + "ObjectReference", "Object behind the endpoint."),
            "deprecatedTopology": string_map("Deprecated topology labels."),
            "nodeName": string("Node hosting the endpoint."),
            "zone": string("Zone of the endpoint."),
            "hints": ref(d + "EndpointHints", "Routing hints."),
        }, ["addresses"]),
        d + "EndpointConditions": obj("Readiness of an endpoint.", {
            "ready": boolean("Ready to receive traffic."), "serving": boolean("Serving, even if terminating."),
            "terminating": boolean("Being shut down."),
        }),
        d + "EndpointHints": obj("Routing hints of an endpoint.", {
            "forZones": refs(d + "ForZone", "Zones that should use it.", list_type="atomic"),
            "forNodes": refs(d + "ForNode", "Nodes that should use it.", list_type="atomic"),
        }),
        d + "ForZone": obj("A zone.", {"name": string("Zone name.", default="")}, ["name"]),
        d + "ForNode": obj("A node.", {"name": string("Node name.", default="")}, ["name"]),
        d + "EndpointPort": obj("One port of an endpoint slice.", {
            "name": string("Name of the matching service port."),
            "protocol": string("TCP, UDP or SCTP.", default="TCP"),
            "port": integer("Port number."), "appProtocol": string("Application protocol."),
        }, atomic=True),
        co + "Lease": obj("A time-limited claim, used for leader election and node heartbeats.", {
            "apiVersion": _API_VERSION, "kind": _KIND, "metadata": _METADATA,
            "spec": ref(co + "LeaseSpec", "Holder and timing of the lease.", default={}),
        }, gvk=("coordination.k8s.io", "v1", "Lease")),
        co + "LeaseSpec": obj("Holder and timing of a lease.", {
            "holderIdentity": string("Current holder."),
            "leaseDurationSeconds": integer("Seconds candidates wait after the last renewal."),
            "acquireTime": ref(m + "MicroTime", "When the current holder acquired it."),
            "renewTime": ref(m + "MicroTime", "When the holder last renewed it."),
            "leaseTransitions": integer("How many times the holder changed."),
            "strategy": string("Leader election strategy for coordinated elections."),
            "preferredHolder": string("Holder that should take over next."),
        }),
    }


def _list_kind(name: str, rt: ResourceType) -> Schema:
    return obj(f"A list of {rt.kind} objects.", {
        "apiVersion": _API_VERSION, "kind": _KIND, "metadata": _LIST_METADATA,
        "items": refs(name, f"The {rt.kind} objects."),
    }, ["items"], gvk=(rt.group, rt.version, rt.list_kind))


def definition_name(rt: ResourceType) -> str:
    """Upstream's definition name of a kind: io.k8s.api.<group>.<version>.<Kind>."""
    group = rt.group.split(".")[0] if rt.group else "core"
    return f"io.k8s.api.{group}.{rt.version}.{rt.kind}"


def list_definition_name(rt: ResourceType) -> str:
    return f"{definition_name(rt)}List"


@functools.cache
def definitions() -> Mapping[str, Schema]:
    """Every named definition, the per-kind list kinds included. Read-only."""
    table: dict[str, Schema] = {**_meta(), **_request_meta(), **_pod(), **_core_other(), **_apps(), **_batch(),
                                **_discovery_coordination(), **reviews.definitions()}
    for rt in RESOURCES:
        if rt.stored:  # the review kinds have no lists
            table[list_definition_name(rt)] = _list_kind(definition_name(rt), rt)
    return MappingProxyType(table)


__all__ = ["definition_name", "definitions", "list_definition_name"]
