"""AGH (seed 003) error bodies: `{"error": text, "diagnostic": {...}}` with
upstream's HTTP statuses and diagnostic codes, derived from the ErrorInfo
reason the domain raised (and from the gRPC code when the reason is not
AGH's own: a bad API key, a malformed body).

The domain puts what the caller should do next in the ErrorInfo metadata
key `suggested_command`; upstream writes it after the message in `error`
("message: action") and alone in `diagnostic.suggested_command`. The other
metadata keys become the diagnostic's `evidence`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from service.base.errors import CommonReason
from service.domain.agh.reasons import AghReason
from service.rpc.status import RpcError

SUGGESTED_COMMAND = "suggested_command"
# An invalid soul is answered with the soul payload itself (JSON in this
# metadata key), as upstream's GET /soul and /soul/validate do.
PAYLOAD = "payload"
_HIDDEN = frozenset({SUGGESTED_COMMAND, PAYLOAD})
# Raw claim tokens never appear here, but upstream redacts them from every
# error text, and so does this.
_CLAIM_TOKEN = re.compile(r"agh_claim_[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Kind:
    status: int
    category: str
    title: str
    id_prefix: str


_IDENTITY = "Agent identity error"
_TASK = "Task error"
_SPAWN = "Spawn error"
_SOUL = "Soul error"
_CHANNEL = "Channel error"

# Every AGH reason (service.domain.agh.reasons; tests/unit/test_error_reasons.py
# fails when one is missing): status, category, title.
REASONS: dict[str, Kind] = {
    AghReason.IDENTITY_REQUIRED: Kind(401, "session", _IDENTITY, "agentidentity"),
    AghReason.IDENTITY_STALE: Kind(401, "session", _IDENTITY, "agentidentity"),
    AghReason.IDENTITY_MISMATCH: Kind(401, "session", _IDENTITY, "agentidentity"),
    AghReason.IDENTITY_UNAUTHORIZED: Kind(403, "session", _IDENTITY, "agentidentity"),
    AghReason.IDENTITY_LOOKUP_UNAVAILABLE: Kind(503, "session", _IDENTITY, "agentidentity"),
    AghReason.TASK_NOT_FOUND: Kind(404, "task", _TASK, "task"),
    AghReason.TASK_RUN_NOT_FOUND: Kind(404, "task", _TASK, "task"),
    AghReason.TASK_RUN_STALE_LEASE: Kind(409, "task", _TASK, "task"),
    AghReason.TASK_RUN_ALREADY_TERMINAL: Kind(409, "task", _TASK, "task"),
    AghReason.TASK_RUN_NOT_RELEASABLE: Kind(409, "task", _TASK, "task"),
    AghReason.TASK_RUN_STILL_ACTIVE: Kind(409, "task", _TASK, "task"),
    AghReason.TASK_RUN_NOT_OWNED: Kind(403, "task", _TASK, "task"),
    AghReason.TASK_CANCELED: Kind(409, "task", _TASK, "task"),
    AghReason.TASK_VALIDATION_FAILED: Kind(422, "task", _TASK, "task"),
    AghReason.PAYLOAD_TOO_LARGE: Kind(413, "task", _TASK, "task"),
    AghReason.SPAWN_VALIDATION_FAILED: Kind(422, "session", _SPAWN, "spawn"),
    AghReason.SPAWN_PERMISSION_DENIED: Kind(403, "session", _SPAWN, "spawn"),
    AghReason.SPAWN_DEPTH_EXCEEDED: Kind(409, "session", _SPAWN, "spawn"),
    AghReason.SPAWN_CHILDREN_EXCEEDED: Kind(409, "session", _SPAWN, "spawn"),
    AghReason.SPAWN_WORKSPACE_LIMIT_EXCEEDED: Kind(409, "session", _SPAWN, "spawn"),
    AghReason.SESSION_NOT_FOUND: Kind(404, "session", "Session error", "session"),
    AghReason.SOUL_INVALID: Kind(422, "config", _SOUL, "soul"),
    AghReason.CHANNEL_NOT_FOUND: Kind(404, "network", _CHANNEL, "channel"),
    AghReason.MESSAGE_NOT_FOUND: Kind(404, "network", _CHANNEL, "channel"),
    AghReason.CHANNEL_VALIDATION_FAILED: Kind(422, "network", _CHANNEL, "channel"),
    AghReason.CLAIM_TOKEN_FORBIDDEN: Kind(422, "network", _CHANNEL, "channel"),
    AghReason.MESSAGE_TOO_LARGE: Kind(413, "network", _CHANNEL, "channel"),
    AghReason.MESSAGE_EXISTS: Kind(409, "network", _CHANNEL, "channel"),
    AghReason.INVALID_CHANNEL: Kind(400, "network", _CHANNEL, "channel"),
    AghReason.INVALID_CURSOR: Kind(400, "network", _CHANNEL, "channel"),
    AghReason.INVALID_LIMIT: Kind(400, "network", _CHANNEL, "channel"),
    AghReason.TOO_MANY_STREAMS: Kind(429, "network", _CHANNEL, "channel"),
    # Retention removed what follows the stream's cursor (evidence: oldest_seq, resume_after_seq).
    CommonReason.CURSOR_BEFORE_HORIZON: Kind(400, "network", _CHANNEL, "channel"),
    # Raised by AGH without an upstream counterpart: answered by their gRPC code.
    AghReason.SESSION_NOT_RUNNING: Kind(409, "daemon", "Request error", "api"),
    AghReason.SESSION_IS_SPAWNED: Kind(409, "daemon", "Request error", "api"),
    AghReason.WORKSPACE_MISMATCH: Kind(403, "daemon", "Request error", "api"),
    AghReason.CHANNEL_EXISTS: Kind(409, "daemon", "Request error", "api"),
    # The gateway's own: a body that is not JSON, or too large.
    CommonReason.INVALID_JSON: Kind(400, "daemon", "Invalid request", "api"),
    CommonReason.BODY_TOO_LARGE: Kind(413, "daemon", "Invalid request", "api"),
}

# By gRPC code, for reasons not listed above: upstream answers a request that
# does not validate with 422, a conflict with 409.
CODES: dict[int, int] = {
    3: 422,
    5: 404,
    6: 409,
    7: 403,
    8: 429,
    9: 409,
    10: 409,
    11: 400,
    12: 501,
    14: 503,
    16: 401,
}
# Diagnostic codes for errors that carry no reason.
_CODE_NAMES = {
    3: "validation_failed",
    5: "not_found",
    6: "conflict",
    7: "forbidden",
    8: "rate_limited",
    9: "conflict",
    10: "conflict",
    11: "out_of_range",
    12: "not_implemented",
    14: "unavailable",
    16: "unauthenticated",
}


def _kind(err: RpcError, reason: str) -> Kind:
    known = REASONS.get(reason)
    if known is not None:
        return known
    return Kind(CODES.get(err.code, 500), "daemon", "Request error", "api")


def classify(err: RpcError) -> tuple[int, dict[str, Any]]:
    """The HTTP status and the body of an error."""
    info = err.error_info()
    reason = info.reason if info else ""
    metadata = dict(info.metadata) if info else {}
    kind = _kind(err, reason)
    if reason == "SOUL_INVALID" and PAYLOAD in metadata:
        return kind.status, orjson.loads(metadata[PAYLOAD])
    message = _CLAIM_TOKEN.sub("agh_claim_[REDACTED]", err.status.message)
    if err.code in (2, 13, 15):  # a server fault: its text is not for the caller
        message = "Internal Server Error"
    code = reason.lower() if reason else _CODE_NAMES.get(err.code, "internal_error")
    action = metadata.get(SUGGESTED_COMMAND, "")
    diagnostic: dict[str, Any] = {
        "id": f"{kind.id_prefix}.{code}",
        "code": code,
        "category": kind.category,
        "title": kind.title,
        "message": message,
        "severity": "error",
        "data_freshness": "live",
    }
    if action:
        diagnostic[SUGGESTED_COMMAND] = action
    evidence: dict[str, Any] = {k: v for k, v in sorted(metadata.items()) if k not in _HIDDEN}
    violations = err.field_violations()
    if violations:
        evidence["field_violations"] = [{"field": v.field, "description": v.description} for v in violations]
    if evidence:
        diagnostic["evidence"] = evidence
    return kind.status, {"error": f"{message}: {action}" if action else message, "diagnostic": diagnostic}


DIAGNOSTIC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "`<area>.<code>`, e.g. `agentidentity.identity_required`"},
        "code": {"type": "string", "description": "identity_required, task_run_stale_lease, …"},
        "category": {"type": "string", "description": "session, task, config, daemon, …"},
        "title": {"type": "string"},
        "message": {"type": "string"},
        "severity": {"type": "string", "enum": ["ok", "info", "warn", "error", "critical"]},
        "suggested_command": {"type": "string", "description": "what to do about it"},
        "doc_url": {"type": "string"},
        "data_freshness": {"type": "string", "enum": ["live", "offline", "stale"]},
        "evidence": {"type": "object", "additionalProperties": True},
    },
    "required": ["id", "code", "category", "title", "message", "severity", "data_freshness"],
}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "diagnostic": DIAGNOSTIC_SCHEMA},
    "required": ["error"],
}
