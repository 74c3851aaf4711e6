"""How the Agent Tracer family (seed 000) renders an error status.

Upstream answers `{"ok": false, "error": {"code", "message", "details"?}}`
with a short code per HTTP status, and describes a body that failed
validation with zod's `error.format()` tree: one node per input key (array
indexes as string keys), each with its `_errors`. Here that tree is rebuilt
from the status's field violations, whatever layer found them (the generic
REQUIRED check uses proto names, the domain the JSON names).
"""

from __future__ import annotations

import re
from typing import Any

from service.domain.tracer.reasons import TracerReason
from service.rpc.status import RpcError

# Every tracer reason (service.domain.tracer.reasons; tests/unit/test_error_reasons.py
# fails when one is missing) and the status and code it answers, whatever the gRPC code.
REASONS: dict[str, tuple[int, str]] = {
    TracerReason.TASK_NOT_FOUND: (404, "not_found"),
    TracerReason.RULE_NOT_FOUND: (404, "not_found"),
    TracerReason.SESSION_NOT_FOUND: (404, "not_found"),
    # A domain rule was violated (upstream's InvalidRuleError and the like).
    TracerReason.BAD_REQUEST: (400, "bad_request"),
    TracerReason.CONFLICT: (409, "conflict"),
    TracerReason.VALIDATION_ERROR: (400, "validation_error"),
}

# gRPC code -> (HTTP status, code) for the rest.
CODES: dict[int, tuple[int, str]] = {
    3: (400, "validation_error"),  # INVALID_ARGUMENT
    5: (404, "not_found"),
    6: (409, "conflict"),  # ALREADY_EXISTS
    7: (403, "forbidden"),
    8: (429, "request_failed"),  # RESOURCE_EXHAUSTED
    9: (400, "bad_request"),  # FAILED_PRECONDITION
    10: (409, "conflict"),  # ABORTED
    11: (400, "bad_request"),  # OUT_OF_RANGE
    # No such method (the gateway answers a wrong HTTP verb with 405): the
    # caller's mistake, not a fault, so the message is kept.
    12: (501, "request_failed"),
    14: (503, "service_unavailable"),  # retryable: the message says what to do
    16: (401, "unauthorized"),
}
# Faults of the server: upstream never says more than this.
INTERNAL_MESSAGE = "Internal server error"
# The message of a validation error the domain did not word itself.
INVALID_REQUEST = "Invalid request"
# The domain's own validation errors carry upstream's message verbatim.
VALIDATION_REASON = TracerReason.VALIDATION_ERROR

_SEGMENT = re.compile(r"[^.\[\]]+")
# The generic checks' wording -> zod's.
_ZOD_WORDING = {"is required": "Required"}


def _camel(segment: str) -> str:
    head, *rest = segment.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def zod_tree(violations: list[tuple[str, str]], top: list[str] | None = None) -> dict[str, Any]:
    """zod's `format()` tree of (dotted field path, description) pairs."""
    root: dict[str, Any] = {"_errors": list(top or [])}
    for field, description in violations:
        node = root
        for segment in _SEGMENT.findall(field):
            node = node.setdefault(_camel(segment), {"_errors": []})
        node["_errors"].append(_ZOD_WORDING.get(description, description))
    return root


def classify(err: RpcError) -> tuple[int, str]:
    """The HTTP status and the upstream code for an error."""
    info = err.error_info()
    if info is not None and info.reason in REASONS:
        return REASONS[info.reason]
    found = CODES.get(err.code)
    if found is not None:
        return found
    status = {1: 499, 4: 504}.get(err.code, 500)
    return status, "request_failed" if status < 500 else "internal_server_error"


def error_object(err: RpcError) -> dict[str, Any]:
    """The `error` member: code, message and, for validation errors, details."""
    code = classify(err)[1]
    if code == "internal_server_error":
        return {"code": code, "message": INTERNAL_MESSAGE}
    if code != "validation_error":
        return {"code": code, "message": err.status.message}
    info = err.error_info()
    own = info is not None and info.reason == VALIDATION_REASON
    violations = [(v.field, v.description) for v in err.field_violations()]
    details = zod_tree(violations, [] if violations else [err.status.message])
    return {
        "code": code,
        "message": err.status.message if own else INVALID_REQUEST,
        "details": details,
    }
