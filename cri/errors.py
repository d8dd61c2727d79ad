"""CRI failures as exceptions that say which call failed and why.

gRPC reports a status code and a detail string; callers care about a few
cases (the object is gone, the runtime is down, the call took too long), so
those get their own classes and everything else stays a `CRIError`.
"""

from __future__ import annotations

import grpc


class CRIError(Exception):
    def __init__(self, code: grpc.StatusCode, details: str, method: str) -> None:
        super().__init__(f"{method}: {code.name}: {details}")
        self.code = code
        self.details = details
        self.method = method


class NotFoundError(CRIError):
    pass


class AlreadyExistsError(CRIError):
    pass


class InvalidArgumentError(CRIError):
    pass


class UnavailableError(CRIError):
    """The runtime does not answer (not started, restarting, socket gone)."""


class DeadlineExceededError(CRIError):
    pass


_BY_CODE: dict[grpc.StatusCode, type[CRIError]] = {
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
}


def from_rpc_error(error: grpc.aio.AioRpcError, method: str) -> CRIError:
    code = error.code()
    return _BY_CODE.get(code, CRIError)(code, error.details() or "", method)
