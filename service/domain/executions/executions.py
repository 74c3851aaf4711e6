"""Executions (seed 001's `db.execution`): the runs that agents and tool calls
belong to, and what the three areas share (times, statuses, log entries).

Upstream keeps a "current execution" per database handle, in memory; here the
caller names the execution in every call (the Python client keeps its
current one), and agents and tool calls may only be started while it is
`running`. Every change appends an entry to the event log in the same
transaction as the projection it updates; the entry's data is the record as
the JSON API shows it (`{"execution": {...}}`, `{"agent": {...}}`,
`{"tool_call": {...}}`).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from service.base.errors import CommonReason, FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from service.domain.executions.reasons import ExecutionsReason
from service.domain.validation import reject_nul_characters
from service.store.executions import queries as q
from service.store.executions.queries import EXECUTIONS, ExecutionRecord
from service.store.log import Db, Tx
from service.store.store import Store

PENDING = "pending"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"

DEFAULT_LIST_LIMIT = 20  # as upstream's `list()`
MAX_LIST_LIMIT = 1000
# A caller-chosen execution id appears in URL paths, so it keeps to these.
EXECUTION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIMES = ("started_at", "completed_at", "created_at")


def now_us() -> int:
    """The server's time in microseconds since the epoch, as the tables keep it."""
    return time.time_ns() // 1000


@lru_cache(maxsize=64)
def _whole_seconds(seconds: int) -> str:
    # Most times formatted in a burst share their second: strftime once for it.
    return (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")


def iso(us: int) -> str:
    """A stored time as RFC 3339 UTC text, formatted as protobuf's Timestamp
    JSON (0, 3 or 6 fractional digits), so that log entries and API
    responses spell a time alike."""
    whole, fraction = divmod(us, 1_000_000)
    seconds = _whole_seconds(whole)
    if fraction == 0:
        return f"{seconds}Z"
    if fraction % 1000 == 0:
        return f"{seconds}.{fraction // 1000:03d}Z"
    return f"{seconds}.{fraction:06d}Z"


def elapsed_ms(since_us: int | None, until_us: int) -> int | None:
    """Whole milliseconds between two stored times (never negative)."""
    return None if since_us is None else max(0, (until_us - since_us) // 1000)


def new_id() -> str:
    return str(uuid.uuid4())


def view(record: Any) -> dict[str, Any]:
    """A record as the JSON API shows it: times as RFC 3339 text."""
    out = dict(record.__dict__)
    for key in _TIMES:
        if out[key] is not None:
            out[key] = iso(out[key])
    return out


def announce(tx: Tx, workspace: str, type: str, record: Any, at_us: int) -> int:
    """Append `{kind: record}` to the log (kind is the type's prefix); returns its seq."""
    return tx.append(type, workspace, {type.split(".", 1)[0]: view(record)}, occurred_at=iso(at_us))


def reject(violations: Iterable[FieldViolation]) -> None:
    """Raise one InvalidArgument naming every bad field, if there is any."""
    found = list(violations)
    if found:
        raise InvalidArgument(
            "; ".join(f"{v.field}: {v.description}" for v in found),
            reason=CommonReason.INVALID_ARGUMENT,
            violations=found,
        )


def json_object(field: str, value: Any) -> Iterable[FieldViolation]:
    """A violation if `value` is neither a JSON object nor None."""
    if value is not None and not isinstance(value, dict):
        yield FieldViolation(field, "must be a JSON object")


def not_found(kind: str, key: str, value: str) -> NotFound:
    """`Execution not found` (reason EXECUTION_NOT_FOUND, metadata {key: value})."""
    reason = ExecutionsReason[f"{kind.upper().replace(' ', '_')}_NOT_FOUND"]
    return NotFound(f"{kind.capitalize()} not found", reason=reason, metadata={key: value})


def not_running(kind: str, key: str, value: str, status: str) -> FailedPrecondition:
    """`Agent is completed, not running` (reason AGENT_NOT_RUNNING)."""
    return FailedPrecondition(
        f"{kind.capitalize()} is {status}, not running",
        reason=ExecutionsReason[f"{kind.upper().replace(' ', '_')}_NOT_RUNNING"],
        metadata={key: value, "status": status},
    )


def _existing(db: Db, workspace: str, execution_id: str) -> ExecutionRecord:
    record = EXECUTIONS.get(db, workspace, execution_id)
    if record is None:
        raise not_found("execution", "execution_id", execution_id)
    return record


def require_running(db: Db, workspace: str, execution_id: str) -> None:
    """What starting an agent needs: the execution exists and is running."""
    status = q.execution_status(db, workspace, execution_id)
    if status is None:
        raise not_found("execution", "execution_id", execution_id)
    if status != RUNNING:
        raise not_running("execution", "execution_id", execution_id, status)


async def start_execution(
    store: Store,
    workspace: str,
    *,
    name: str | None = None,
    file_path: str | None = None,
    config: Any = None,
    execution_id: str | None = None,
) -> ExecutionRecord:
    """Start a new running execution, or resume the one `execution_id` names
    (running again, new `started_at`, `error` and `completed_at` cleared)."""
    violations = list(json_object("config", config))
    if execution_id is not None and not EXECUTION_ID.fullmatch(execution_id):
        violations.append(
            FieldViolation("execution_id", "must be 1 to 128 letters, digits, '-', '_', '.' or ':'")
        )
    reject(violations)
    reject_nul_characters({"name": name, "file_path": file_path, "config": config})

    def op(tx: Tx) -> ExecutionRecord:
        now = now_us()
        existing = EXECUTIONS.get(tx, workspace, execution_id) if execution_id else None
        if existing is not None:
            existing.status, existing.started_at = RUNNING, now
            existing.error = existing.completed_at = None
            EXECUTIONS.save(tx, workspace, existing)
            announce(tx, workspace, "execution.resumed", existing, now)
            return existing
        record = ExecutionRecord(
            execution_id or new_id(), name, file_path, RUNNING, config or {}, None, None, now, None, now
        )
        seq = announce(tx, workspace, "execution.started", record, now)
        EXECUTIONS.insert(tx, workspace, record, seq=seq)
        return record

    return await store.write(op)


async def _finish(
    store: Store, workspace: str, execution_id: str, status: str, **changes: Any
) -> ExecutionRecord:
    def op(tx: Tx) -> ExecutionRecord:
        record = _existing(tx, workspace, execution_id)
        if record.status not in (PENDING, RUNNING):
            raise not_running("execution", "execution_id", execution_id, record.status)
        now = now_us()
        record.status, record.completed_at = status, now
        for key, value in changes.items():
            setattr(record, key, value)
        EXECUTIONS.save(tx, workspace, record)
        announce(tx, workspace, f"execution.{status}", record, now)
        return record

    return await store.write(op)


async def complete_execution(store: Store, workspace: str, execution_id: str, result: Any) -> ExecutionRecord:
    """`completed`, with `result` (any JSON value, None for none)."""
    reject_nul_characters({"result": result})
    return await _finish(store, workspace, execution_id, COMPLETED, result=result)


async def fail_execution(store: Store, workspace: str, execution_id: str, error: str) -> ExecutionRecord:
    reject_nul_characters({"error": error})
    return await _finish(store, workspace, execution_id, FAILED, error=error)


async def cancel_execution(store: Store, workspace: str, execution_id: str) -> ExecutionRecord:
    return await _finish(store, workspace, execution_id, CANCELLED)


async def get_execution(store: Store, workspace: str, execution_id: str) -> ExecutionRecord:
    return await store.read(lambda conn: _existing(conn, workspace, execution_id))


async def list_executions(store: Store, workspace: str, limit: int = 0) -> list[ExecutionRecord]:
    """The newest executions first; `limit` 0 means DEFAULT_LIST_LIMIT."""
    if not 0 <= limit <= MAX_LIST_LIMIT:
        reject([FieldViolation("limit", f"must be between 1 and {MAX_LIST_LIMIT} (0 for the default)")])
    count = limit or DEFAULT_LIST_LIMIT
    return await store.read(lambda conn: q.list_executions(conn, workspace, count))
