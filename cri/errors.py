"""CRI failures as exceptions that say which call failed and why.

gRPC reports a status code and a detail string; callers care about a few
cases (the object is gone, the runtime is down, the call took too long), so
those get their own classes and everything else stays a `CRIError`.
"""

from __future__ import annotations

import grpc


class CRIError(Exception):
    """A failed CRI call: its grpc.StatusCode `code`, the runtime's `details`, the RPC name `method`."""

    def __init__(self, code: grpc.StatusCode, details: str, method: str) -> None:
        super().__init__(f"{method}: {code.name}: {details}")
        self.code = code
        self.details = details
        self.method = method


class NotFoundError(CRIError):
    """The sandbox, container or image named in the request does not exist (any more)."""


class AlreadyExistsError(CRIError):
    """A sandbox or container with the same metadata (name, attempt) exists already."""


class InvalidArgumentError(CRIError):
    """The runtime rejected the request itself (a malformed config, an unknown handler)."""


class UnavailableError(CRIError):
    """The runtime does not answer (not started, restarting, socket gone)."""


class DeadlineExceededError(CRIError):
    """The call's deadline passed before the runtime answered."""


_BY_CODE: dict[grpc.StatusCode, type[CRIError]] = {
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
}


def from_rpc_error(error: grpc.aio.AioRpcError, method: str) -> CRIError:
    """The exception for a failed call of `method` (an RPC name such as "CreateContainer")."""
    code = error.code()
    return _BY_CODE.get(code, CRIError)(code, error.details() or "", method)
