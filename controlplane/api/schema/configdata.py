"""Upstream's ValidateConfigMap and ValidateSecret: keys that are safe file names, 1 MiB in all.

The keys of ConfigMap and Secret data become file names when the object is
mounted as a volume, so a key such as `../../etc/x` or `/etc/y` must never be
stored: upstream refuses it with IsConfigMapKey's messages, as here. The total
size is bounded by upstream's MaxSecretSize (1 MiB): Secret data counts its
decoded bytes, ConfigMap counts `data` and `binaryData` (decoded) together.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from controlplane.api import validation as v
from controlplane.api.errors import FieldCause

MAX_SECRET_SIZE = 1024 * 1024


def _decoded_len(value: Any) -> int:
    """Bytes of a base64 `[]byte` value; a value that does not decode counts as its text (the decoder that
    reads it refuses it elsewhere)."""
    if not isinstance(value, str):
        return 0
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return v.byte_len(value)


def _text_len(value: Any) -> int:
    return v.byte_len(value) if isinstance(value, str) else 0


def _map(obj: dict[str, Any], field: str) -> dict[str, Any]:
    value = obj.get(field)
    return value if isinstance(value, dict) else {}


def _key_causes(path: str, key: Any) -> list[FieldCause]:
    return [v.invalid(v.key_path(path, str(key)), key, msg) for msg in v.is_config_map_key(str(key))]


def config_map_causes(obj: dict[str, Any]) -> list[FieldCause]:
    causes: list[FieldCause] = []
    for field in ("data", "binaryData"):
        if obj.get(field) is not None and not isinstance(obj.get(field), dict):
            causes.append(FieldCause(field, "Invalid value: must be a map"))
    data, binary = _map(obj, "data"), _map(obj, "binaryData")
    total = 0
    for key, value in data.items():
        causes += _key_causes("data", key)
        if key in binary:
            causes.append(v.invalid(v.key_path("data", str(key)), key, "duplicate of key present in binaryData"))
        total += _text_len(value)
    for key, value in binary.items():
        causes += _key_causes("binaryData", key)
        total += _decoded_len(value)
    if total > MAX_SECRET_SIZE:
        # Upstream names the whole object: field.NewPath("") prints as "[]".
        causes.append(v.too_long("[]", MAX_SECRET_SIZE))
    return causes


def secret_causes(obj: dict[str, Any]) -> list[FieldCause]:
    """`stringData` is merged into `data` before upstream validates, so its keys are reported as `data[key]`."""
    causes: list[FieldCause] = []
    for field in ("data", "stringData"):
        if obj.get(field) is not None and not isinstance(obj.get(field), dict):
            causes.append(FieldCause(field, "Invalid value: must be a map"))
    data, strings = _map(obj, "data"), _map(obj, "stringData")
    sizes = {key: _decoded_len(value) for key, value in data.items()}
    sizes.update({key: _text_len(value) for key, value in strings.items()})
    for key in sizes:
        causes += _key_causes("data", key)
    if sum(sizes.values()) > MAX_SECRET_SIZE:
        causes.append(v.too_long("data", MAX_SECRET_SIZE))
    return causes
