"""Defaulting and validation of the fields the rest of the system relies on.

The API server calls `apply_defaults` and `validate`, and `unknown_fields` and
`type_errors` for field validation; the last two are driven by the per-kind
schemas in `types.py` (which also feed the OpenAPI documents). Defaults are
upstream's SetDefaults_* values; error paths, reasons and messages follow
upstream's validation so that kubectl and clients see the same 422 bodies.
Pod templates are defaulted and validated the same way wherever they appear
(Pod, Deployment, ReplicaSet, DaemonSet, StatefulSet, Job, CronJob, RC).
"""

from __future__ import annotations

from typing import Any

from controlplane.api import errors
from controlplane.api import validation as v
from controlplane.api.errors import FieldCause
from controlplane.api.resources import ResourceType
from controlplane.api.schema import configdata, objectmeta, podnames, volumes
from controlplane.api.schema.check import check, fill_defaults

Obj = dict[str, Any]

# Upstream's messages, kept importable from here for the callers that word their own causes.
SUBDOMAIN_MSG = v.SUBDOMAIN_MSG
LABEL_MSG = v.LABEL_MSG

_TEMPLATE_KINDS = {"Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "Job", "ReplicationController"}


# ---------------------------------------------------------------------------- defaults

# Unconditional defaults (probe timings, port protocols, history limits, defaultMode...) are the `default`
# values of the kind schemas in types.py, filled by `fill_defaults`; what follows depends on other fields.

def _default_container(c: Obj) -> None:
    image = str(c.get("image") or "")
    tagless = ":" not in image.rsplit("/", 1)[-1] and "@" not in image
    if "imagePullPolicy" not in c:
        c["imagePullPolicy"] = "Always" if tagless or image.endswith(":latest") else "IfNotPresent"
    c.setdefault("resources", {})


def default_pod_spec(spec: Obj, *, in_template_of: str = "") -> None:
    if in_template_of != "Job":
        spec.setdefault("restartPolicy", "Always")
    spec.setdefault("securityContext", {})
    if spec.get("serviceAccountName") or spec.get("serviceAccount"):
        spec.setdefault("serviceAccountName", spec.get("serviceAccount"))
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
    else:
        spec["serviceAccountName"] = spec["serviceAccount"] = "default"
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        _default_container(c)
    for vol in spec.get("volumes") or []:
        if "hostPath" in vol:
            vol["hostPath"].setdefault("type", "")


def _default_rolling(spec: Obj, key: str, surge: Any, unavailable: Any) -> None:
    strategy = spec.setdefault(key, {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        if surge is not None:
            rolling.setdefault("maxSurge", surge)
        rolling.setdefault("maxUnavailable", unavailable)


def apply_defaults(rt: ResourceType, obj: Obj) -> None:
    """Fill upstream defaults into `obj` in place."""
    fill_defaults(rt, obj)
    kind = rt.kind
    spec = obj.get("spec")
    if kind == "Pod" and isinstance(spec, dict):
        default_pod_spec(spec)
    if kind in _TEMPLATE_KINDS and isinstance(spec, dict):
        template_spec = (spec.get("template") or {}).get("spec")
        if isinstance(template_spec, dict):
            default_pod_spec(template_spec, in_template_of=kind)
    if kind == "CronJob" and isinstance(spec, dict):
        spec.setdefault("suspend", False)
        job_spec = (spec.get("jobTemplate") or {}).get("spec")
        if isinstance(job_spec, dict):
            _default_job(job_spec)
            template_spec = (job_spec.get("template") or {}).get("spec")
            if isinstance(template_spec, dict):
                default_pod_spec(template_spec, in_template_of="Job")
    if not isinstance(spec, dict):
        spec = None
    if kind == "Deployment" and spec is not None:
        _default_rolling(spec, "strategy", "25%", "25%")
    elif kind == "ReplicationController" and spec is not None:
        if not spec.get("selector"):
            spec["selector"] = dict(((spec.get("template") or {}).get("metadata") or {}).get("labels") or {})
    elif kind == "DaemonSet" and spec is not None:
        _default_rolling(spec, "updateStrategy", 0, 1)
    elif kind == "StatefulSet" and spec is not None:
        strategy = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
        if strategy.get("type") == "RollingUpdate":
            strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
        spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
    elif kind == "Job" and spec is not None:
        _default_job(spec)
    elif kind == "Service" and spec is not None:
        _default_service(spec)
    elif kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")


def _default_job(spec: Obj) -> None:
    if "completions" not in spec and "parallelism" not in spec:
        spec["completions"] = 1  # a work-queue Job (parallelism only) keeps completions unset
    spec.setdefault("parallelism", 1)
    spec.setdefault("suspend", False)


def _default_service(spec: Obj) -> None:
    if spec["sessionAffinity"] == "ClientIP":
        cfg = spec.setdefault("sessionAffinityConfig", {}).setdefault("clientIP", {})
        cfg.setdefault("timeoutSeconds", 10800)
    if spec["type"] != "ExternalName":
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        if "port" in port:
            port.setdefault("targetPort", port["port"])


# ---------------------------------------------------------------------------- validation

def _port_causes(path: str, value: Any, required: bool = True) -> list[FieldCause]:
    if value is None:
        return [FieldCause(path, "Required value", "FieldValueRequired")] if required else []
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        return [FieldCause(path, f"Invalid value: {value!r}: must be between 1 and 65535, inclusive")]
    return []


def validate_pod_spec(path: str, spec: Any, *, job_template: bool = False) -> list[FieldCause]:
    if not isinstance(spec, dict):
        return [FieldCause(path, "Required value", "FieldValueRequired")]
    causes: list[FieldCause] = []
    containers = spec.get("containers")
    if not containers:
        causes.append(FieldCause(f"{path}.containers", "Required value", "FieldValueRequired"))
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        items = spec.get(group) or []
        if not isinstance(items, list):
            causes.append(FieldCause(f"{path}.{group}", "Invalid value: must be a list"))
            continue
        for i, c in enumerate(items):
            cpath = f"{path}.{group}[{i}]"
            if not isinstance(c, dict):
                causes.append(FieldCause(cpath, "Invalid value: must be an object"))
                continue
            name = c.get("name")
            if not name:
                causes.append(FieldCause(f"{cpath}.name", "Required value", "FieldValueRequired"))
            elif not isinstance(name, str) or v.is_dns1123_label(name):
                causes += [v.invalid(f"{cpath}.name", name, msg) for msg in v.is_dns1123_label(str(name))]
            elif name in seen:
                causes.append(FieldCause(f"{cpath}.name", f'Duplicate value: "{name}"', "FieldValueDuplicate"))
            else:
                seen.add(name)
            if not c.get("image"):
                causes.append(FieldCause(f"{cpath}.image", "Required value", "FieldValueRequired"))
            for j, port in enumerate(c.get("ports") or []):
                causes += _port_causes(f"{cpath}.ports[{j}].containerPort", port.get("containerPort"))
                causes += _port_causes(f"{cpath}.ports[{j}].hostPort", port.get("hostPort"), required=False)
                if port.get("protocol", "TCP") not in ("TCP", "UDP", "SCTP"):
                    causes.append(FieldCause(f"{cpath}.ports[{j}].protocol",
                                             f'Unsupported value: "{port.get("protocol")}": supported values: '
                                             '"SCTP", "TCP", "UDP"', "FieldValueNotSupported"))
            policy = c.get("imagePullPolicy")
            if policy not in (None, "Always", "IfNotPresent", "Never"):
                causes.append(FieldCause(f"{cpath}.imagePullPolicy", f'Unsupported value: "{policy}": supported '
                                         'values: "Always", "IfNotPresent", "Never"', "FieldValueNotSupported"))
    restart = spec.get("restartPolicy")
    allowed = ("OnFailure", "Never") if job_template else ("Always", "OnFailure", "Never")
    if job_template and restart is None:
        causes.append(FieldCause(f"{path}.restartPolicy", 'Required value: valid values: "OnFailure", "Never"',
                                 "FieldValueRequired"))
    elif restart is not None and restart not in allowed:
        supported = ", ".join(f'"{a}"' for a in allowed)
        causes.append(FieldCause(f"{path}.restartPolicy", f'Unsupported value: "{restart}": supported values: '
                                 f"{supported}", "FieldValueNotSupported"))
    volume_causes, names = volumes.volume_causes(f"{path}.volumes", spec.get("volumes"))
    causes += volume_causes
    for group in ("initContainers", "containers"):
        items = spec.get(group)
        for i, c in enumerate(items if isinstance(items, list) else []):
            if not isinstance(c, dict):
                continue
            cpath = f"{path}.{group}[{i}]"
            security = c.get("securityContext")
            privileged = isinstance(security, dict) and security.get("privileged") is True
            causes += volumes.mount_causes(f"{cpath}.volumeMounts", c.get("volumeMounts"), names, privileged)
            causes += volumes.env_causes(f"{cpath}.env", c.get("env"))
            causes += podnames.container_causes(cpath, c)
    causes += podnames.spec_name_causes(path, spec)
    causes += _topology_spread_causes(f"{path}.topologySpreadConstraints", spec.get("topologySpreadConstraints"))
    return causes


def _topology_spread_causes(path: str, constraints: Any) -> list[FieldCause]:
    """Upstream's validateTopologySpreadConstraints, message for message."""
    if not isinstance(constraints, list):
        return []
    causes: list[FieldCause] = []
    for i, c in enumerate(constraints):
        if not isinstance(c, dict):
            continue
        at = f"{path}[{i}]"
        skew = c.get("maxSkew")
        if isinstance(skew, int) and skew <= 0:
            causes.append(FieldCause(f"{at}.maxSkew", f"Invalid value: {skew}: must be greater than zero"))
        if not c.get("topologyKey"):
            causes.append(FieldCause(f"{at}.topologyKey", "Required value: can not be empty", "FieldValueRequired"))
        action = c.get("whenUnsatisfiable")
        if action not in ("DoNotSchedule", "ScheduleAnyway"):
            causes.append(FieldCause(f"{at}.whenUnsatisfiable", f'Unsupported value: "{action or ""}": supported '
                                     'values: "DoNotSchedule", "ScheduleAnyway"', "FieldValueNotSupported"))
        for other in constraints[i + 1:]:
            if isinstance(other, dict) and (other.get("topologyKey"), other.get("whenUnsatisfiable")) == (
                    c.get("topologyKey"), action):
                causes.append(FieldCause(f"{at}.{{topologyKey, whenUnsatisfiable}}",
                                         f'Duplicate value: "{{{c.get("topologyKey")}, {action}}}"',
                                         "FieldValueDuplicate"))
                break
        min_domains = c.get("minDomains")
        if min_domains is not None:
            if isinstance(min_domains, int) and min_domains <= 0:
                causes.append(FieldCause(f"{at}.minDomains", f"Invalid value: {min_domains}: must be greater than zero"))
            if action != "DoNotSchedule":
                causes.append(FieldCause(f"{at}.minDomains", f"Invalid value: {min_domains}: can only use minDomains "
                                         f"if whenUnsatisfiable=DoNotSchedule, not {action or ''}"))
        for policy in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
            value = c.get(policy)
            if value is not None and value not in ("Honor", "Ignore"):
                causes.append(FieldCause(f"{at}.{policy}", f'Unsupported value: "{value}": supported values: '
                                         '"Honor", "Ignore"', "FieldValueNotSupported"))
        selector = c.get("labelSelector")
        if not isinstance(selector, dict):
            selector = {}
        selector_keys = set(selector.get("matchLabels") or {}) | {
            e.get("key") for e in selector.get("matchExpressions") or [] if isinstance(e, dict)}
        for j, key in enumerate(c.get("matchLabelKeys") or []):
            causes += [FieldCause(f"{at}.matchLabelKeys[{j}]", cause.message)
                       for cause in objectmeta.label_causes("", {str(key): ""})]
            if key in selector_keys:
                causes.append(FieldCause(f"{at}.matchLabelKeys[{j}]",
                                         f'Invalid value: "{key}": exists in both matchLabelKeys and labelSelector'))
    return causes


def _validate_selector_template(spec: Obj, *, equality: bool = False) -> list[FieldCause]:
    from controlplane.api.selectors import selector_from_spec

    causes: list[FieldCause] = []
    selector = spec.get("selector")
    if not selector:
        return [FieldCause("spec.selector", "Required value", "FieldValueRequired")]
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if equality:
        causes = objectmeta.label_causes("spec.selector", selector)
    else:
        causes = objectmeta.label_selector_causes("spec.selector", selector)
    if causes:
        return causes
    try:
        matcher = selector_from_spec({"matchLabels": selector} if equality else selector)
    except Exception as exc:  # a bad operator
        return [FieldCause("spec.selector", f"Invalid value: {exc}")]
    if matcher.empty:
        causes.append(FieldCause("spec.selector", "Invalid value: empty selector is invalid for deployment"))
    elif not matcher.matches(labels):
        causes.append(FieldCause("spec.template.metadata.labels", f"Invalid value: {labels}: `selector` does "
                                 "not match template `labels`"))
    return causes


def _template_meta_causes(path: str, template: Any) -> list[FieldCause]:
    """The labels and annotations of a pod template (upstream's ValidatePodTemplateSpec)."""
    md = template.get("metadata") if isinstance(template, dict) else None
    if not isinstance(md, dict):
        return []
    return (objectmeta.label_causes(f"{path}.metadata.labels", md.get("labels")) +
            objectmeta.annotation_causes(f"{path}.metadata.annotations", md.get("annotations")))


def _validate_service(spec: Any) -> list[FieldCause]:
    if not isinstance(spec, dict):
        return [FieldCause("spec", "Required value", "FieldValueRequired")]
    causes: list[FieldCause] = objectmeta.label_causes("spec.selector", spec.get("selector"))
    svc_type = spec.get("type", "ClusterIP")
    if svc_type not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        causes.append(FieldCause("spec.type", f'Unsupported value: "{svc_type}": supported values: "ClusterIP", '
                                 '"ExternalName", "LoadBalancer", "NodePort"', "FieldValueNotSupported"))
    ports = spec.get("ports") or []
    if not ports and svc_type != "ExternalName" and spec.get("clusterIP") != "None":
        causes.append(FieldCause("spec.ports", "Required value", "FieldValueRequired"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        causes += _port_causes(f"spec.ports[{i}].port", port.get("port"))
        if len(ports) > 1 and not port.get("name"):
            causes.append(FieldCause(f"spec.ports[{i}].name", "Required value", "FieldValueRequired"))
        if port.get("name") in names:
            causes.append(FieldCause(f"spec.ports[{i}].name", f'Duplicate value: "{port.get("name")}"',
                                     "FieldValueDuplicate"))
        names.add(port.get("name"))
        if port.get("protocol", "TCP") not in ("TCP", "UDP", "SCTP"):
            causes.append(FieldCause(f"spec.ports[{i}].protocol", f'Unsupported value: "{port.get("protocol")}"',
                                     "FieldValueNotSupported"))
    external = spec.get("externalIPs")
    for i, ip in enumerate(external if isinstance(external, list) else []):
        at = f"spec.externalIPs[{i}]"
        found = v.is_valid_ip(str(ip)) or v.non_special_ip(str(ip))
        causes += [v.invalid(at, ip, msg) for msg in found]
    if spec.get("sessionAffinity", "None") not in ("None", "ClientIP"):
        causes.append(FieldCause("spec.sessionAffinity", f'Unsupported value: "{spec.get("sessionAffinity")}": '
                                 'supported values: "ClientIP", "None"', "FieldValueNotSupported"))
    return causes


def _immutable(path: str, new: Any, old: Any) -> list[FieldCause]:
    if new != old:
        return [FieldCause(path, "Invalid value: field is immutable")]
    return []


def validate(rt: ResourceType, obj: Obj, old: Obj | None = None) -> list[FieldCause]:
    """Every invalid field of `obj` (and immutable fields changed from `old` on update)."""
    kind = rt.kind
    causes = objectmeta.object_meta_causes(kind, obj)
    spec = obj.get("spec")
    old_spec = (old or {}).get("spec") or {}
    if kind == "Pod":
        causes += validate_pod_spec("spec", spec)
        if old is not None and isinstance(spec, dict):
            for field in ("containers", "initContainers", "volumes", "restartPolicy", "nodeName"):
                new_val, old_val = spec.get(field), old_spec.get(field)
                if field in ("containers", "initContainers") and isinstance(new_val, list) and \
                        isinstance(old_val, list) and len(new_val) == len(old_val):
                    # Only image may change on a running pod's containers.
                    new_val = [{k: v for k, v in c.items() if k != "image"} for c in new_val]
                    old_val = [{k: v for k, v in c.items() if k != "image"} for c in old_val]
                if field == "nodeName" and not old_val:
                    continue
                if new_val != old_val:
                    causes.append(FieldCause("spec", "Forbidden: pod updates may not change fields other than "
                                             "`spec.containers[*].image`, `spec.initContainers[*].image`, "
                                             "`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions "
                                             "to existing tolerations), `spec.terminationGracePeriodSeconds`",
                                             "FieldValueForbidden"))
                    break
    elif kind in ("Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"):
        if not isinstance(spec, dict):
            return [*causes, FieldCause("spec", "Required value", "FieldValueRequired")]
        causes += _validate_selector_template(spec)
        causes += _template_meta_causes("spec.template", spec.get("template"))
        causes += validate_pod_spec("spec.template.spec", (spec.get("template") or {}).get("spec"))
        if isinstance(spec.get("replicas"), int) and spec["replicas"] < 0:
            causes.append(FieldCause("spec.replicas", f"Invalid value: {spec['replicas']}: must be greater than "
                                     "or equal to 0"))
        if old is not None:
            causes += _immutable("spec.selector", spec.get("selector"), old_spec.get("selector"))
    elif kind == "ReplicationController" and isinstance(spec, dict):
        causes += _validate_selector_template(spec, equality=True)
        causes += _template_meta_causes("spec.template", spec.get("template"))
        causes += validate_pod_spec("spec.template.spec", (spec.get("template") or {}).get("spec"))
    elif kind == "Job":
        if not isinstance(spec, dict):
            return [*causes, FieldCause("spec", "Required value", "FieldValueRequired")]
        causes += objectmeta.label_selector_causes("spec.selector", spec.get("selector"))
        causes += _template_meta_causes("spec.template", spec.get("template"))
        causes += validate_pod_spec("spec.template.spec", (spec.get("template") or {}).get("spec"),
                                    job_template=True)
        if old is not None:
            causes += _immutable("spec.template", spec.get("template"), old_spec.get("template"))
    elif kind == "CronJob":
        if not isinstance(spec, dict) or not spec.get("schedule"):
            causes.append(FieldCause("spec.schedule", "Required value", "FieldValueRequired"))
        else:
            job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
            causes += _template_meta_causes("spec.jobTemplate.spec.template", job_spec.get("template"))
            causes += validate_pod_spec("spec.jobTemplate.spec.template.spec",
                                        (job_spec.get("template") or {}).get("spec"), job_template=True)
    elif kind == "Service":
        causes += _validate_service(spec)
        if old is not None and isinstance(spec, dict) and old_spec.get("clusterIP") and \
                spec.get("type") != "ExternalName":
            causes += _immutable("spec.clusterIPs[0]", spec.get("clusterIP"), old_spec.get("clusterIP"))
    elif kind in ("ConfigMap", "Secret"):
        if old is not None and old.get("immutable"):
            for field in ("data", "stringData", "binaryData"):
                if obj.get(field) != old.get(field):
                    causes.append(FieldCause(field, "Forbidden: field is immutable when `immutable` is set",
                                             "FieldValueForbidden"))
        causes += configdata.config_map_causes(obj) if kind == "ConfigMap" else configdata.secret_causes(obj)
    return causes


def unknown_fields(rt: ResourceType, obj: Obj) -> list[str]:
    """Paths of every field the kind's schema does not know, at any depth, in upstream's strict-decoding
    form (`spec.containers[0].imagee`), in document order."""
    return check(rt, obj).unknown


def type_errors(rt: ResourceType, obj: Obj) -> list[str]:
    """Values of the wrong JSON type at known paths, in the words of upstream's JSON decoder
    (`json: cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort
    of type int32`). Upstream answers 400 BadRequest with the first one."""
    return check(rt, obj).type_errors


def _undecodable(rt: ResourceType, detail: str) -> errors.StatusError:
    return errors.bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {detail}')


def reject_type_errors(rt: ResourceType, obj: Obj) -> None:
    """Raise upstream's 400 BadRequest for the first value of the wrong JSON type, if any:
    `Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal ...`."""
    found = type_errors(rt, obj)
    if found:
        raise _undecodable(rt, found[0])


def strict_decoding_error(rt: ResourceType, unknown: list[str]) -> errors.StatusError:
    """Upstream's 400 for `fieldValidation=Strict`: `Deployment in version "v1" cannot be handled as a
    Deployment: strict decoding error: unknown field "spec.replica", unknown field "..."`."""
    return _undecodable(rt, "strict decoding error: " + ", ".join(f'unknown field "{f}"' for f in unknown))
