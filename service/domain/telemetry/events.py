"""What Claude Code's and Codex's telemetry says, record by record.

Claude Code (CLAUDE_CODE_ENABLE_TELEMETRY=1) sends events as log records
whose body is the event name (`claude_code.api_request`) and whose
`event.name` attribute is its suffix; the session is `session.id`. Codex
(`[otel]`) names its events `codex.*` in `event.name`; the session is
`conversation.id`. Numbers often arrive as strings ("123"): they are read as
numbers, and a record whose number is not one is refused (reported in
partial_success), never stored half-understood. Records of other events and
other programs are kept raw (`telemetry.record`).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from service.domain.telemetry.model import (
    API_ERROR,
    API_REQUEST,
    API_USAGE,
    CLAUDE_CODE,
    CODEX,
    OTHER,
    RECORD,
    TOOL_DECISION,
    TOOL_RESULT,
    USER_PROMPT,
    Resource,
)

_PREFIXES = (("claude_code.", CLAUDE_CODE), ("codex.", CODEX))
_SESSION_KEYS = ("session.id", "conversation.id")
# The event (after its prefix) -> the kind it is stored as.
_KINDS = {
    (CLAUDE_CODE, "api_request"): API_REQUEST,
    (CLAUDE_CODE, "api_error"): API_ERROR,
    (CLAUDE_CODE, "tool_result"): TOOL_RESULT,
    (CLAUDE_CODE, "tool_decision"): TOOL_DECISION,
    (CLAUDE_CODE, "user_prompt"): USER_PROMPT,
    (CODEX, "api_request"): API_REQUEST,
    (CODEX, "tool_result"): TOOL_RESULT,
    (CODEX, "tool_decision"): TOOL_DECISION,
    (CODEX, "user_prompt"): USER_PROMPT,
}
_INT, _FLOAT, _BOOL, _TEXT = range(4)
# kind -> (stored field, the attributes it is read from, in order, its type)
_FIELDS: dict[str, tuple[tuple[str, tuple[str, ...], int], ...]] = {
    API_REQUEST: (
        ("model", ("model",), _TEXT),
        ("input_tokens", ("input_tokens", "input_token_count"), _INT),
        ("output_tokens", ("output_tokens", "output_token_count"), _INT),
        ("cache_read_tokens", ("cache_read_tokens", "cached_token_count"), _INT),
        ("cache_creation_tokens", ("cache_creation_tokens",), _INT),
        ("cost_usd", ("cost_usd",), _FLOAT),
        ("duration_ms", ("duration_ms",), _FLOAT),
        ("status_code", ("http.response.status_code", "status_code"), _INT),
    ),
    API_ERROR: (
        ("model", ("model",), _TEXT),
        ("error", ("error", "error.message"), _TEXT),
        ("status_code", ("status_code", "http.response.status_code"), _INT),
        ("duration_ms", ("duration_ms",), _FLOAT),
        ("attempt", ("attempt",), _INT),
    ),
    TOOL_RESULT: (
        ("tool_name", ("tool_name",), _TEXT),
        ("success", ("success",), _BOOL),
        ("duration_ms", ("duration_ms",), _FLOAT),
        ("error", ("error",), _TEXT),
        ("decision", ("decision",), _TEXT),
        ("source", ("source",), _TEXT),
    ),
    TOOL_DECISION: (
        ("tool_name", ("tool_name",), _TEXT),
        ("decision", ("decision",), _TEXT),
        ("source", ("source",), _TEXT),
    ),
    USER_PROMPT: (
        ("prompt_length", ("prompt_length",), _INT),
        ("prompt", ("prompt",), _TEXT),
    ),
}
_FIELDS[API_USAGE] = _FIELDS[API_REQUEST]
_TRUE, _FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no", ""})
# Codex reports token counts on the SSE event that completes a response.
_CODEX_COMPLETED = "response.completed"
MAX_INT = 2**63 - 1
_MAX_INT_DIGITS = len(str(MAX_INT))


class BadRecord(ValueError):
    """A record the domain refuses (its message goes into partial_success)."""


def runtime_of(name: str, resource: Resource) -> tuple[str, str]:
    """(runtime, the event name without the runtime's prefix)."""
    for prefix, runtime in _PREFIXES:
        if name.startswith(prefix):
            return runtime, name[len(prefix) :]
    service = str(resource.attributes.get("service.name", "")).lower()
    if service.startswith("claude"):
        return CLAUDE_CODE, name
    if service.startswith("codex"):
        return CODEX, name
    return OTHER, name


def event_name(body: Any, event_name_field: str, attributes: dict[str, Any]) -> str:
    """The event's full name: OTLP's `event_name`, else the `event.name`
    attribute, completed from the body when that has the prefix (Claude Code
    puts `claude_code.api_request` in the body, `api_request` in `event.name`)."""
    attr = attributes.get("event.name")
    name = event_name_field or (attr if isinstance(attr, str) else "")
    if isinstance(body, str) and body.endswith(name) and body.startswith(("claude_code.", "codex.")):
        return body
    if not name and isinstance(body, str) and body.startswith(("claude_code.", "codex.")):
        return body
    return name


def session_of(attributes: dict[str, Any]) -> str | None:
    for key in _SESSION_KEYS:
        value = attributes.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def kind_of(runtime: str, event: str, attributes: dict[str, Any]) -> str:
    if runtime == CODEX and event == "sse_event":
        kind = attributes.get("event.kind")
        has_tokens = any(k in attributes for k in ("input_token_count", "output_token_count"))
        return API_USAGE if kind == _CODEX_COMPLETED or has_tokens else RECORD
    return _KINDS.get((runtime, event), RECORD)


def _number(value: Any, key: str, whole: bool) -> int | float:
    if whole and type(value) is str and value.isdigit() and value.isascii():
        # Claude Code sends its counts as text ("1200"): read without a float.
        if len(value) <= _MAX_INT_DIGITS and int(value) <= MAX_INT:
            return int(value)
        raise BadRecord(f"attribute {key}: expected a whole number, got {value!r}")
    if isinstance(value, bool):
        raise BadRecord(f"attribute {key}: expected a number, got a boolean")
    if isinstance(value, int):
        number: float = value
    elif isinstance(value, float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value)  # surrounding whitespace allowed, as float() does
        except ValueError:
            raise BadRecord(f"attribute {key}: expected a number, got {value[:40]!r}") from None
    else:
        raise BadRecord(f"attribute {key}: expected a number, got {type(value).__name__}")
    if not math.isfinite(number) or number < 0:
        raise BadRecord(f"attribute {key}: expected a finite number >= 0, got {value!r}")
    if whole:
        if number != int(number) or number > MAX_INT:
            raise BadRecord(f"attribute {key}: expected a whole number, got {value!r}")
        return int(number)
    return number


def _flag(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise BadRecord(f"attribute {key}: expected a boolean, got {value!r}")


def fields_of(kind: str, attributes: dict[str, Any]) -> dict[str, Any]:
    """The fields a kind stores, read from the record's attributes; raises
    BadRecord when one is present but of the wrong type."""
    out: dict[str, Any] = {}
    for name, keys, typ in _FIELDS.get(kind, ()):
        for key in keys:
            if key not in attributes:
                continue
            value = attributes[key]
            if typ == _INT:
                out[name] = _number(value, key, True)
            elif typ == _FLOAT:
                out[name] = _number(value, key, False)
            elif typ == _BOOL:
                out[name] = _flag(value, key)
            else:
                out[name] = value if isinstance(value, str) else str(value)
            break
    return out


_SECONDS: dict[int, str] = {}
_MAX_SECONDS = 253402300799  # 9999-12-31T23:59:59Z


def iso_time(unix_nano: int) -> str:
    """ISO 8601 UTC with milliseconds (the order of text is the order of time).
    An export's records share their seconds: each second is formatted once."""
    millis = min(max(unix_nano, 0) // 1_000_000, _MAX_SECONDS * 1000 + 999)
    seconds, ms = divmod(millis, 1000)
    prefix = _SECONDS.get(seconds)
    if prefix is None:
        if len(_SECONDS) > 4096:
            _SECONDS.clear()
        prefix = _SECONDS[seconds] = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{prefix}.{ms:03d}Z"


def hex_id(raw: bytes, length: int, what: str) -> str | None:
    """A trace or span id as OTLP JSON writes it; empty is none; another
    length than OTLP's (16 and 8 bytes) is refused."""
    if not raw:
        return None
    if len(raw) != length:
        raise BadRecord(f"{what} must be {length} bytes, got {len(raw)}")
    return raw.hex()
