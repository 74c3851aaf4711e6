"""The console's overview: running work (counted on the families' indexed
statuses), log activity by minute and today's totals (read from the log's
seq range since a moment, found by a binary search on the primary key, since
seq order is commit order), and the newest entries summarised."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from service.base.agh_states import ACTIVE, QUEUED
from service.store.agh.tables import agh_task_runs
from service.store.console.records import (
    AGH_TASK,
    EXECUTION,
    RUNTIME_SESSION,
    TRACER_SESSION,
    TRACER_TASK,
    Activity,
    Count,
    Running,
    Usage,
)
from service.store.console.sessions import NOT_MONITOR
from service.store.console.times import from_db, iso_millis
from service.store.executions.tables import executions
from service.store.tables import log_entries, sessions
from service.store.tracer.rule_tables import tracer_verdicts
from service.store.tracer.tables import tracer_tasks

RUNNING = "running"
MINUTES = 60
# Log types that record a failure, counted as today's errors.
ERROR_TYPES = (
    "execution.failed",
    "agent.failed",
    "tool_call.failed",
    "task_run.failed",
    "task_run.lease_expired",
)
RUNTIME_EVENT = "runtime.event"
TRACER_EVENT = "tracer.event.logged"
TOKEN_USAGE = "token.usage"


def running(conn: Connection, workspace: str) -> Running:
    def count(q: Any) -> int:
        return int(conn.execute(q).scalar() or 0)

    r = agh_task_runs.c
    return Running(
        runtime_sessions=count(
            select(func.count())
            .select_from(sessions)
            .where(sessions.c.workspace == workspace, sessions.c.status == RUNNING, NOT_MONITOR)
        ),
        tracer_tasks=count(
            select(func.count())
            .select_from(tracer_tasks)
            .where(tracer_tasks.c.workspace == workspace, tracer_tasks.c.status == RUNNING)
        ),
        executions=count(
            select(func.count())
            .select_from(executions)
            .where(executions.c.workspace == workspace, executions.c.status.in_((RUNNING, "pending")))
        ),
        leased_runs=count(
            select(func.count())
            .select_from(agh_task_runs)
            .where(r.workspace == workspace, r.status.in_(ACTIVE))
        ),
        queued_runs=count(
            select(func.count())
            .select_from(agh_task_runs)
            .where(r.workspace == workspace, r.status == QUEUED)
        ),
    )


def first_seq_since(conn: Connection, moment: datetime) -> int:
    """The lowest seq recorded at or after `moment` (one past the end when
    none): a binary search over the primary key, a few dozen point reads."""
    g = log_entries.c
    lo = int(conn.execute(select(func.min(g.seq))).scalar() or 0)
    hi = int(conn.execute(select(func.max(g.seq))).scalar() or 0) + 1
    probe = select(g.seq, g.recorded_at).where(g.seq >= bindparam("at")).order_by(g.seq).limit(1)
    while lo < hi:
        mid = (lo + hi) // 2
        row = conn.execute(probe, {"at": mid}).first()
        if row is None or (from_db(row.recorded_at) or moment) >= moment:
            hi = mid
        else:  # every entry up to row.seq is older
            lo = row.seq + 1
    return lo


def _minute_of(conn: Connection) -> Any:
    """The minute of an entry's recorded_at, as `YYYY-MM-DD HH:MM` text."""
    if conn.dialect.name == "postgresql":
        return func.to_char(
            func.date_trunc("minute", func.timezone("UTC", log_entries.c.recorded_at)), "YYYY-MM-DD HH24:MI"
        )
    return func.substr(log_entries.c.recorded_at, 1, 16)


def per_minute(conn: Connection, workspace: str, now: datetime) -> list[tuple[datetime, int]]:
    """Entries recorded per minute over the last MINUTES minutes, oldest first."""
    this_minute = now.replace(second=0, microsecond=0)
    start = this_minute - timedelta(minutes=MINUTES - 1)
    since = first_seq_since(conn, start)
    minute = _minute_of(conn).label("minute")
    counts = {
        r.minute: int(r.n)
        for r in conn.execute(
            select(minute, func.count().label("n"))
            .where(log_entries.c.workspace == workspace, log_entries.c.seq >= since)
            .group_by(minute)
        )
    }
    buckets = [start + timedelta(minutes=i) for i in range(MINUTES)]
    return [(b, counts.get(b.strftime("%Y-%m-%d %H:%M"), 0)) for b in buckets]


def errors_since(conn: Connection, workspace: str, since_seq: int) -> list[Count]:
    """Today's failures by log type (runtime events whose type names an error
    count as `runtime.error`)."""
    g = log_entries.c
    found: dict[str, int] = {}
    for r in conn.execute(
        select(g.type, func.count().label("n"))
        .where(g.workspace == workspace, g.seq >= since_seq, g.type.in_(ERROR_TYPES))
        .group_by(g.type)
    ):
        found[r.type] = int(r.n)
    runtime_errors = conn.execute(
        select(func.count()).where(
            g.workspace == workspace, g.seq >= since_seq, g.type == RUNTIME_EVENT, g.name.like("%error%")
        )
    ).scalar()
    if runtime_errors:
        found["runtime.error"] = int(runtime_errors)
    return [Count(name, n) for name, n in sorted(found.items())]


def verdicts_since(conn: Connection, workspace: str, since: datetime) -> dict[str, int]:
    v = tracer_verdicts.c
    return {
        r.status: int(r.n)
        for r in conn.execute(
            select(v.status, func.count().label("n"))
            .where(v.workspace == workspace, v.evaluated_at >= iso_millis(since))
            .group_by(v.status)
        )
    }


def usage_since(conn: Connection, workspace: str, since_seq: int) -> Usage:
    """Tokens and cost of today's `token.usage` events (the tracer's)."""
    g = log_entries.c
    usage = Usage(source="tracer")
    for (data,) in conn.execute(
        select(g.data).where(
            g.workspace == workspace, g.seq >= since_seq, g.type == TRACER_EVENT, g.name == TOKEN_USAGE
        )
    ):
        meta = (data or {}).get("metadata") or {}
        usage.input_tokens += _number(meta.get("inputTokens"))
        usage.output_tokens += _number(meta.get("outputTokens"))
        usage.cache_read_tokens += _number(meta.get("cacheReadTokens"))
        usage.cache_creation_tokens += _number(meta.get("cacheCreateTokens"))
        usage.cost_usd += (
            float(meta.get("costUsd") or 0) if isinstance(meta.get("costUsd"), int | float) else 0.0
        )
    return usage


def _number(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def start_of_day(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


# ---------------------------------------------------------------- recent activity


# The keys under which the families nest the record an entry is about.
_NESTED = ("session", "task", "execution", "agent", "tool_call", "run", "message", "rule", "channel", "event")


def _first_text(data: dict[str, Any], *keys: str) -> str:
    """The first non-empty text under `keys`, in the payload itself and then
    in the record it nests (`{"session": {...}}`, `{"task": {...}}`, ...)."""
    nested = [v for k in _NESTED if isinstance(v := data.get(k), dict)]
    for where in (data, *nested):
        for key in keys:
            value = where.get(key)
            if isinstance(value, str) and value:
                return value
    return ""


def _summary(r: Any) -> Activity:
    """What an entry concerns: the kind and id of the item it changes, and a
    short name, from its type and the common keys of the families' payloads."""
    data: dict[str, Any] = r.data if isinstance(r.data, dict) else {}
    kind, item_id = "log", ""
    family = r.type.split(".", 1)[0]
    if r.type == TRACER_EVENT:
        kind, item_id = TRACER_TASK, _first_text(data, "taskId")
    elif r.type.startswith("tracer.task."):
        kind, item_id = TRACER_TASK, _first_text(data, "taskId", "id")
    elif r.type.startswith("tracer.session."):
        kind, item_id = TRACER_SESSION, _first_text(data, "sessionId", "id")
    elif r.type.startswith("tracer.rule") or r.type.startswith("tracer.verdict"):
        kind, item_id = "rule", _first_text(data, "ruleId", "id")
    elif family == "session" or r.type == RUNTIME_EVENT:
        kind, item_id = RUNTIME_SESSION, r.session_id or _first_text(data, "session_id")
    elif family == "execution":
        kind, item_id = EXECUTION, _first_text(data, "execution_id", "id")
    elif family in ("agent", "tool_call"):
        kind, item_id = EXECUTION, _first_text(data, "execution_id")
    elif family in ("task", "task_run"):
        kind, item_id = AGH_TASK, _first_text(data, "task_id", "id")
    elif family == "channel":
        kind, item_id = "channel", _first_text(data, "channel_id", "channel", "id")
    name = _first_text(data, "title", "session_name", "name", "display_name", "tool_name") or r.name or r.type
    return Activity(
        seq=r.seq,
        type=r.type,
        kind=kind,
        id=item_id,
        name=name,
        session_id=r.session_id or "",
        time=from_db(r.recorded_at),
    )


def recent(conn: Connection, workspace: str, limit: int) -> list[Activity]:
    g = log_entries.c
    rows = conn.execute(
        select(g.seq, g.type, g.name, g.session_id, g.recorded_at, g.data)
        .where(g.workspace == workspace)
        .order_by(g.seq.desc())
        .limit(limit)
    )
    return [_summary(r) for r in rows]
