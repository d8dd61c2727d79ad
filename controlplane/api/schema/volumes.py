"""Upstream's pod volume, volume mount and environment checks: the fields that become paths on a node.

The kubelet turns `items[].path` of configMap, secret, downwardAPI and
projected volumes into files under the pod's volume directory, `subPath` and
`subPathExpr` into directories under a volume, and hostPath `type` into a check
on the node; an absolute path or a `..` in any of them would reach outside.
Upstream refuses them at the API (validateLocalDescendingPath,
ValidateLocalNonReservedPath, validateKeyToPath, the hostPath type enum), and so
does this module, with upstream's field paths, including its quirks: a subPath
error is reported on `volumeMounts.subPath` without the index, a downwardAPI
file's on `downwardAPI.path`.
"""

from __future__ import annotations

from typing import Any

from controlplane.api import validation as v
from controlplane.api.errors import FieldCause

FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"
HOST_PATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate",
                   "Socket")
MOUNT_PROPAGATIONS = ("Bidirectional", "HostToContainer", "None")


def _dicts(value: Any) -> list[tuple[int, dict[str, Any]]]:
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)] if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def no_backsteps(path: str, target: str) -> list[FieldCause]:
    """validatePathNoBacksteps: one error however many `..` elements there are."""
    if ".." in target.replace("\\", "/").split("/"):
        return [v.invalid(path, target, "must not contain '..'")]
    return []


def local_descending_path(path: str, target: str) -> list[FieldCause]:
    causes = []
    if target.startswith("/"):
        causes.append(v.invalid(path, target, "must be a relative path"))
    return causes + no_backsteps(path, target)


def local_non_reserved_path(path: str, target: str) -> list[FieldCause]:
    causes = local_descending_path(path, target)
    if target.startswith("..") and not target.startswith("../"):
        causes.append(v.invalid(path, target, "must not start with '..'"))
    return causes


def _mode_causes(path: str, mode: Any) -> list[FieldCause]:
    if isinstance(mode, int) and not isinstance(mode, bool) and not 0 <= mode <= 0o777:
        return [v.invalid(path, mode, FILE_MODE_MSG)]
    return []


def key_to_path_causes(path: str, item: dict[str, Any]) -> list[FieldCause]:
    causes = []
    if not item.get("key"):
        causes.append(v.required(f"{path}.key"))
    target = _str(item.get("path"))
    if not target:
        causes.append(v.required(f"{path}.path"))
    causes += local_non_reserved_path(f"{path}.path", target)
    return causes + _mode_causes(f"{path}.mode", item.get("mode"))


def _downward_file_causes(path: str, item: dict[str, Any]) -> list[FieldCause]:
    """validateDownwardAPIVolumeFile; `path` is the downwardAPI source itself, as upstream reports it."""
    causes = []
    target = _str(item.get("path"))
    if not target:
        causes.append(v.required(f"{path}.path"))
    causes += local_non_reserved_path(f"{path}.path", target)
    field_ref, resource_ref = item.get("fieldRef"), item.get("resourceFieldRef")
    if field_ref is not None and resource_ref is not None:
        causes.append(v.invalid(path, "resource", "fieldRef and resourceFieldRef can not be specified "
                                "simultaneously"))
    elif field_ref is None and resource_ref is None:
        causes.append(v.required(path, "one of fieldRef and resourceFieldRef is required"))
    return causes + _mode_causes(f"{path}.mode", item.get("mode"))


def _projected_causes(path: str, source: dict[str, Any]) -> list[FieldCause]:
    causes = _mode_causes(f"{path}.defaultMode", source.get("defaultMode"))
    seen: set[str] = set()

    def claim(target: str, name: Any) -> None:
        if target in seen:
            causes.append(v.invalid(path, _str(name), "conflicting duplicate paths"))
        seen.add(target)

    for i, src in _dicts(source.get("sources")):
        at = f"{path}.sources[{i}]"
        for kind in ("secret", "configMap"):
            projection = src.get(kind)
            if not isinstance(projection, dict):
                continue
            if not projection.get("name"):
                causes.append(v.required(f"{at}.{kind}.name"))
            for j, item in _dicts(projection.get("items")):
                causes += key_to_path_causes(f"{at}.{kind}.items[{j}]", item)
                if _str(item.get("path")):
                    claim(_str(item.get("path")), projection.get("name"))
        downward = src.get("downwardAPI")
        if isinstance(downward, dict):
            for _, item in _dicts(downward.get("items")):
                causes += _downward_file_causes(f"{at}.downwardAPI", item)
                if _str(item.get("path")):
                    claim(_str(item.get("path")), "")
        token = src.get("serviceAccountToken")
        if isinstance(token, dict):
            seconds = token.get("expirationSeconds")
            if isinstance(seconds, int) and seconds < 600:
                causes.append(v.invalid(f"{at}.serviceAccountToken.expirationSeconds", seconds,
                                        "may not specify a duration less than 10 minutes"))
            if isinstance(seconds, int) and seconds > 1 << 32:
                causes.append(v.invalid(f"{at}.serviceAccountToken.expirationSeconds", seconds,
                                        "may not specify a duration larger than 2^32 seconds"))
            if not token.get("path"):
                causes.append(v.required(f"{path}.path"))
    return causes


def _source_causes(path: str, vol: dict[str, Any]) -> list[FieldCause]:
    causes: list[FieldCause] = []
    host = vol.get("hostPath")
    if isinstance(host, dict):
        target = _str(host.get("path"))
        if not target:
            causes.append(v.required(f"{path}.hostPath.path"))
        else:
            causes += no_backsteps(f"{path}.hostPath.path", target)
            kind = host.get("type")
            if kind is not None and kind not in HOST_PATH_TYPES:
                causes.append(v.not_supported(f"{path}.hostPath.type", kind, HOST_PATH_TYPES))
    for kind, name_field in (("configMap", "name"), ("secret", "secretName")):
        source = vol.get(kind)
        if not isinstance(source, dict):
            continue
        at = f"{path}.{kind}"
        if kind == "secret" and not source.get(name_field):
            causes.append(v.required(f"{at}.{name_field}"))
        elif kind == "configMap" and not source.get(name_field):
            causes.append(v.required(f"{at}.{name_field}"))
        causes += _mode_causes(f"{at}.defaultMode", source.get("defaultMode"))
        for j, item in _dicts(source.get("items")):
            causes += key_to_path_causes(f"{at}.items[{j}]", item)
    downward = vol.get("downwardAPI")
    if isinstance(downward, dict):
        causes += _mode_causes(f"{path}.downwardAPI.defaultMode", downward.get("defaultMode"))
        for _, item in _dicts(downward.get("items")):
            causes += _downward_file_causes(f"{path}.downwardAPI", item)
    projected = vol.get("projected")
    if isinstance(projected, dict):
        causes += _projected_causes(f"{path}.projected", projected)
    return causes


def volume_causes(path: str, volumes: Any) -> tuple[list[FieldCause], set[str]]:
    """validateVolumes: the causes and the names of the volumes (for the mounts)."""
    causes: list[FieldCause] = []
    names: set[str] = set()
    if volumes is not None and not isinstance(volumes, list):
        return [FieldCause(path, "Invalid value: must be a list")], names
    for i, vol in enumerate(volumes or []):
        at = f"{path}[{i}]"
        if not isinstance(vol, dict):
            causes.append(FieldCause(at, "Invalid value: must be an object"))
            continue
        causes += _source_causes(at, vol)
        name = vol.get("name")
        if not name:
            causes.append(v.required(f"{at}.name"))
        else:
            causes += [v.invalid(f"{at}.name", name, msg) for msg in v.is_dns1123_label(str(name))]
        if name in names:
            causes.append(v.duplicate(f"{at}.name", name))
        names.add(str(name))
    return causes, names


def mount_causes(path: str, mounts: Any, volumes: set[str], privileged: bool = False) -> list[FieldCause]:
    """ValidateVolumeMounts, with upstream's paths (`subPath`/`subPathExpr` on the list, not the item)."""
    causes: list[FieldCause] = []
    seen: set[str] = set()
    for i, mount in _dicts(mounts):
        at = f"{path}[{i}]"
        name = _str(mount.get("name"))
        if not name:
            causes.append(v.required(f"{at}.name"))
        if name not in volumes:
            causes.append(v.not_found(f"{at}.name", name))
        mount_path = _str(mount.get("mountPath"))
        if not mount_path:
            causes.append(v.required(f"{at}.mountPath"))
        if mount_path in seen:
            causes.append(v.invalid(f"{at}.mountPath", mount_path, "must be unique"))
        seen.add(mount_path)
        sub_path, sub_expr = _str(mount.get("subPath")), _str(mount.get("subPathExpr"))
        if sub_path:
            causes += local_descending_path(f"{path}.subPath", sub_path)
        if sub_expr:
            if sub_path:
                causes.append(v.invalid(f"{at}.subPathExpr", sub_expr, "subPathExpr and subPath are mutually "
                                        "exclusive"))
            causes += local_descending_path(f"{path}.subPathExpr", sub_expr)
        propagation = mount.get("mountPropagation")
        if propagation is not None and propagation not in MOUNT_PROPAGATIONS:
            causes.append(v.not_supported(f"{path}.mountPropagation", propagation, MOUNT_PROPAGATIONS))
        elif propagation == "Bidirectional" and not privileged:
            causes.append(v.forbidden(f"{path}.mountPropagation", "Bidirectional mount propagation is available "
                                      "only to privileged containers"))
    return causes


def env_causes(path: str, env: Any) -> list[FieldCause]:
    """validateEnv: names as IsEnvVarName (the relaxed form is not on by default in 1.31)."""
    causes: list[FieldCause] = []
    for i, var in _dicts(env):
        name = _str(var.get("name"))
        if not name:
            causes.append(v.required(f"{path}[{i}].name"))
            continue
        causes += [v.invalid(f"{path}[{i}].name", name, msg) for msg in v.is_env_var_name(name)]
    return causes
