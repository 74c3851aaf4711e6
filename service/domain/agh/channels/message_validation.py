"""What a channel message must be, checked before anything is written.

Upstream's rules (seed 003): a channel id matches `^[a-z0-9][a-z0-9_-]{0,63}$`;
`metadata` names the task, the run, the coordination channel and a
correlation id, with a `message_kind` among seven; `body` is any JSON value;
and no raw claim token travels in a payload (a `claim_token` key, or an
`agh_claim_…` value other than the literal `agh_claim_token`). agentplane
also bounds a message to 64 KiB of JSON (413 above), as it bounds results.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from service.base.errors import FieldViolation, InvalidArgument, NotFound, ResourceExhausted
from service.domain.agh.reasons import AghReason
from service.domain.validation import reject_nul_characters

MESSAGE_KINDS = ("status", "request", "reply", "blocker", "handoff", "result", "review_request")
REPLY = "reply"
MAX_MESSAGE_BYTES = 64 * 1024
_CHANNEL_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_CLAIM_TOKEN = re.compile(r"agh_claim_[A-Za-z0-9_-]+")
_HARMLESS_TOKEN = "agh_claim_token"
REQUIRED_METADATA = ("task_id", "run_id", "coordination_channel_id", "correlation_id", "message_kind")


class Missing:
    """The body was not given at all (JSON null is a value)."""


MISSING = Missing()


def invalid(
    field: str, description: str, reason: AghReason = AghReason.CHANNEL_VALIDATION_FAILED
) -> InvalidArgument:
    return InvalidArgument(
        f"channel: validation failed: {field} {description}",
        reason=reason,
        violations=[FieldViolation(field, description)],
    )


def check_channel_id(channel_id: str, field: str = "channel") -> str:
    """The id, or 400 `invalid_channel`."""
    if not _CHANNEL_ID.fullmatch(channel_id):
        raise InvalidArgument(
            f"channel: invalid channel {channel_id!r}: must match ^[a-z0-9][a-z0-9_-]{{0,63}}$",
            reason=AghReason.INVALID_CHANNEL,
            violations=[FieldViolation(field, "must match ^[a-z0-9][a-z0-9_-]{0,63}$")],
        )
    return channel_id


def channel_not_found(channel_id: str) -> NotFound:
    return NotFound(
        f'channel "{channel_id}" not found',
        reason=AghReason.CHANNEL_NOT_FOUND,
        metadata={"channel_id": channel_id},
    )


def check_kinds(kinds: list[str], field: str = "allowed_message_kinds") -> list[str]:
    for i, kind in enumerate(kinds):
        if kind not in MESSAGE_KINDS:
            raise invalid(f"{field}[{i}]", f"must be one of {', '.join(MESSAGE_KINDS)}")
    return list(dict.fromkeys(kinds)) or list(MESSAGE_KINDS)


def _no_claim_token(value: Any, path: str) -> None:
    if isinstance(value, str):
        for found in _CLAIM_TOKEN.findall(value):
            if found != _HARMLESS_TOKEN:
                raise invalid(path, "must not carry a raw claim token", AghReason.CLAIM_TOKEN_FORBIDDEN)
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            if key == "claim_token":
                raise invalid(where, "must not carry a raw claim token", AghReason.CLAIM_TOKEN_FORBIDDEN)
            _no_claim_token(item, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _no_claim_token(item, f"{path}[{i}]")


def check_metadata(
    metadata: dict[str, Any] | None, channel_id: str, *, field: str = "metadata"
) -> dict[str, Any]:
    """The metadata as stored (blank optional fields dropped), or the first bad field."""
    if metadata is None:
        raise invalid(field, "is required")
    for name in REQUIRED_METADATA:
        if not str(metadata.get(name) or "").strip():
            raise invalid(f"{field}.{name}", "is required")
    if metadata["message_kind"] not in MESSAGE_KINDS:
        raise invalid(f"{field}.message_kind", f"must be one of {', '.join(MESSAGE_KINDS)}")
    if metadata["coordination_channel_id"] != channel_id:
        raise invalid(
            f"{field}.coordination_channel_id", f'must be the channel the message is sent to, "{channel_id}"'
        )
    out = {name: metadata[name] for name in REQUIRED_METADATA}
    if metadata.get("workflow_id"):
        out["workflow_id"] = metadata["workflow_id"]
    if metadata.get("ext"):
        out["ext"] = metadata["ext"]
    return out


def check_payload(body: Any, metadata: dict[str, Any]) -> tuple[str, str]:
    """(body, metadata) as JSON text, once both are known to be acceptable."""
    if isinstance(body, Missing):
        raise invalid("body", "is required")
    reject_nul_characters(body, "body")
    reject_nul_characters(metadata, "metadata")
    _no_claim_token(body, "body")
    _no_claim_token(metadata, "metadata")
    body_text, metadata_text = orjson.dumps(body).decode(), orjson.dumps(metadata).decode()
    size = len(body_text) + len(metadata_text)
    if size > MAX_MESSAGE_BYTES:
        raise ResourceExhausted(
            f"channel: message too large: {size} bytes of JSON, more than {MAX_MESSAGE_BYTES}",
            reason=AghReason.MESSAGE_TOO_LARGE,
            metadata={"limit_bytes": str(MAX_MESSAGE_BYTES)},
        )
    return body_text, metadata_text


def check_allowed(kind: str, allowed: list[str], channel_id: str) -> None:
    if kind not in allowed:
        raise invalid(
            "metadata.message_kind", f'is not allowed on channel "{channel_id}" ({", ".join(allowed)})'
        )
