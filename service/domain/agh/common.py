"""What the AGH areas share: times, ids, the errors of the AGH family, and
log entries about tasks.

Errors carry a stable `reason` (the AGH family turns it into upstream's
status and diagnostic code, see gateway.agh_errors) and, in the metadata key
`suggested_command`, what the caller should do next.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from typing import Any

from service.base.errors import DomainError, FieldViolation, InvalidArgument
from service.domain.agh.reasons import AghReason
from service.store.agh import tasks as q
from service.store.agh.tasks import RunRecord, TaskRecord
from service.store.log import Tx

SUGGESTED_COMMAND = "suggested_command"


def now_us() -> int:
    """The server's time in microseconds since the epoch, as the tables keep it."""
    return time.time_ns() // 1000


@functools.lru_cache(maxsize=256)
def _whole_second(second: int) -> str:
    """A second since the epoch as RFC 3339 text, cached: a log entry's times
    fall in few distinct seconds, and formatting is the costly step."""
    t = time.gmtime(second)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def iso(us: int | None) -> str | None:
    """A stored time as RFC 3339 UTC text (as protobuf's Timestamp JSON writes it)."""
    if us is None:
        return None
    second, fraction = divmod(us, 1_000_000)
    seconds = _whole_second(second)
    if fraction == 0:
        return f"{seconds}Z"
    if fraction % 1000 == 0:
        return f"{seconds}.{fraction // 1000:03d}Z"
    return f"{seconds}.{fraction:06d}Z"


def with_action(error: DomainError, action: str) -> DomainError:
    """`error`, telling the caller what to do next."""
    error.metadata[SUGGESTED_COMMAND] = action
    return error


def validation(
    message: str,
    violations: Iterable[FieldViolation] = (),
    reason: AghReason = AghReason.TASK_VALIDATION_FAILED,
) -> InvalidArgument:
    """A request that does not validate: 422 `task_validation_failed` (or `reason`)."""
    return InvalidArgument(message, reason=reason, violations=list(violations))


def invalid_field(
    field: str, description: str, *, area: str = "task", reason: AghReason = AghReason.TASK_VALIDATION_FAILED
) -> InvalidArgument:
    """One bad field, worded as upstream: `task: validation failed: <field> <what>`."""
    return validation(
        f"{area}: validation failed: {field} {description}", [FieldViolation(field, description)], reason
    )


def task_view(task: TaskRecord) -> dict[str, Any]:
    """A task as log entries carry it."""
    return {
        "id": task.id,
        "identifier": task.identifier,
        "title": task.title,
        "status": task.status,
        "priority": task.priority,
        "scope": task.scope,
        "workspace_id": task.scope_workspace,
        "paused": task.paused,
        "max_attempts": task.max_attempts,
    }


_RUN_TIMES = ("queued_at", "claimed_at", "started_at", "ended_at", "heartbeat_at", "lease_until")


def run_view(run: RunRecord) -> dict[str, Any]:
    """A run as log entries carry it: times as RFC 3339 text; the claim's
    token hash but never a token."""
    out = dict(run.__dict__)
    for key in _RUN_TIMES:
        out[key] = iso(out[key])
    return out


def record(
    tx: Tx,
    workspace: str,
    type: str,
    task: TaskRecord,
    run: RunRecord | None = None,
    *,
    actor: dict[str, str],
    payload: dict[str, Any] | None = None,
    session_id: str | None = None,
    now: int,
) -> int:
    """Append a task event to the log, index it under the task, and make it
    the task's latest; returns its seq. The task row itself is saved by the
    caller (with its derived status)."""
    data: dict[str, Any] = {"task": task_view(task), "actor": actor}
    if run is not None:
        data["run"] = run_view(run)
    if payload:
        data["payload"] = payload
    seq = tx.append(type, workspace, data, session_id=session_id, occurred_at=iso(now))
    q.note_event(tx, workspace, task.id, seq)
    task.latest_event_seq = seq
    task.updated_at = now
    return seq
