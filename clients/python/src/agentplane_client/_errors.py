"""The one exception every failed call raises, built from the gRPC status.

The server puts google.rpc details in the `grpc-status-details-bin` trailer:
an ErrorInfo (a stable `reason` such as "SESSION_NOT_FOUND") and a BadRequest
(the offending fields). Both the sync and the async client turn an RpcError
into an `AgentplaneError` (or the subclass for its code) with `error_from_rpc`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import cast

import grpc
from google.rpc import error_details_pb2, status_pb2

_DETAILS_KEY = "grpc-status-details-bin"


class AgentplaneError(Exception):
    """A call to agentplane failed.

    Attributes:
        code: The gRPC status code, e.g. `grpc.StatusCode.NOT_FOUND`.
        message: The server's message, e.g. "Session not found".
        reason: The machine-readable reason from google.rpc.ErrorInfo, e.g.
            "SESSION_NOT_FOUND", "SESSION_EXISTS", "MISSING_FIELD"; "" if none.
        field_violations: (field, description) pairs from google.rpc.BadRequest,
            e.g. `[("session_name", "is required")]`.
        metadata: The ErrorInfo metadata (for example `session_id`).
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        field_violations: Sequence[tuple[str, str]] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.field_violations = list(field_violations)
        self.metadata = dict(metadata or {})

    def __str__(self) -> str:
        suffix = f" ({self.reason})" if self.reason else ""
        return f"{self.code.name}: {self.message}{suffix}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}, {self.message!r}, reason={self.reason!r})"


class InvalidArgumentError(AgentplaneError):
    """INVALID_ARGUMENT: the request is malformed; see `field_violations`."""


class NotFoundError(AgentplaneError):
    """NOT_FOUND: the session (or other resource) does not exist."""


class AlreadyExistsError(AgentplaneError):
    """ALREADY_EXISTS: the id is taken (reason "SESSION_EXISTS" for sessions)."""


class FailedPreconditionError(AgentplaneError):
    """FAILED_PRECONDITION: the resource is not in a state that allows the call."""


class UnauthenticatedError(AgentplaneError):
    """UNAUTHENTICATED: no API key, or one the server does not accept."""


class PermissionDeniedError(AgentplaneError):
    """PERMISSION_DENIED: the API key may not do this."""


class UnavailableError(AgentplaneError):
    """UNAVAILABLE: the server cannot be reached (or is shutting down)."""


_BY_CODE: dict[grpc.StatusCode, type[AgentplaneError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
}


def _status_details(err: grpc.RpcError) -> bytes | None:
    # Sync errors give (key, value) namedtuples, aio errors a grpc.aio.Metadata;
    # both iterate as pairs.
    pairs = cast(Iterable[tuple[str, str | bytes]], err.trailing_metadata() or ())
    for key, value in pairs:
        if key == _DETAILS_KEY and isinstance(value, bytes):
            return value
    return None


def error_from_rpc(err: grpc.RpcError) -> AgentplaneError:
    """The AgentplaneError (subclass) for a failed sync or aio call."""
    raw = _status_details(err)
    return _error(err.code(), err.details() or "", None if raw is None else status_pb2.Status.FromString(raw))


def error_from_status(status: status_pb2.Status) -> AgentplaneError:
    """The AgentplaneError (subclass) for a google.rpc.Status a response carries
    (a stream's answer to one of its messages)."""
    code = next((c for c in grpc.StatusCode if c.value[0] == status.code), grpc.StatusCode.UNKNOWN)
    return _error(code, status.message, status)


def _error(code: grpc.StatusCode, message: str, status: status_pb2.Status | None) -> AgentplaneError:
    reason = ""
    violations: list[tuple[str, str]] = []
    metadata: dict[str, str] = {}
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = str(info.reason)
                metadata.update({str(k): str(v) for k, v in info.metadata.items()})
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations += [(str(v.field), str(v.description)) for v in bad.field_violations]
    cls = _BY_CODE.get(code, AgentplaneError)
    return cls(code, message, reason=reason, field_violations=violations, metadata=metadata)
