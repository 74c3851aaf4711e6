"""Queries on the Agent Tracer projections (service/store/tracer/tables.py).

Statements are built once at import. The ones every ingested event runs
(the timeline insert, the task lookup, the token and activity updates) go
straight to the driver's cursor (service.store.fastpath); the rest go through
SQLAlchemy Core. Every query is scoped to a workspace.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import orjson
from psycopg.types.json import Jsonb
from sqlalchemy import Connection, and_, bindparam, delete, func, insert, literal_column, select, update

from service.store.fastpath import RawStatement, driver_cursor
from service.store.log import Tx
from service.store.tables import log_entries
from service.store.tracer.rule_tables import tracer_enforcements, tracer_verdicts
from service.store.tracer.tables import (
    tracer_bindings,
    tracer_events,
    tracer_sessions,
    tracer_tasks,
    tracer_turns,
)

_WS: Any = bindparam("w_workspace")
_ID: Any = bindparam("w_id")


@dataclass
class TaskRecord:
    id: str
    title: str
    slug: str
    status: str
    task_kind: str
    origin: str
    workspace_path: str | None
    runtime_source: str | None
    parent_task_id: str | None
    parent_session_id: str | None
    background_task_id: str | None
    created_at: str
    updated_at: str
    last_session_started_at: str | None
    seq: int = 0


@dataclass
class SessionRecord:
    id: str
    task_id: str
    status: str
    started_at: str
    ended_at: str | None = None
    summary: str | None = None
    seq: int = 0


@dataclass
class BindingRecord:
    task_id: str
    monitor_session_id: str | None


@dataclass
class TurnRecord:
    id: str
    session_id: str
    task_id: str
    turn_index: int
    status: str
    started_at: str
    ended_at: str | None = None
    asked_text: str | None = None
    assistant_text: str | None = None
    aggregate_verdict: str | None = None
    rules_evaluated_count: int = 0
    seq: int = 0


@dataclass
class TokenTotals:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_create_tokens: int = 0
    cost_usd: float = 0.0
    token_events: int = 0

    def add(self, other: TokenTotals) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


TOKEN_COLUMNS = tuple(f.name for f in fields(TokenTotals))


def _columns(table: Any, record: type) -> list[Any]:
    return [table.c[f.name] for f in fields(record)]


_TASK_COLUMNS = _columns(tracer_tasks, TaskRecord)
_SESSION_COLUMNS = _columns(tracer_sessions, SessionRecord)
_TURN_COLUMNS = _columns(tracer_turns, TurnRecord)


def json_param(conn: Connection, data: Any) -> Any:
    """A JSON column value for the driver (SQLite takes text, psycopg Jsonb)."""
    return orjson.dumps(data).decode() if conn.dialect.name == "sqlite" else Jsonb(data)


def _where_id(table: Any) -> Any:
    return and_(table.c.workspace == _WS, table.c.id == _ID)


# ------------------------------------------------------------------- tasks

_TASK_GET = RawStatement(select(*_TASK_COLUMNS).where(_where_id(tracer_tasks)))
_TASK_UPDATE = update(tracer_tasks).where(_where_id(tracer_tasks))
_TASK_TOUCH = RawStatement(
    update(tracer_tasks).where(_where_id(tracer_tasks)).values(last_activity_at=bindparam("w_at"))
)
_TASK_ADD_TOKENS = RawStatement(
    update(tracer_tasks)
    .where(_where_id(tracer_tasks))
    .values({c: tracer_tasks.c[c] + bindparam(f"d_{c}") for c in TOKEN_COLUMNS})
)
_TASK_CHILDREN = (
    select(*_TASK_COLUMNS)
    .where(tracer_tasks.c.workspace == _WS, tracer_tasks.c.parent_task_id == _ID)
    .order_by(tracer_tasks.c.created_at, tracer_tasks.c.id)
)
_TASK_TOKENS = select(*(tracer_tasks.c[c] for c in TOKEN_COLUMNS)).where(_where_id(tracer_tasks))


def get_task(conn: Connection, workspace: str, task_id: str) -> TaskRecord | None:
    row = _TASK_GET.execute(
        driver_cursor(conn), conn.dialect, {"w_workspace": workspace, "w_id": task_id}
    ).fetchone()
    return TaskRecord(*row) if row else None


def insert_task(conn: Connection, workspace: str, task: TaskRecord) -> None:
    conn.execute(
        insert(tracer_tasks), {**asdict(task), "workspace": workspace, "last_activity_at": task.updated_at}
    )


def update_task(conn: Connection, workspace: str, task_id: str, **values: Any) -> None:
    """Set the given columns (the statement is compiled once per set of columns)."""
    conn.execute(_TASK_UPDATE, {**values, "w_workspace": workspace, "w_id": task_id})


def touch_tasks(tx: Tx, workspace: str, task_ids: Iterable[str], at: str) -> None:
    """Mark activity on tasks (what the stale-task reaper measures)."""
    rows = [{"w_workspace": workspace, "w_id": t, "w_at": at} for t in task_ids]
    if rows:
        _TASK_TOUCH.executemany(tx.cursor, tx.conn.dialect, rows)


def _token_rows(workspace: str, totals: Mapping[str, TokenTotals]) -> list[dict[str, Any]]:
    return [
        {"w_workspace": workspace, "w_id": key, **{f"d_{c}": getattr(t, c) for c in TOKEN_COLUMNS}}
        for key, t in totals.items()
    ]


def add_task_tokens(tx: Tx, workspace: str, totals: Mapping[str, TokenTotals]) -> None:
    if totals:
        _TASK_ADD_TOKENS.executemany(tx.cursor, tx.conn.dialect, _token_rows(workspace, totals))


def task_tokens(conn: Connection, workspace: str, task_id: str) -> TokenTotals:
    row = conn.execute(_TASK_TOKENS, {"w_workspace": workspace, "w_id": task_id}).one()
    return TokenTotals(*row)


def children(conn: Connection, workspace: str, task_id: str) -> list[TaskRecord]:
    rows = conn.execute(_TASK_CHILDREN, {"w_workspace": workspace, "w_id": task_id})
    return [TaskRecord(*r) for r in rows]


def list_tasks(
    conn: Connection,
    workspace: str,
    *,
    statuses: Sequence[str],
    runtime_source: str | None,
    text: str | None,
    before_seq: int | None,
    limit: int,
) -> list[TaskRecord]:
    """Newest first (by creation); `before_seq` is the `seq` of the last task
    of the previous page."""
    t = tracer_tasks.c
    q = select(*_TASK_COLUMNS).where(t.workspace == workspace)
    if statuses:
        q = q.where(t.status.in_(list(statuses)))
    if runtime_source is not None:
        q = q.where(t.runtime_source == runtime_source)
    if text:
        escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        q = q.where(func.lower(t.title).like(f"%{escaped}%", escape="\\"))
    if before_seq is not None:
        q = q.where(t.seq < before_seq)
    rows = conn.execute(q.order_by(t.seq.desc()).limit(limit))
    return [TaskRecord(*r) for r in rows]


_RECENT_TASKS = (
    select(*_TASK_COLUMNS)
    .where(tracer_tasks.c.workspace == _WS)
    .order_by(tracer_tasks.c.updated_at.desc(), tracer_tasks.c.id)
    .limit(bindparam("w_limit"))
)
_STATUS_COUNTS = (
    select(tracer_tasks.c.status, func.count())
    .where(tracer_tasks.c.workspace == _WS)
    .group_by(tracer_tasks.c.status)
)
_EVENT_COUNT = select(func.count()).select_from(tracer_events).where(tracer_events.c.workspace == _WS)


def recent_tasks(conn: Connection, workspace: str, limit: int) -> list[TaskRecord]:
    rows = conn.execute(_RECENT_TASKS, {"w_workspace": workspace, "w_limit": limit})
    return [TaskRecord(*r) for r in rows]


def status_counts(conn: Connection, workspace: str) -> dict[str, int]:
    return {s: int(n) for s, n in conn.execute(_STATUS_COUNTS, {"w_workspace": workspace})}


def event_count(conn: Connection, workspace: str) -> int:
    return int(conn.execute(_EVENT_COUNT, {"w_workspace": workspace}).scalar_one())


_STALE = (
    select(tracer_tasks.c.workspace, *_TASK_COLUMNS)
    .where(
        tracer_tasks.c.status == "running",
        tracer_tasks.c.last_activity_at < bindparam("w_cutoff"),
        ~select(tracer_sessions.c.id)
        .where(
            tracer_sessions.c.workspace == tracer_tasks.c.workspace,
            tracer_sessions.c.task_id == tracer_tasks.c.id,
            tracer_sessions.c.status == "running",
        )
        .exists(),
    )
    .order_by(tracer_tasks.c.last_activity_at)
    .limit(bindparam("w_limit"))
)


def stale_tasks(conn: Connection, cutoff: str, limit: int) -> list[tuple[str, TaskRecord]]:
    """Running tasks of any workspace with no running session and no activity since `cutoff`."""
    rows = conn.execute(_STALE, {"w_cutoff": cutoff, "w_limit": limit})
    return [(r[0], TaskRecord(*r[1:])) for r in rows]


# ---------------------------------------------------------------- sessions

_SESSION_GET = select(*_SESSION_COLUMNS).where(_where_id(tracer_sessions))
_SESSION_UPDATE = update(tracer_sessions).where(_where_id(tracer_sessions))
_SESSIONS_OF_TASK = (
    select(*_SESSION_COLUMNS, *(tracer_sessions.c[c] for c in TOKEN_COLUMNS))
    .where(tracer_sessions.c.workspace == _WS, tracer_sessions.c.task_id == _ID)
    .order_by(tracer_sessions.c.seq)
)
_LATEST_SESSION = (
    select(*_SESSION_COLUMNS)
    .where(tracer_sessions.c.workspace == _WS, tracer_sessions.c.task_id == _ID)
    .order_by(tracer_sessions.c.seq.desc())
    .limit(1)
)
_LATEST_RUNNING_SESSION = _LATEST_SESSION.where(tracer_sessions.c.status == "running")
_RUNNING_SESSION_COUNT = (
    select(func.count())
    .select_from(tracer_sessions)
    .where(
        tracer_sessions.c.workspace == _WS,
        tracer_sessions.c.task_id == _ID,
        tracer_sessions.c.status == "running",
    )
)
_SESSION_ADD_TOKENS = RawStatement(
    update(tracer_sessions)
    .where(_where_id(tracer_sessions))
    .values({c: tracer_sessions.c[c] + bindparam(f"d_{c}") for c in TOKEN_COLUMNS})
)


def get_session(conn: Connection, workspace: str, session_id: str) -> SessionRecord | None:
    row = conn.execute(_SESSION_GET, {"w_workspace": workspace, "w_id": session_id}).first()
    return SessionRecord(*row) if row else None


def insert_session(conn: Connection, workspace: str, session: SessionRecord) -> None:
    conn.execute(insert(tracer_sessions), {**asdict(session), "workspace": workspace})


def update_session(conn: Connection, workspace: str, session_id: str, **values: Any) -> None:
    conn.execute(_SESSION_UPDATE, {**values, "w_workspace": workspace, "w_id": session_id})


def latest_session(conn: Connection, workspace: str, task_id: str, *, running: bool) -> SessionRecord | None:
    stmt = _LATEST_RUNNING_SESSION if running else _LATEST_SESSION
    row = conn.execute(stmt, {"w_workspace": workspace, "w_id": task_id}).first()
    return SessionRecord(*row) if row else None


def running_session_count(conn: Connection, workspace: str, task_id: str) -> int:
    return int(conn.execute(_RUNNING_SESSION_COUNT, {"w_workspace": workspace, "w_id": task_id}).scalar_one())


def sessions_of_task(
    conn: Connection, workspace: str, task_id: str
) -> list[tuple[SessionRecord, TokenTotals]]:
    """Oldest first, each with its token totals."""
    n = len(_SESSION_COLUMNS)
    rows = conn.execute(_SESSIONS_OF_TASK, {"w_workspace": workspace, "w_id": task_id})
    return [(SessionRecord(*r[:n]), TokenTotals(*r[n:])) for r in rows]


def add_session_tokens(tx: Tx, workspace: str, totals: Mapping[str, TokenTotals]) -> None:
    """Add to sessions' totals (an unknown session id changes nothing)."""
    if totals:
        _SESSION_ADD_TOKENS.executemany(tx.cursor, tx.conn.dialect, _token_rows(workspace, totals))


# ---------------------------------------------------------------- bindings

_BINDING_KEY = and_(
    tracer_bindings.c.workspace == _WS,
    tracer_bindings.c.runtime_source == bindparam("w_source"),
    tracer_bindings.c.runtime_session_id == bindparam("w_runtime_session"),
)
_BINDING_GET = select(tracer_bindings.c.task_id, tracer_bindings.c.monitor_session_id).where(_BINDING_KEY)
_BINDING_UPDATE = update(tracer_bindings).where(_BINDING_KEY)
_BINDING_DELETE = delete(tracer_bindings).where(_BINDING_KEY)


def _binding_key(workspace: str, source: str, runtime_session_id: str) -> dict[str, str]:
    return {"w_workspace": workspace, "w_source": source, "w_runtime_session": runtime_session_id}


def get_binding(
    conn: Connection, workspace: str, source: str, runtime_session_id: str
) -> BindingRecord | None:
    row = conn.execute(_BINDING_GET, _binding_key(workspace, source, runtime_session_id)).first()
    return BindingRecord(*row) if row else None


def put_binding(
    conn: Connection,
    workspace: str,
    source: str,
    runtime_session_id: str,
    binding: BindingRecord,
    at: str,
) -> None:
    """Insert or replace the binding."""
    values = {"task_id": binding.task_id, "monitor_session_id": binding.monitor_session_id, "updated_at": at}
    changed = conn.execute(_BINDING_UPDATE, {**values, **_binding_key(workspace, source, runtime_session_id)})
    if changed.rowcount == 0:
        conn.execute(
            insert(tracer_bindings),
            {
                **values,
                "workspace": workspace,
                "runtime_source": source,
                "runtime_session_id": runtime_session_id,
            },
        )


def delete_binding(conn: Connection, workspace: str, source: str, runtime_session_id: str) -> None:
    conn.execute(_BINDING_DELETE, _binding_key(workspace, source, runtime_session_id))


# ------------------------------------------------------------------- turns

_OPEN_TURN = RawStatement(
    select(*_TURN_COLUMNS)
    .where(
        tracer_turns.c.workspace == _WS,
        tracer_turns.c.session_id == _ID,
        tracer_turns.c.status == literal_column("'open'"),
    )
    .order_by(tracer_turns.c.turn_index.desc())
    # Literals: the driver gets no parameters but the two above.
    .limit(literal_column("1"))
    .offset(literal_column("0"))
)
_TURN_COUNT = RawStatement(
    select(func.count())
    .select_from(tracer_turns)
    .where(tracer_turns.c.workspace == _WS, tracer_turns.c.session_id == _ID)
)
_TURN_INSERT = RawStatement(
    insert(tracer_turns).values(
        {c: bindparam(c) for c in ("workspace", *(f.name for f in fields(TurnRecord)))}
    )
)
_TURN_UPDATE = update(tracer_turns).where(_where_id(tracer_turns))
_TURN_EVENT_COUNTS = (
    select(tracer_events.c.turn_id, func.count())
    .where(tracer_events.c.workspace == _WS, tracer_events.c.task_id == _ID)
    .where(tracer_events.c.turn_id.is_not(None))
    .group_by(tracer_events.c.turn_id)
)
_TURNS_OF_TASK = (
    select(*_TURN_COLUMNS)
    .where(tracer_turns.c.workspace == _WS, tracer_turns.c.task_id == _ID)
    .order_by(tracer_turns.c.seq)
)
# An event's view: its override, else its log entry's data.
_VIEW = (tracer_events.c.data, log_entries.c.data)
_WITH_LOG = tracer_events.join(log_entries, log_entries.c.seq == tracer_events.c.seq)
_TURN_EVENTS = (
    select(*_VIEW)
    .select_from(_WITH_LOG)
    .where(tracer_events.c.workspace == _WS, tracer_events.c.turn_id == _ID)
    .order_by(tracer_events.c.seq)
)


# The turn statements every ingest runs go straight to the driver.
def open_turn(conn: Connection, workspace: str, session_id: str) -> TurnRecord | None:
    params = {"w_workspace": workspace, "w_id": session_id}
    row = _OPEN_TURN.execute(driver_cursor(conn), conn.dialect, params).fetchone()
    return TurnRecord(*row) if row else None


def turn_count(conn: Connection, workspace: str, session_id: str) -> int:
    params = {"w_workspace": workspace, "w_id": session_id}
    return int(_TURN_COUNT.execute(driver_cursor(conn), conn.dialect, params).fetchone()[0])


def insert_turn(conn: Connection, workspace: str, turn: TurnRecord) -> None:
    _TURN_INSERT.execute(driver_cursor(conn), conn.dialect, {**asdict(turn), "workspace": workspace})


def update_turn(conn: Connection, workspace: str, turn_id: str, **values: Any) -> None:
    conn.execute(_TURN_UPDATE, {**values, "w_workspace": workspace, "w_id": turn_id})


def turns_of_task(conn: Connection, workspace: str, task_id: str) -> list[tuple[TurnRecord, int]]:
    """The task's turns with their event counts, in the order they started."""
    params = {"w_workspace": workspace, "w_id": task_id}
    counts = {turn_id: int(n) for turn_id, n in conn.execute(_TURN_EVENT_COUNTS, params)}
    return [(TurnRecord(*r), counts.get(r[0], 0)) for r in conn.execute(_TURNS_OF_TASK, params)]


_LATEST_BINDING = (
    select(tracer_bindings.c.runtime_source, tracer_bindings.c.runtime_session_id)
    .where(tracer_bindings.c.workspace == _WS, tracer_bindings.c.task_id == _ID)
    .order_by(tracer_bindings.c.updated_at.desc())
    .limit(1)
)


def latest_binding(conn: Connection, workspace: str, task_id: str) -> tuple[str, str] | None:
    """(runtime source, runtime session id) most recently bound to the task."""
    row = conn.execute(_LATEST_BINDING, {"w_workspace": workspace, "w_id": task_id}).first()
    return (row[0], row[1]) if row else None


def turn_events(conn: Connection, workspace: str, turn_id: str) -> list[dict[str, Any]]:
    """The timeline views of a turn's events, in recording order (for rule evaluation)."""
    rows = conn.execute(_TURN_EVENTS, {"w_workspace": workspace, "w_id": turn_id})
    return [override or logged for override, logged in rows]


# ------------------------------------------------------------------ events

EVENT_INSERT = RawStatement(
    insert(tracer_events).values(
        {
            c: bindparam(c)
            for c in (
                "workspace",
                "id",
                "seq",
                "task_id",
                "session_id",
                "turn_id",
                "kind",
                "lane",
                "dedupe_key",
                "data",
            )
        }
    )
)
_EVENT_EXISTS = select(tracer_events.c.task_id).where(_where_id(tracer_events))
_EVENT_BY_DEDUPE = (
    select(tracer_events.c.id, *_VIEW)
    .select_from(_WITH_LOG)
    .where(tracer_events.c.workspace == _WS, tracer_events.c.dedupe_key == bindparam("w_key"))
)
_EVENT_UPDATE = update(tracer_events).where(_where_id(tracer_events))
_TIMELINE = (
    select(tracer_events.c.seq, *_VIEW)
    .select_from(_WITH_LOG)
    .where(
        tracer_events.c.workspace == _WS,
        tracer_events.c.task_id == _ID,
        tracer_events.c.seq > bindparam("w_after"),
    )
    .order_by(tracer_events.c.seq)
    .limit(bindparam("w_limit"))
)


def insert_events(tx: Tx, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert timeline rows (a `data` given already as a driver JSON value)."""
    if rows:
        EVENT_INSERT.executemany(tx.cursor, tx.conn.dialect, rows)


def event_exists(conn: Connection, workspace: str, event_id: str) -> bool:
    return conn.execute(_EVENT_EXISTS, {"w_workspace": workspace, "w_id": event_id}).first() is not None


def event_by_dedupe_key(conn: Connection, workspace: str, key: str) -> tuple[str, dict[str, Any]] | None:
    """(id, current view) of the event with this dedupe key."""
    row = conn.execute(_EVENT_BY_DEDUPE, {"w_workspace": workspace, "w_key": key}).first()
    return (row[0], row[1] or row[2]) if row else None


def override_event_view(conn: Connection, workspace: str, event_id: str, view: dict[str, Any]) -> None:
    """Replace the event's view (its log entry keeps the original)."""
    conn.execute(_EVENT_UPDATE, {"data": view, "w_workspace": workspace, "w_id": event_id})


def timeline(
    conn: Connection, workspace: str, task_id: str, after_seq: int, limit: int
) -> list[tuple[int, dict[str, Any]]]:
    rows = conn.execute(
        _TIMELINE, {"w_workspace": workspace, "w_id": task_id, "w_after": after_seq, "w_limit": limit}
    )
    return [(int(seq), override or logged) for seq, override, logged in rows]


_TIMELINE_TAIL = (
    select(tracer_events.c.seq, *_VIEW)
    .select_from(_WITH_LOG)
    .where(tracer_events.c.workspace == _WS, tracer_events.c.task_id == _ID)
    .order_by(tracer_events.c.seq.desc())
    .limit(bindparam("w_limit"))
)
_TASK_EVENT_COUNT = (
    select(func.count())
    .select_from(tracer_events)
    .where(tracer_events.c.workspace == _WS, tracer_events.c.task_id == _ID)
)


def timeline_tail(
    conn: Connection, workspace: str, task_id: str, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """The task's newest `limit` event views in recording order, and how many older ones there are."""
    key = {"w_workspace": workspace, "w_id": task_id}
    rows = conn.execute(_TIMELINE_TAIL, {**key, "w_limit": limit}).all()
    older = int(conn.execute(_TASK_EVENT_COUNT, key).scalar_one()) - len(rows) if len(rows) == limit else 0
    return [override or logged for _, override, logged in reversed(rows)], older


def timeline_views(
    conn: Connection, workspace: str, task_id: str, page: int = 200
) -> Iterator[dict[str, Any]]:
    """The task's event views in order, read a page at a time as consumed."""
    after = 0
    while rows := timeline(conn, workspace, task_id, after, page):
        yield from (view for _, view in rows)
        if len(rows) < page:
            return
        after = rows[-1][0]


# --------------------------------------------------------- session deletion

_SESSION_EVENT_VIEWS = select(log_entries.c.data).where(
    log_entries.c.workspace == _WS,
    log_entries.c.session_id == _ID,
    log_entries.c.type == bindparam("w_type"),
)
_DELETE_EVENTS = delete(tracer_events).where(
    tracer_events.c.workspace == _WS, tracer_events.c.id.in_(bindparam("w_ids", expanding=True))
)
_DELETE_TURNS = delete(tracer_turns).where(tracer_turns.c.workspace == _WS, tracer_turns.c.session_id == _ID)
_DELETE_SESSION = delete(tracer_sessions).where(_where_id(tracer_sessions))
_UNBIND_SESSION = (
    update(tracer_bindings)
    .where(tracer_bindings.c.workspace == _WS, tracer_bindings.c.monitor_session_id == _ID)
    .values(monitor_session_id=None)
)
_IDS_PER_DELETE = 500  # well under SQLite's limit on parameters


def session_event_views(conn: Connection, workspace: str, session_id: str, entry_type: str) -> list[Any]:
    """The logged views of a session's timeline events (found through the
    log's session index: the events table has none by session)."""
    params = {"w_workspace": workspace, "w_id": session_id, "w_type": entry_type}
    return [data for (data,) in conn.execute(_SESSION_EVENT_VIEWS, params)]


def delete_session_rows(conn: Connection, workspace: str, session_id: str, event_ids: Sequence[str]) -> None:
    """Delete a monitor session, its turns and the events `event_ids`; the
    bindings that pointed at it become historical."""
    key = {"w_workspace": workspace, "w_id": session_id}
    for start in range(0, len(event_ids), _IDS_PER_DELETE):
        ids = list(event_ids[start : start + _IDS_PER_DELETE])
        conn.execute(_DELETE_EVENTS, {"w_workspace": workspace, "w_ids": ids})
    conn.execute(_DELETE_TURNS, key)
    conn.execute(_DELETE_SESSION, key)
    conn.execute(_UNBIND_SESSION, key)


# ------------------------------------------------------------------ retention


def forget_range(tx: Tx, workspace: str, after: int, upto: int) -> None:
    """Remove the timeline events of the log entries `after < seq <= upto`
    (retention), with the rule enforcements they matched and the verdicts of
    their turns. Tasks, turns and their totals stay."""
    in_range = (
        tracer_events.c.workspace == workspace,
        tracer_events.c.seq > after,
        tracer_events.c.seq <= upto,
    )
    rows = tx.conn.execute(select(tracer_events.c.id, tracer_events.c.turn_id).where(*in_range)).all()
    if not rows:
        return
    event_ids = [r[0] for r in rows]
    turn_ids = sorted({r[1] for r in rows if r[1] is not None})
    for start in range(0, len(event_ids), 500):
        tx.conn.execute(
            delete(tracer_enforcements).where(
                tracer_enforcements.c.workspace == workspace,
                tracer_enforcements.c.event_id.in_(event_ids[start : start + 500]),
            )
        )
    for start in range(0, len(turn_ids), 500):
        tx.conn.execute(
            delete(tracer_verdicts).where(
                tracer_verdicts.c.workspace == workspace,
                tracer_verdicts.c.turn_id.in_(turn_ids[start : start + 500]),
            )
        )
    tx.conn.execute(delete(tracer_events).where(*in_range))
