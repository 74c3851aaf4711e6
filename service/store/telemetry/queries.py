"""The telemetry family's SQL: usage upserts in the write path, usage and
record reads.

Writes add to the usage rows with one `INSERT … ON CONFLICT DO UPDATE`
executemany per table (each column `col = col + excluded.col`), built once per
dialect: a batch of 512 records touches a few sessions and days, so it costs
two statements whatever its size. Reads combine the event and metric columns
per row, taking the larger (see tables.py), so a session reporting both is
counted once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, func, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite

from service.store.fastpath import RawStatement, cursor_of
from service.store.log import Db, LogEntry, entry_from_row
from service.store.tables import log_entries
from service.store.telemetry.tables import (
    COUNTER_FLOATS,
    COUNTER_INTS,
    USAGE_FLOATS,
    USAGE_INTS,
    TelemetryDayRow,
    TelemetryMetricStreamRow,
    TelemetrySessionRow,
)

sessions_t = TelemetrySessionRow.__table__  # type: ignore[attr-defined]
days_t = TelemetryDayRow.__table__  # type: ignore[attr-defined]
streams_t = TelemetryMetricStreamRow.__table__  # type: ignore[attr-defined]

USAGE_COLUMNS = (*USAGE_INTS, *USAGE_FLOATS)
SESSION_ADDED = (*USAGE_COLUMNS, *COUNTER_INTS, *COUNTER_FLOATS)
# (reported figure, event column, metric column): reads take the larger.
COMBINED = (
    ("cost_usd", "cost_usd", "metric_cost_usd"),
    ("input_tokens", "input_tokens", "metric_input_tokens"),
    ("output_tokens", "output_tokens", "metric_output_tokens"),
    ("cache_read_tokens", "cache_read_tokens", "metric_cache_read_tokens"),
    ("cache_creation_tokens", "cache_creation_tokens", "metric_cache_creation_tokens"),
)


def _upsert(
    table: Any, keys: Sequence[str], added: Sequence[str], extra: Mapping[str, Any]
) -> dict[str, RawStatement]:
    """`INSERT … ON CONFLICT (keys) DO UPDATE` adding `added`, per dialect."""
    columns = [*keys, *added, *extra]
    out: dict[str, RawStatement] = {}
    for name, insert in (("sqlite", sqlite.insert), ("postgresql", postgresql.insert)):
        stmt = insert(table).values({c: bindparam(c) for c in columns})
        new = stmt.excluded
        sets: dict[str, Any] = {c: table.c[c] + new[c] for c in added}
        sets.update({c: make(table.c[c], new[c]) for c, make in extra.items()})
        out[name] = RawStatement(stmt.on_conflict_do_update(index_elements=list(keys), set_=sets))
    return out


def _earlier(old: Any, new: Any) -> Any:
    return case((new < old, new), else_=old)


def _later(old: Any, new: Any) -> Any:
    return case((new > old, new), else_=old)


_SESSION_UPSERT = _upsert(
    sessions_t,
    ("workspace", "session_id"),
    SESSION_ADDED,
    {
        "runtime": lambda old, new: case((old == literal_column("'other'"), new), else_=old),
        "model": lambda old, new: func.coalesce(new, old),
        "first_seen_at": _earlier,
        "last_seen_at": _later,
    },
)
_DAY_UPSERT = _upsert(days_t, ("workspace", "day", "session_id"), USAGE_COLUMNS, {})
_STREAM_UPSERT = _upsert(
    streams_t,
    ("workspace", "stream"),
    (),
    {
        "start_time_unix_nano": lambda old, new: new,
        "time_unix_nano": lambda old, new: new,
        "value": lambda old, new: new,
    },
)


@dataclass
class SessionAdd:
    """What a batch adds to one session."""

    session_id: str
    runtime: str
    first_seen_at: str
    last_seen_at: str
    model: str | None
    added: dict[str, float]


def add_to_sessions(db: Db, workspace: str, adds: Iterable[SessionAdd]) -> None:
    cur = cursor_of(db)
    rows = [
        {
            "workspace": workspace,
            "session_id": a.session_id,
            "runtime": a.runtime,
            "model": a.model,
            "first_seen_at": a.first_seen_at,
            "last_seen_at": a.last_seen_at,
            **{c: a.added.get(c, 0) for c in SESSION_ADDED},
        }
        for a in adds
    ]
    if rows:
        _SESSION_UPSERT["sqlite" if cur.sqlite else "postgresql"].executemany(cur.cursor, _dialect(db), rows)


def add_to_days(db: Db, workspace: str, adds: Mapping[tuple[str, str], Mapping[str, float]]) -> None:
    """`adds`: (day, session id) -> what to add."""
    cur = cursor_of(db)
    rows = [
        {
            "workspace": workspace,
            "day": day,
            "session_id": session_id,
            **{c: add.get(c, 0) for c in USAGE_COLUMNS},
        }
        for (day, session_id), add in adds.items()
    ]
    if rows:
        _DAY_UPSERT["sqlite" if cur.sqlite else "postgresql"].executemany(cur.cursor, _dialect(db), rows)


def stream_points(db: Db, workspace: str, streams: Sequence[str]) -> dict[str, tuple[int, int, float]]:
    """The last (start time, time, value) of each cumulative stream known."""
    if not streams:
        return {}
    found: dict[str, tuple[int, int, float]] = {}
    conn = db if isinstance(db, Connection) else db.conn
    for start in range(0, len(streams), 500):
        rows = conn.execute(
            _STREAMS_QUERY, {"workspace": workspace, "streams": list(streams[start : start + 500])}
        )
        for stream, start_time, time, value in rows:
            found[stream] = (int(start_time), int(time), float(value))
    return found


_STREAMS_QUERY = select(
    streams_t.c.stream, streams_t.c.start_time_unix_nano, streams_t.c.time_unix_nano, streams_t.c.value
).where(
    streams_t.c.workspace == bindparam("workspace"),
    streams_t.c.stream.in_(bindparam("streams", expanding=True)),
)


def save_streams(db: Db, workspace: str, points: Mapping[str, tuple[int, int, float]]) -> None:
    cur = cursor_of(db)
    rows = [
        {
            "workspace": workspace,
            "stream": s,
            "start_time_unix_nano": start,
            "time_unix_nano": time,
            "value": value,
        }
        for s, (start, time, value) in points.items()
    ]
    if rows:
        _STREAM_UPSERT["sqlite" if cur.sqlite else "postgresql"].executemany(cur.cursor, _dialect(db), rows)


def _dialect(db: Db) -> Any:
    return (db if isinstance(db, Connection) else db.conn).dialect


# ------------------------------------------------------------------- reads


def _combined(table: Any, aggregate: bool) -> list[Any]:
    """The reported usage columns: per row the larger of event and metric."""
    out: list[Any] = []
    for name, event, metric in COMBINED:
        larger = case((table.c[event] >= table.c[metric], table.c[event]), else_=table.c[metric])
        out.append((func.coalesce(func.sum(larger), 0) if aggregate else larger).label(name))
    for name in ("api_requests", "api_errors"):
        out.append((func.coalesce(func.sum(table.c[name]), 0) if aggregate else table.c[name]).label(name))
    return out


@dataclass(frozen=True)
class UsageRow:
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    api_requests: int = 0
    api_errors: int = 0


@dataclass(frozen=True)
class SessionRow:
    session_id: str
    runtime: str
    model: str | None
    first_seen_at: str
    last_seen_at: str
    usage: UsageRow
    counters: dict[str, float]


_USAGE_FIELDS = tuple(UsageRow.__dataclass_fields__)
_COUNTERS = (*COUNTER_INTS, *COUNTER_FLOATS)
_SESSION_COLUMNS = [
    sessions_t.c.session_id,
    sessions_t.c.runtime,
    sessions_t.c.model,
    sessions_t.c.first_seen_at,
    sessions_t.c.last_seen_at,
    *_combined(sessions_t, aggregate=False),
    *(sessions_t.c[c] for c in _COUNTERS),
]


def _usage(values: Sequence[Any]) -> UsageRow:
    return UsageRow(float(values[0] or 0), *(int(v or 0) for v in values[1:]))


def _session(row: Sequence[Any]) -> SessionRow:
    n = len(_USAGE_FIELDS)
    usage = _usage(row[5 : 5 + n])
    counters = {c: row[5 + n + i] for i, c in enumerate(_COUNTERS)}
    return SessionRow(row[0], row[1], row[2], row[3], row[4], usage, counters)


def sessions(conn: Connection, workspace: str, session_ids: Sequence[str]) -> dict[str, SessionRow]:
    """The telemetry sessions among `session_ids` (runtime session ids)."""
    found: dict[str, SessionRow] = {}
    for start in range(0, len(session_ids), 500):
        rows = conn.execute(
            select(*_SESSION_COLUMNS).where(
                sessions_t.c.workspace == workspace,
                sessions_t.c.session_id.in_(list(session_ids[start : start + 500])),
            )
        )
        for row in rows:
            found[row[0]] = _session(row)
    return found


def usage_total(conn: Connection, workspace: str) -> tuple[UsageRow, int]:
    """The workspace's usage over every session, and how many sessions."""
    row = conn.execute(
        select(*_combined(sessions_t, aggregate=True), func.count()).where(
            sessions_t.c.workspace == workspace
        )
    ).one()
    return _usage(row[:-1]), int(row[-1])


def usage_on(conn: Connection, workspace: str, day: str) -> UsageRow:
    """The workspace's usage on one UTC day (`YYYY-MM-DD`)."""
    row = conn.execute(
        select(*_combined(days_t, aggregate=True)).where(days_t.c.workspace == workspace, days_t.c.day == day)
    ).one()
    return _usage(row)


def records(
    conn: Connection,
    workspace: str,
    types: Sequence[str],
    *,
    after_seq: int,
    limit: int,
    session_id: str | None = None,
) -> list[LogEntry]:
    """Telemetry log entries of `types` after `after_seq`, oldest first."""
    where = [
        log_entries.c.workspace == workspace,
        log_entries.c.seq > after_seq,
        log_entries.c.type.in_(types),
    ]
    if session_id:
        where.append(log_entries.c.session_id == session_id)
    rows = conn.execute(select(log_entries).where(and_(*where)).order_by(log_entries.c.seq).limit(limit))
    return [entry_from_row(r) for r in rows]
