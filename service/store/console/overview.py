"""The console's overview: running work (counted on the families' indexed
statuses), log activity by minute and today's totals (read from the log's
seq range since a moment, found by a binary search on the primary key, since
seq order is commit order), and the newest entries summarised."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, text

from service.base.agh_states import ACTIVE, QUEUED
from service.store.agh.tables import agh_task_runs
from service.store.console.indexes import ERRORS, TOKEN_USAGE
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
from service.store.fastpath import Cursor, RawStatement, cursor_of
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


# The first entry at or after a position, with its time: a point read on the
# primary key, run on the driver's cursor (a search makes dozens).
_PROBE = RawStatement(text("SELECT seq, recorded_at FROM log_entries WHERE seq >= :at ORDER BY seq LIMIT 1"))
# Apart: SQLite answers min() and max() from the key's ends only one at a time.
_FIRST = select(func.min(log_entries.c.seq))
_LAST = select(func.max(log_entries.c.seq))


def _recorded(value: Any) -> datetime:
    """recorded_at as the driver returns it (SQLite: SQLAlchemy's UTC text)."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return from_db(value) or datetime.min.replace(tzinfo=UTC)


def _search(cur: Cursor, moment: datetime, lo: int, hi: int) -> tuple[int, datetime | None]:
    """(the lowest seq in [lo, hi) recorded at or after `moment`, or hi; its time)."""
    found: datetime | None = None
    while lo < hi:
        row = cur.one(_PROBE, {"at": (lo + hi) // 2})
        at = None if row is None else _recorded(row[1])
        if row is None or at is None or at >= moment:
            hi, found = (lo + hi) // 2, at
        else:  # every entry up to this one is older
            lo = int(row[0]) + 1
    return lo, found


def first_seq_since(conn: Connection, moment: datetime) -> int:
    """The lowest seq recorded at or after `moment` (one past the end when
    none): a binary search over the primary key, a few dozen point reads."""
    lo = int(conn.execute(_FIRST).scalar() or 0)
    hi = int(conn.execute(_LAST).scalar() or 0) + 1
    return _search(cursor_of(conn), moment, lo, hi)[0]


def per_minute(conn: Connection, workspace: str, now: datetime) -> list[tuple[datetime, int]]:
    """Entries recorded per minute over the last MINUTES minutes, oldest
    first: each minute's first seq by binary search (minutes without entries
    cost nothing: the next entry's time says which minutes it skips), then
    one count per minute on the (workspace, seq) index (no row is read)."""
    this_minute = now.replace(second=0, microsecond=0)
    starts = [this_minute - timedelta(minutes=MINUTES - 1 - i) for i in range(MINUTES)]
    cur = cursor_of(conn)
    end = int(conn.execute(_LAST).scalar() or 0) + 1
    lo = int(conn.execute(_FIRST).scalar() or 0)
    bounds: list[int] = []
    reached: datetime | None = None  # the time of the entry at bounds[-1]
    for moment in starts:
        if bounds and (bounds[-1] >= end or (reached is not None and reached >= moment)):
            bounds.append(bounds[-1])
            continue
        seq, reached = _search(cur, moment, bounds[-1] if bounds else lo, end)
        bounds.append(seq)
    g = log_entries.c
    count = select(func.count()).where(
        g.workspace == workspace, g.seq >= bindparam("lo"), g.seq < bindparam("hi")
    )
    out = []
    for moment, first, stop in zip(starts, bounds, [*bounds[1:], end], strict=True):
        n = conn.execute(count, {"lo": first, "hi": stop}).scalar() if stop > first else 0
        out.append((moment, int(n or 0)))
    return out


def errors_since(conn: Connection, workspace: str, since_seq: int) -> list[Count]:
    """Failures since a position by log type (runtime events whose type
    names an error count as `runtime.error`), on their partial index."""
    g = log_entries.c
    found: dict[str, int] = {}
    for r in conn.execute(
        select(g.type, func.count().label("n"))
        .where(g.workspace == workspace, g.seq >= since_seq, text(f"({ERRORS})"))
        .group_by(g.type)
    ):
        name = "runtime.error" if r.type == RUNTIME_EVENT else r.type
        found[name] = found.get(name, 0) + int(r.n)
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


def usage_today(conn: Connection, workspace: str, since_seq: int, day: datetime) -> Usage:
    """Today's tokens and cost from the tracer's `token.usage` events; the
    console's domain prefers OTLP telemetry's when it saw model requests today
    (service.domain.console.reads), since hooks report the same requests."""
    return usage_since(conn, workspace, since_seq)


def usage_since(conn: Connection, workspace: str, since_seq: int) -> Usage:
    """Tokens and cost of the tracer's `token.usage` events since a
    position, on their partial index."""
    g = log_entries.c
    usage = Usage(source="tracer")
    for (data,) in conn.execute(
        select(g.data).where(g.workspace == workspace, g.seq >= since_seq, text(f"({TOKEN_USAGE})"))
    ):
        meta = (data or {}).get("metadata") or {}
        usage.input_tokens += _number(meta.get("inputTokens"))
        usage.output_tokens += _number(meta.get("outputTokens"))
        usage.cache_read_tokens += _number(meta.get("cacheReadTokens"))
        usage.cache_creation_tokens += _number(meta.get("cacheCreateTokens"))
        cost = meta.get("costUsd")
        usage.cost_usd += float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else 0.0
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
