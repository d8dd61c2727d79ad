"""One schema per kind drives validation, defaulting, OpenAPI and `kubectl explain`.

The API server calls only the functions of this module; the kind schemas
behind them live in the sibling modules.
"""

from __future__ import annotations

from typing import Any

from controlplane.api.errors import FieldCause
from controlplane.api.resources import ResourceType


def apply_defaults(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Fill upstream defaults into `obj` in place (e.g. pod restartPolicy Always)."""


def validate(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldCause]:
    """Every invalid field of `obj` (and immutable fields changed from `old` on update)."""
    return []


def unknown_fields(rt: ResourceType, obj: dict[str, Any]) -> list[str]:
    """Paths (`spec.containers[0].imagee`) of fields the schema does not know."""
    return []
