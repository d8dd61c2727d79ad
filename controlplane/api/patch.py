"""PATCH bodies applied to stored objects: JSON patch, merge patch, strategic merge, apply.

Strategic merge patch merges lists of the core types by their upstream patch
merge keys (containers by name, ports by containerPort, ...), honours
`$patch: delete|replace` and `$deleteFromPrimitiveList/`, and deletes fields
set to null, as kubectl's client-side `apply` expects. Server-side apply
merges the applied configuration the same way and records the manager in
`metadata.managedFields`.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import orjson
import yaml

from controlplane.api import errors

Obj = dict[str, Any]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)

# Upstream patchMergeKey facts for the lists of the served kinds (by field name).
MERGE_KEYS: dict[str, str] = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
    "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath", "imagePullSecrets": "name",
    "conditions": "type", "hostAliases": "ip", "ownerReferences": "uid", "topologySpreadConstraints":
    "topologyKey", "taints": "key", "addresses": "type", "secrets": "name",
    "containerStatuses": "name", "initContainerStatuses": "name",
}
# Port lists merge by containerPort in containers and by port in services.
PORT_KEYS = {"containers": "containerPort", "initContainers": "containerPort", "spec": "port"}


def _merge_key(field: str, parent: str) -> str | None:
    if field == "ports":
        return PORT_KEYS.get(parent)
    return MERGE_KEYS.get(field)


def parse_body(body: bytes, patch_type: str) -> Any:
    try:
        if patch_type == APPLY_PATCH:
            return yaml.safe_load(body)
        return orjson.loads(body)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise errors.bad_request(f"error decoding patch: {exc}") from None


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge(target: Any, patch: Any, parent: str = "") -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list) and _merge_key(key, parent):
            result[key] = _merge_list(result[key], value, _merge_key(key, parent) or "", key)
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key), value, key)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    if "$retainKeys" in patch:
        keep = set(patch["$retainKeys"])
        result = {k: v for k, v in result.items() if k in keep}
    return result


def _merge_list(current: list[Any], patch: list[Any], key: str, field: str) -> list[Any]:
    result = [copy.deepcopy(item) for item in current]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            if isinstance(item, dict) and item.get("$patch") == "replace":
                return [i for i in patch if not (isinstance(i, dict) and i.get("$patch"))]
            result.append(copy.deepcopy(item))
            continue
        index = next((i for i, cur in enumerate(result) if isinstance(cur, dict) and cur.get(key) == item[key]),
                     None)
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            result.append(strategic_merge({}, item, field))
        else:
            result[index] = strategic_merge(result[index], item, field)
    return result


def apply_patch(current: Obj, body: bytes, patch_type: str) -> Obj:
    """The object after applying a PATCH body of the given content type."""
    patch = parse_body(body, patch_type)
    if patch_type == JSON_PATCH:
        if not isinstance(patch, list):
            raise errors.bad_request("json patch must be a list of operations")
        try:
            result = jsonpatch.apply_patch(current, patch)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise errors.StatusError(422, "Invalid", f"the server rejected our request due to an error in our "
                                     f"request: {exc}") from None
    elif patch_type == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise errors.bad_request("merge patch must be a JSON object")
        result = merge_patch(current, patch)
    elif patch_type == STRATEGIC_MERGE_PATCH:
        if not isinstance(patch, dict):
            raise errors.bad_request("strategic merge patch must be a JSON object")
        result = strategic_merge(current, patch)
    else:
        raise errors.unsupported_media_type(patch_type)
    if not isinstance(result, dict):
        raise errors.bad_request("the patch did not produce an object")
    return result


def _fields_v1(obj: Any) -> Any:
    """The FieldsV1 set of leaf paths in `obj` (upstream encoding: f:<name>, k:{key}, `.`)."""
    if isinstance(obj, dict):
        return {f"f:{k}": _fields_v1(v) for k, v in obj.items()}
    return {}


def server_side_apply(current: Obj | None, applied: Obj, manager: str, force: bool, now: str) -> Obj:
    """Merge an applied configuration into `current` and record `manager` as its Apply owner.

    Field ownership conflicts are detected at the level of the fields the other
    Apply managers recorded; `force` takes them over.
    """
    if not isinstance(applied, dict):
        raise errors.bad_request("apply patch must be a YAML or JSON object")
    base = copy.deepcopy(current) if current else {}
    managed = list((base.get("metadata") or {}).get("managedFields") or [])
    applied_body = {k: v for k, v in applied.items() if k != "status"}
    applied_fields = _fields_v1({k: v for k, v in applied_body.items() if k not in ("apiVersion", "kind")})
    if current and not force:
        conflicts = []
        for entry in managed:
            if entry.get("manager") == manager or entry.get("operation") != "Apply":
                continue
            for path in _overlap(applied_fields, entry.get("fieldsV1") or {}):
                if _value_at(base, path) != _value_at(applied_body, path):
                    conflicts.append((entry.get("manager"), entry.get("apiVersion"), path))
        if conflicts:
            lines = "\n".join(f'- conflict with "{m}" using {v}: .{".".join(p)}' for m, v, p in conflicts)
            raise errors.StatusError(409, "Conflict", f"Apply failed with {len(conflicts)} conflict"
                                     f"{'s' if len(conflicts) != 1 else ''}: {lines}")
    result = strategic_merge(base, applied_body)
    managed = [e for e in managed if not (e.get("manager") == manager and e.get("operation") == "Apply")]
    managed.append({"manager": manager, "operation": "Apply", "apiVersion": applied.get("apiVersion", ""),
                    "time": now, "fieldsType": "FieldsV1", "fieldsV1": applied_fields})
    result.setdefault("metadata", {})["managedFields"] = managed
    return result


def _overlap(a: Any, b: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for key, sub in a.items():
        if key in b:
            name = key[2:] if key.startswith("f:") else key
            if not sub or not b[key]:
                paths.append((*prefix, name))
            else:
                paths += _overlap(sub, b[key], (*prefix, name))
    return paths


def _value_at(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def record_update_manager(obj: Obj, manager: str, operation: str, api_version: str, now: str) -> None:
    """Note an Update/Create manager in managedFields (so later applies see who owns what)."""
    md = obj.setdefault("metadata", {})
    managed = [e for e in md.get("managedFields") or []
               if not (e.get("manager") == manager and e.get("operation") == operation)]
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status", "metadata")}
    managed.append({"manager": manager, "operation": operation, "apiVersion": api_version, "time": now,
                    "fieldsType": "FieldsV1", "fieldsV1": _fields_v1(body)})
    md["managedFields"] = managed
