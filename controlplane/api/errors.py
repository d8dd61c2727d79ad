"""Kubernetes-style API errors.

Every failure that crosses the API boundary is a `StatusError`; the API server
turns it into a `kind: Status` body with the upstream `reason` and HTTP `code`,
and the client turns such a body back into the same exception, so that callers
on both sides test `err.reason == "Conflict"` rather than parse messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldCause:
    """One invalid field, as in `details.causes[]` of an Invalid Status."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"  # FieldValueRequired, FieldValueNotSupported, FieldValueDuplicate, ...

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


@dataclass
class StatusError(Exception):
    """An error with an upstream reason and HTTP code (metav1.Status)."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.reason} ({self.code}): {self.message}"

    def to_status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body

    @classmethod
    def from_status(cls, body: dict[str, Any], http_code: int = 500) -> StatusError:
        return cls(
            code=int(body.get("code") or http_code),
            reason=str(body.get("reason") or ""),
            message=str(body.get("message") or ""),
            details=dict(body.get("details") or {}),
        )


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(name: str, resource: str, group: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return details


def not_found(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found',
                       _details(name, resource, group))


def already_exists(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(409, "AlreadyExists", f'{_qualified(resource, group)} "{name}" already exists',
                       _details(name, resource, group))


def conflict(resource: str, name: str, cause: str, group: str = "") -> StatusError:
    return StatusError(409, "Conflict",
                       f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {cause}',
                       _details(name, resource, group))


def stale_update(resource: str, name: str, group: str = "") -> StatusError:
    return conflict(resource, name, "the object has been modified; please apply your changes "
                    "to the latest version and try again", group)


def invalid(kind: str, name: str, causes: list[FieldCause], group: str = "") -> StatusError:
    parts = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details: dict[str, Any] = {"name": name, "kind": kind, "causes": [c.to_dict() for c in causes]}
    if group:
        details["group"] = group
    qualified = f"{kind}.{group}" if group else kind
    return StatusError(422, "Invalid", f'{qualified} "{name}" is invalid: {summary}', details)


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def unauthorized(message: str = "Unauthorized") -> StatusError:
    return StatusError(401, "Unauthorized", message)


def forbidden(message: str) -> StatusError:
    return StatusError(403, "Forbidden", message)


def method_not_supported(resource: str, verb: str) -> StatusError:
    return StatusError(405, "MethodNotAllowed", f"{verb} is not supported on resources of kind {resource!r}")


def not_acceptable(message: str) -> StatusError:
    return StatusError(406, "NotAcceptable", message)


def gone(message: str) -> StatusError:
    """A watch or list from a compacted resourceVersion (410, reason Expired)."""
    return StatusError(410, "Expired", message)


def request_entity_too_large(message: str) -> StatusError:
    return StatusError(413, "RequestEntityTooLarge", message)


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                       f"accepted media types include: application/json, application/yaml, "
                       f"application/vnd.kubernetes.protobuf, application/apply-patch+yaml, application/json-patch+json, "
                       f"application/merge-patch+json, application/strategic-merge-patch+json "
                       f"(got {content_type!r})")


def too_many_requests(message: str, retry_after: int = 1) -> StatusError:
    return StatusError(429, "TooManyRequests", message, {"retryAfterSeconds": retry_after})


def internal_error(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}")


def service_unavailable(message: str) -> StatusError:
    return StatusError(503, "ServiceUnavailable", message)


def timeout(message: str) -> StatusError:
    return StatusError(504, "Timeout", message)
