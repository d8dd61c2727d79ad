"""Upstream's checks of the pod spec values a node writes down or schedules by, besides paths.

`hostname` and `subdomain` end up in the pod's /etc/hosts and hostname, the
node and service account names in lookups and token requests, the image in a
pull; a newline or a space in any of them would be written to a file or sent
on as it is. Resource quantities and probe timings must not be negative, and
the active deadline must fit upstream's range. Paths and messages follow
upstream's ValidatePodSpec, ValidateResourceRequirements and validateProbe.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from controlplane.api import validation as v
from controlplane.api.errors import FieldCause
from controlplane.api.quantity import parse_quantity

NEGATIVE_MSG = "must be greater than or equal to 0"
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_PROBE_COUNTS = ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold")


def spec_name_causes(path: str, spec: dict[str, Any]) -> list[FieldCause]:
    causes: list[FieldCause] = []
    for field, check in (("hostname", v.is_dns1123_label), ("subdomain", v.is_dns1123_label),
                         ("nodeName", v.is_dns1123_subdomain), ("serviceAccountName", v.is_dns1123_subdomain)):
        value = spec.get(field)
        if isinstance(value, str) and value:
            causes += [v.invalid(f"{path}.{field}", value, msg) for msg in check(value)]
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and not isinstance(deadline, bool) and not 1 <= deadline <= 2 ** 31 - 1:
        causes.append(v.invalid(f"{path}.activeDeadlineSeconds", deadline, v.inclusive_range_error(1, 2 ** 31 - 1)))
    return causes


def _quantity(value: Any) -> Decimal | None:
    try:
        return parse_quantity(value) if isinstance(value, (str, int, float)) else None
    except (ValueError, ArithmeticError):
        return None  # a malformed quantity is the decoder's to refuse


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def resource_causes(path: str, resources: Any) -> list[FieldCause]:
    if not isinstance(resources, dict):
        return []
    causes: list[FieldCause] = []
    limits: dict[str, Any] = resources["limits"] if isinstance(resources.get("limits"), dict) else {}
    requests: dict[str, Any] = resources["requests"] if isinstance(resources.get("requests"), dict) else {}
    for group, values in (("limits", limits), ("requests", requests)):
        for name, value in values.items():
            amount = _quantity(value)
            if amount is not None and amount < 0:
                causes.append(v.invalid(f"{path}.{group}[{name}]", _shown(value), NEGATIVE_MSG))
    for name, value in requests.items():
        amount, limit = _quantity(value), _quantity(limits.get(name))
        if amount is not None and limit is not None and amount > limit >= 0:
            causes.append(v.invalid(f"{path}.requests[{name}]", _shown(value),
                                    f"must be less than or equal to {name} limit of {_shown(limits[name])}"))
    return causes


def container_causes(path: str, container: dict[str, Any]) -> list[FieldCause]:
    causes: list[FieldCause] = []
    image = container.get("image")
    if isinstance(image, str) and image and image.strip() != image:
        causes.append(v.invalid(f"{path}.image", image, "must not have leading or trailing whitespace"))
    causes += resource_causes(f"{path}.resources", container.get("resources"))
    for probe_name in _PROBES:
        probe = container.get(probe_name)
        if not isinstance(probe, dict):
            continue
        for field in _PROBE_COUNTS:
            value = probe.get(field)
            if isinstance(value, int) and not isinstance(value, bool) and value < 0:
                causes.append(v.invalid(f"{path}.{probe_name}.{field}", value, NEGATIVE_MSG))
    return causes
