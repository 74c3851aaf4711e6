"""Shared data and matchers for the Agent Runtime API (seed 004) tests.

The examples are copied from the seed (API.md) and from DATA_MODELS.md as
the reference (§1.4) quotes them; the HTTP, gRPC and WebSocket tests replay
them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

# The seven keys of a Session, always present (reference §1.1).
SESSION_KEYS = (
    "session_id",
    "session_name",
    "status",
    "created_at",
    "project_dir",
    "agent_name",
    "last_resumed_at",
)
# The optional keys of an Event (reference §1.2), null when missing.
EVENT_OPTIONAL_KEYS = (
    "tool_name",
    "tool_input",
    "tool_output",
    "error",
    "exit_code",
    "reason",
    "role",
    "content",
)
# The keys of a stored event as GET returns it (reference §1.3): no session_name.
STORED_EVENT_KEYS = ("id", "session_id", "event_type", "timestamp", *EVENT_OPTIONAL_KEYS)
FALSY_AS_NULL = ("tool_input", "tool_output", "content")

ISO_8601_WITH_TZ = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


class _ServerTime:
    """Equal to an ISO 8601 timestamp with a timezone, within minutes of now."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, str) or not ISO_8601_WITH_TZ.match(other):
            return False
        stamp = datetime.fromisoformat(other)
        return stamp.tzinfo is not None and abs(datetime.now(UTC) - stamp) < timedelta(minutes=5)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "<ISO 8601 server time with timezone>"


class _AnyInt:
    """Equal to any integer (not a bool): a stored event's `id`."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, int) and not isinstance(other, bool)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "<int>"


SERVER_TIME: Any = _ServerTime()
ANY_INT: Any = _AnyInt()


def session(
    session_id: str,
    session_name: str,
    *,
    status: str = "running",
    created_at: Any = SERVER_TIME,
    project_dir: str | None = None,
    agent_name: str | None = None,
) -> dict[str, Any]:
    """A Session as the API returns it: all seven keys."""
    return {
        "session_id": session_id,
        "session_name": session_name,
        "status": status,
        "created_at": created_at,
        "project_dir": project_dir,
        "agent_name": agent_name,
        "last_resumed_at": None,
    }


def event(event_type: str, session_id: str, timestamp: str, **optional: Any) -> dict[str, Any]:
    """An Event request body (session_name "my-agent" unless given)."""
    return {
        "event_type": event_type,
        "session_id": session_id,
        "session_name": optional.pop("session_name", "my-agent"),
        "timestamp": timestamp,
        **optional,
    }


def _falsy(value: Any) -> bool:
    return not value


def stored(sent: dict[str, Any], event_id: Any = ANY_INT) -> dict[str, Any]:
    """What GET returns for an event sent as `sent` (reference §1.3, §6.4, §6.5)."""
    out: dict[str, Any] = {"id": event_id}
    for key in STORED_EVENT_KEYS[1:]:
        out[key] = sent.get(key)
    for key in FALSY_AS_NULL:
        if _falsy(out[key]):
            out[key] = None
    return out


def broadcast(sent: dict[str, Any]) -> dict[str, Any]:
    """The `data` of a WebSocket `event` message: the request model, raw, no id."""
    out = {k: sent[k] for k in ("event_type", "session_id", "session_name", "timestamp")}
    for key in EVENT_OPTIONAL_KEYS:
        out[key] = sent.get(key)
    return out


# ---- seed 004 (API.md) request examples ----

SEED_CREATE = {
    "session_id": "abc-123",
    "session_name": "My Session",
    "project_dir": "/path/to/project",
    "agent_name": "researcher",
}
SEED_PATCH = {"session_name": "New Name", "project_dir": "/new/path", "agent_name": "new-agent"}
SEED_RESULT_TEXT = "The assistant's final response text..."
SEED_DELETED_EVENTS = 42

# ---- DATA_MODELS.md event examples (reference §1.4), in the order given ----

DM_SESSION_ID = "abc-123-def"
DM_SESSION_NAME = "my-agent"
DM_EVENTS: dict[str, dict[str, Any]] = {
    "session_start": {
        "event_type": "session_start",
        "session_id": "abc-123-def",
        "session_name": "my-agent",
        "timestamp": "2025-11-16T10:30:00.000000Z",
    },
    "pre_tool": {
        "event_type": "pre_tool",
        "session_id": "abc-123-def",
        "session_name": "my-agent",
        "timestamp": "2025-11-16T10:30:15.000000Z",
        "tool_name": "Read",
        "tool_input": {"file_path": "/path/to/file.py"},
    },
    "post_tool": {
        "event_type": "post_tool",
        "session_id": "abc-123-def",
        "session_name": "my-agent",
        "timestamp": "2025-11-16T10:30:16.000000Z",
        "tool_name": "Read",
        "tool_input": {"file_path": "/path/to/file.py"},
        "tool_output": "file contents here...",
        "error": None,
    },
    "session_stop": {
        "event_type": "session_stop",
        "session_id": "abc-123-def",
        "session_name": "my-agent",
        "timestamp": "2025-11-16T10:35:00.000000Z",
        "exit_code": 0,
        "reason": "completed",
    },
    "message": {
        "event_type": "message",
        "session_id": "abc-123-def",
        "session_name": "my-agent",
        "timestamp": "2025-11-16T10:34:55.000000Z",
        "role": "assistant",
        "content": [{"type": "text", "text": "I've completed the task successfully."}],
    },
}
DM_RESULT_TEXT = "I've completed the task successfully."
# GET orders by timestamp text: the message (10:34:55) comes before the stop (10:35:00).
DM_READ_ORDER = ("session_start", "pre_tool", "post_tool", "message", "session_stop")
