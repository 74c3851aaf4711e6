"""The Agent Tracer vocabulary, the JSON views of its objects, and the
validation helpers that word errors as upstream's zod schemas do."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from service.base.errors import FieldViolation, InvalidArgument, NotFound
from service.domain.tracer.reasons import TracerReason
from service.store.tracer.queries import SessionRecord, TaskRecord, TurnRecord

# The 10 lanes, in upstream's order.
LANES = (
    "user",
    "exploration",
    "planning",
    "implementation",
    "questions",
    "todos",
    "background",
    "coordination",
    "telemetry",
    "rule",
)
RUNNING, WAITING, COMPLETED, ERRORED = "running", "waiting", "completed", "errored"
TASK_STATUSES = (RUNNING, WAITING, COMPLETED, ERRORED)
TERMINAL_STATUSES = (COMPLETED, ERRORED)
PRIMARY, BACKGROUND = "primary", "background"
TASK_KINDS = (PRIMARY, BACKGROUND)
ORIGINS = ("user", "server-sdk")
SERVER_SDK = "server-sdk"
COMPLETION_REASONS = ("idle", "assistant_turn_complete", "explicit_exit", "runtime_terminated")
RELATION_TYPES = (
    "implements",
    "revises",
    "verifies",
    "answers",
    "delegates",
    "returns",
    "completes",
    "blocks",
    "caused_by",
    "relates_to",
)

# Event kinds, by the server schema that lists them.
TOOL_ACTIVITY_KINDS = ("tool.used", "terminal.command", "monitor.observed")
WORKFLOW_KINDS = (
    "plan.logged",
    "action.logged",
    "verification.logged",
    "rule.logged",
    "thought.logged",
    "context.saved",
    "context.snapshot",
    "user.prompt.expansion",
    "permission.request",
    "worktree.create",
    "worktree.remove",
    "setup.triggered",
    "file.changed",
)
CONVERSATION_KINDS = ("user.message", "assistant.response", "question.logged", "todo.logged")
COORDINATION_KINDS = ("agent.activity.logged",)
LIFECYCLE_KINDS = ("session.ended", "instructions.loaded")
TOKEN_USAGE = "token.usage"
INGESTABLE_KINDS = (
    *TOOL_ACTIVITY_KINDS,
    *WORKFLOW_KINDS,
    *CONVERSATION_KINDS,
    *COORDINATION_KINDS,
    *LIFECYCLE_KINDS,
    TOKEN_USAGE,
)
# What each endpoint accepts: the server's kinds plus the routings the real
# Claude Code hooks use (reference §2, "Routing contradiction"), so that
# every hook's event is recorded.
ENDPOINT_KINDS: dict[str, tuple[str, ...]] = {
    "events": INGESTABLE_KINDS,
    "tool-activity": TOOL_ACTIVITY_KINDS,
    "workflow": (*WORKFLOW_KINDS, "instructions.loaded", "todo.logged"),
    "conversation": (*CONVERSATION_KINDS, "user.prompt.expansion"),
    "coordination": (*COORDINATION_KINDS, "action.logged"),
    "lifecycle": (
        *LIFECYCLE_KINDS,
        "setup.triggered",
        "file.changed",
        "worktree.create",
        "worktree.remove",
        "permission.request",
    ),
    "telemetry": (TOKEN_USAGE,),
}
USER_MESSAGE, ASSISTANT_RESPONSE, SESSION_ENDED = "user.message", "assistant.response", "session.ended"
FILE_CHANGED = "file.changed"

# Log entry types (each `data` is the upstream WebSocket payload, or wraps it).
TASK_STARTED = "tracer.task.started"
TASK_UPDATED = "tracer.task.updated"
TASK_COMPLETED = "tracer.task.completed"
SESSION_STARTED = "tracer.session.started"
SESSION_ENDED_ENTRY = "tracer.session.ended"
EVENT_LOGGED = "tracer.event.logged"
EVENT_UPDATED = "tracer.event.updated"
TURN_OPENED = "tracer.turn.opened"
TURN_CLOSED = "tracer.turn.closed"
BINDING_UPDATED = "tracer.binding.updated"
BINDING_DELETED = "tracer.binding.deleted"

# zod v3 wording (reference §1).
REQUIRED = "Required"
MIN_ONE_CHAR = "String must contain at least 1 character(s)"
MIN_ONE_ITEM = "Array must contain at least 1 element(s)"
MAX_EVENTS = 100
MAX_ITEMS = f"Array must contain at most {MAX_EVENTS} element(s)"
NOT_NEGATIVE = "Number must be greater than or equal to 0"
# The message of a 400 on the seven event endpoints, and on the others.
INVALID_BODY = "Invalid request body"
INVALID_REQUEST = "Invalid request"
VALIDATION_REASON = TracerReason.VALIDATION_ERROR


def enum_error(allowed: Iterable[str], received: str) -> str:
    expected = " | ".join(f"'{v}'" for v in allowed)
    return f"Invalid enum value. Expected {expected}, received '{received}'"


class Violations:
    """Collects field errors (JSON paths) and raises them as one 400."""

    def __init__(self) -> None:
        self.found: list[FieldViolation] = []

    def add(self, path: str, description: str) -> None:
        self.found.append(FieldViolation(path, description))

    def enum(self, path: str, value: str | None, allowed: tuple[str, ...]) -> None:
        """A required enum field (an empty string reads as missing)."""
        if not value:
            self.add(path, REQUIRED)
        elif value not in allowed:
            self.add(path, enum_error(allowed, value))

    def optional_enum(self, path: str, value: str | None, allowed: tuple[str, ...]) -> None:
        if value is not None and value not in allowed:
            self.add(path, enum_error(allowed, value))

    def not_empty(self, path: str, value: str | None) -> None:
        """An optional string that, when given, has at least one character."""
        if value is not None and value == "":
            self.add(path, MIN_ONE_CHAR)

    def check(self, message: str = INVALID_REQUEST) -> None:
        if self.found:
            raise InvalidArgument(message, reason=VALIDATION_REASON, violations=list(self.found))


def reject_nul(violations: Violations, path: str, value: Any) -> None:
    """PostgreSQL stores no U+0000 in text or JSONB: refuse it on every backend."""
    if isinstance(value, str):
        if "\x00" in value:
            violations.add(path, "must not contain the character U+0000")
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_nul(violations, path, key)
            reject_nul(violations, f"{path}.{key}", item)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            reject_nul(violations, f"{path}.{i}", item)


def task_not_found(task_id: str, *, read: bool = False) -> NotFound:
    """Upstream's wording: "Task not found" on reads, with the id on writes."""
    return NotFound(
        "Task not found" if read else f"Task not found: {task_id}",
        reason=TracerReason.TASK_NOT_FOUND,
        metadata={"task_id": task_id},
    )


def now_iso() -> str:
    return iso(datetime.now(UTC))


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and `Z`, as JavaScript's toISOString."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(title: str) -> str:
    slug = _NOT_SLUG.sub("-", title.lower()).strip("-")[:80]
    return slug or "task"


_SLASHES = re.compile(r"/{2,}")


def normalize_workspace_path(path: str | None) -> str | None:
    """Trimmed, repeated "/" collapsed, trailing "/" removed (the root stays "/")."""
    if path is None:
        return None
    path = _SLASHES.sub("/", path.strip())
    if len(path) > 1:
        path = path.rstrip("/")
    return path or None


def normalize_file_paths(paths: Iterable[str]) -> list[str]:
    """Trimmed, without blanks and duplicates, in order."""
    seen: dict[str, None] = {}
    for p in paths:
        p = p.strip()
        if p:
            seen.setdefault(p, None)
    return list(seen)


def _present(values: dict[str, Any]) -> dict[str, Any]:
    """Optional fields are omitted when empty, never null (as upstream)."""
    return {k: v for k, v in values.items() if v is not None}


def task_view(t: TaskRecord) -> dict[str, Any]:
    return _present(
        {
            "id": t.id,
            "title": t.title,
            "slug": t.slug,
            "status": t.status,
            "taskKind": t.task_kind,
            "createdAt": t.created_at,
            "updatedAt": t.updated_at,
            "origin": t.origin,
            "workspacePath": t.workspace_path,
            "parentTaskId": t.parent_task_id,
            "parentSessionId": t.parent_session_id,
            "backgroundTaskId": t.background_task_id,
            "lastSessionStartedAt": t.last_session_started_at,
            "runtimeSource": t.runtime_source,
        }
    )


def session_view(s: SessionRecord) -> dict[str, Any]:
    return _present(
        {
            "id": s.id,
            "taskId": s.task_id,
            "status": s.status,
            "startedAt": s.started_at,
            "endedAt": s.ended_at,
            "summary": s.summary,
        }
    )


def turn_view(t: TurnRecord) -> dict[str, Any]:
    return _present(
        {
            "id": t.id,
            "sessionId": t.session_id,
            "taskId": t.task_id,
            "turnIndex": t.turn_index,
            "status": t.status,
            "startedAt": t.started_at,
            "endedAt": t.ended_at,
            "askedText": t.asked_text,
            "assistantText": t.assistant_text,
            "aggregateVerdict": t.aggregate_verdict,
            "rulesEvaluatedCount": t.rules_evaluated_count,
        }
    )
