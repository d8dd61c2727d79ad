"""Request bodies in Kubernetes protobuf, turned into the JSON objects the API server handles.

kubectl 1.32 and later send what their typed clients create (`kubectl create
deployment|namespace|secret|job|token ...`, `kubectl auth can-i`, evictions from
`kubectl drain`) as `application/vnd.kubernetes.protobuf`: the magic `k8s\\x00`,
then a `runtime.Unknown` envelope naming apiVersion and kind around the object's
own message. The messages are described by the project's `.proto` files
(`controlplane/api/proto`, upstream's names and field numbers).

Go writes every non-pointer field, set or not, so an unset string arrives as ""
and an unset number as 0; JSON would have left them out (`omitempty`), and the
server's defaulting relies on that. This decoder therefore leaves out empty
strings, lists, maps and objects, and zeros — except in the fields upstream
declares as pointers because zero means something there (`replicas: 0`,
`runAsUser: 0`, `tolerationSeconds: 0`; `proto/pointers.py`), and in an empty
`emptyDir` or label selector. Go structs
embedded inline (a volume's source, a probe's handler, a local object reference)
are their own field in protobuf and are flattened back, as JSON has them. A field
the project's `.proto` files do not know is refused, never dropped.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import importlib
from typing import Any

import orjson
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.descriptor_pool import Default as default_pool
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from controlplane.api import errors
from controlplane.api.proto.pointers import POINTER_FIELDS

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_MODULES = ("runtime", "resource", "intstr", "meta_v1", "core_v1", "apps_v1", "batch_v1", "discovery_v1",
            "coordination_v1", "authentication_v1", "authorization_v1", "policy_v1", "autoscaling_v1")
# Go structs embedded with `json:",inline"`: a field of their own in protobuf, flattened into the parent in JSON.
INLINE_FIELDS = frozenset({"volumeSource", "handler", "localObjectReference", "ephemeralContainerCommon",
                           "persistentVolumeSource"})
# Pointer-to-struct fields whose empty value means something: `emptyDir: {}`, a selector matching all.
KEEP_EMPTY_TYPES = frozenset({"k8s.io.api.core.v1.EmptyDirVolumeSource", _META + "LabelSelector"})


@functools.cache
def _load_modules() -> None:
    for name in _MODULES:
        importlib.import_module(f"controlplane.api.proto.gen.{name}_pb2")


def message_name(api_version: str, kind: str) -> str:
    """`apps/v1`, `Deployment` -> `k8s.io.api.apps.v1.Deployment` (the core group is `core`)."""
    group, _, version = api_version.rpartition("/")
    return f"k8s.io.api.{group.split('.')[0] if group else 'core'}.{version}.{kind}"


def _message_class(api_version: str, kind: str) -> type[Message]:
    _load_modules()
    pool = default_pool()
    for name in (message_name(api_version, kind), _META + kind):
        try:
            return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
        except KeyError:
            continue
    raise errors.unsupported_media_type(f"{MEDIA_TYPE} for {api_version} {kind}")


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf request body -> the object as JSON would carry it. Raises StatusError (400/415)."""
    if not body.startswith(MAGIC):
        raise errors.bad_request("the body of the request could not be decoded: protobuf message does not start "
                                 "with the Kubernetes magic prefix")
    _load_modules()
    envelope_class = message_factory.GetMessageClass(
        default_pool().FindMessageTypeByName("k8s.io.apimachinery.pkg.runtime.Unknown"))
    try:
        envelope = envelope_class.FromString(body[len(MAGIC):])
    except DecodeError as exc:
        raise errors.bad_request(f"the body of the request could not be decoded: {exc}") from None
    api_version = envelope.typeMeta.apiVersion
    kind = envelope.typeMeta.kind
    if envelope.contentEncoding:
        raise errors.bad_request(f"the body of the request could not be decoded: content encoding "
                                 f"{envelope.contentEncoding!r} is not supported")
    cls = _message_class(api_version, kind)
    try:
        message = cls.FromString(envelope.raw)
    except DecodeError as exc:
        raise errors.bad_request(f"the body of the request could not be decoded: {exc}") from None
    obj = _to_json(message)
    return {"apiVersion": api_version, "kind": kind, **obj}


def _to_json(message: Message, path: str = "") -> dict[str, Any]:
    unknown = UnknownFieldSet(message)
    if len(unknown):
        numbers = sorted({field.field_number for field in unknown})
        raise errors.bad_request(f"the body of the request could not be decoded: {message.DESCRIPTOR.full_name}"
                                 f"{' at ' + path if path else ''} has field numbers {numbers} that this server "
                                 "does not know")
    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        where = f"{path}.{field.name}" if path else field.name
        converted = _field_value(field, value, where, f"{message.DESCRIPTOR.full_name}.{field.name}" in POINTER_FIELDS)
        if converted is _OMIT:
            continue
        if field.name in INLINE_FIELDS and field.message_type is not None and isinstance(converted, dict):
            out.update(converted)
        else:
            out[field.name] = converted
    return out


_OMIT: Any = object()


def _field_value(field: FieldDescriptor, value: Any, path: str, pointer: bool) -> Any:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        value_field = field.message_type.fields_by_name["value"]
        mapped = {key: _single(value_field, item, f"{path}[{key}]", in_list=True) for key, item in value.items()}
        return mapped or _OMIT
    if field.is_repeated:
        items = [_single(field, item, f"{path}[{i}]", in_list=True) for i, item in enumerate(value)]
        return [item for item in items if item is not _OMIT] or _OMIT
    return _single(field, value, path, keep_zero=pointer)


def _single(field: FieldDescriptor, value: Any, path: str, in_list: bool = False, keep_zero: bool = False) -> Any:
    if field.message_type is not None:
        return _message_value(field.message_type, value, path, field.name, in_list)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode() if value or in_list else _OMIT
    if in_list or keep_zero:
        return value
    return _OMIT if value in ("", 0, False) else value


def _message_value(descriptor: Descriptor, value: Any, path: str, name: str, in_list: bool) -> Any:
    full = descriptor.full_name
    if full in (_META + "Time", _META + "MicroTime"):
        if not value.seconds and not value.nanos:  # Go's zero time
            return None if name == "creationTimestamp" else _OMIT  # as Go's JSON writes ObjectMeta's
        when = dt.datetime.fromtimestamp(value.seconds, dt.UTC).replace(microsecond=value.nanos // 1000)
        if full.endswith("MicroTime"):
            return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    if full == _META + "Duration":
        return _go_duration(value.duration)
    if full == "k8s.io.apimachinery.pkg.api.resource.Quantity":
        return value.string if value.string or in_list else _OMIT
    if full == "k8s.io.apimachinery.pkg.util.intstr.IntOrString":
        if value.type == 1:
            return value.strVal
        return _OMIT if value.intVal == 0 and name == "targetPort" else value.intVal
    if full in ("k8s.io.apimachinery.pkg.runtime.RawExtension", _META + "FieldsV1"):
        raw = value.raw if full.endswith("RawExtension") else value.Raw
        if not raw:
            return _OMIT
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise errors.bad_request(f"the body of the request could not be decoded: {path} is not JSON") from None
    if full.endswith(".ExtraValue"):  # authentication/authorization: a bare list of strings in JSON
        return list(value.items)
    converted = _to_json(value, path)
    if converted or in_list or full in KEEP_EMPTY_TYPES:
        return converted
    return _OMIT


def _go_duration(nanoseconds: int) -> str:
    """time.Duration.String(): 1h2m3.5s, 150ms, 0s."""
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    n = abs(nanoseconds)
    if n < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if n >= size:
                return f"{sign}{n / size:g}{unit}"
    hours, rest = divmod(n, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = f"{rest / 1e9:.9f}".rstrip("0").rstrip(".")
    text = f"{hours}h{minutes}m{seconds}s" if hours else f"{minutes}m{seconds}s" if minutes else f"{seconds}s"
    return sign + text
