"""Typed domain errors: the one vocabulary every layer maps from.

The domain raises these; `service.app.status` turns them into a gRPC status
with google.rpc details, and each gateway family renders that status in its
own error body. `reason` is a stable machine-readable code (it becomes the
google.rpc.ErrorInfo reason); `violations` name the offending fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar


class Reason(StrEnum):
    """A stable, machine-readable reason (it becomes the google.rpc.ErrorInfo
    reason). Each family enumerates its own by subclassing this one (see
    service/domain/*/reasons.py); the gateway's error tables are keyed by
    the members, and tests/unit/test_error_reasons.py fails when a family's
    reason has no mapping there. Values are the member names."""


class CommonReason(Reason):
    """Reasons of the call chain and the store, whatever the family."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    MISSING_FIELD = "MISSING_FIELD"
    INVALID_JSON = "INVALID_JSON"
    BODY_TOO_LARGE = "BODY_TOO_LARGE"
    UNSTORABLE_VALUE = "UNSTORABLE_VALUE"
    # Limits (service.rpc.limits); U+0000 is INVALID_ARGUMENT, as the domain's own checks say.
    FIELD_TOO_LONG = "FIELD_TOO_LONG"
    COMMIT_FAILED = "COMMIT_FAILED"
    # The store cannot write now (service.store.driver_errors): retry after Retry-After.
    DISK_FULL = "DISK_FULL"
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    # Admission control (service.rpc.admission).
    SERVER_BUSY = "SERVER_BUSY"
    WRITE_QUEUE_FULL = "WRITE_QUEUE_FULL"
    # Live streams (service.domain.log_feed): resume with the cursor given.
    SLOW_CONSUMER = "SLOW_CONSUMER"
    SERVER_SHUTTING_DOWN = "SERVER_SHUTTING_DOWN"
    # Browser safety (gateway.guard).
    HOST_NOT_ALLOWED = "HOST_NOT_ALLOWED"
    ORIGIN_NOT_ALLOWED = "ORIGIN_NOT_ALLOWED"
    # Idempotency keys (service.domain.idempotency).
    INVALID_IDEMPOTENCY_KEY = "INVALID_IDEMPOTENCY_KEY"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    IDEMPOTENCY_KEY_IN_FLIGHT = "IDEMPOTENCY_KEY_IN_FLIGHT"
    IDEMPOTENCY_ANSWER_LOST = "IDEMPOTENCY_ANSWER_LOST"
    # The hooks' spool reports (service.rpc.hook_spool).
    INVALID_HOOK_SPOOL_REPORT = "INVALID_HOOK_SPOOL_REPORT"
    # Retention and quotas (service.domain.retention, service.store.retention.usage).
    QUOTA_EVENTS_PER_DAY = "QUOTA_EVENTS_PER_DAY"
    QUOTA_STORED_BYTES = "QUOTA_STORED_BYTES"
    CURSOR_BEFORE_HORIZON = "CURSOR_BEFORE_HORIZON"


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: its path in the request (dotted) and what is wrong."""

    field: str
    description: str


@dataclass
class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    message: str
    reason: Reason | None = None
    violations: list[FieldViolation] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)

    # The gRPC status code name this error maps to.
    code: ClassVar[str] = "UNKNOWN"

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class InvalidArgument(DomainError):
    code = "INVALID_ARGUMENT"


class NotFound(DomainError):
    code = "NOT_FOUND"


class AlreadyExists(DomainError):
    code = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    code = "FAILED_PRECONDITION"


class Aborted(DomainError):
    """A conflict with concurrent state (a lost lease, a stale token)."""

    code = "ABORTED"


class PermissionDenied(DomainError):
    code = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class ResourceExhausted(DomainError):
    code = "RESOURCE_EXHAUSTED"


class OutOfRange(DomainError):
    """A position outside what is kept (a cursor retention went past)."""

    code = "OUT_OF_RANGE"


class Unavailable(DomainError):
    code = "UNAVAILABLE"


def invalid(field_path: str, description: str, message: str | None = None) -> InvalidArgument:
    """An InvalidArgument naming one field."""
    return InvalidArgument(
        message or f"{field_path}: {description}",
        reason=CommonReason.INVALID_ARGUMENT,
        violations=[FieldViolation(field_path, description)],
    )
