"""Queries on the AGH projections (service/store/agh/tables.py).

Records mirror the columns (times in microseconds since the epoch, JSON
columns decoded): they are the rows as the store builds them, so they live
here; the states they are in are service.base.agh_states, and the decisions
on them the domain's (service.domain.agh.states). Every statement is built once and run on the driver's
cursor: claims, heartbeats and completions are the hot path of the queue.

The claim's candidate query is the one piece of dialect-specific SQL: on
PostgreSQL it locks the row it picks with FOR UPDATE SKIP LOCKED (SQLite,
with its single writer, compiles the same statement without the clause).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Text,
    and_,
    bindparam,
    delete,
    desc,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection

from service.base.agh_states import ACTIVE, QUEUED, UNCLAIMABLE_TASK
from service.store.agh.tables import (
    HELD,
    QUEUED_ONLY,
    agh_session_lineage,
    agh_souls,
    agh_task_events,
    agh_task_runs,
    agh_tasks,
)
from service.store.fastpath import Cursor, Projection, RawStatement, cursor_of
from service.store.log import Db, Tx
from service.store.sessions import SessionRecord
from service.store.tables import log_entries, sessions


@dataclass
class TaskRecord:
    id: str
    number: int
    title: str
    description: str
    scope: str
    scope_workspace: str | None
    priority: str
    status: str
    max_attempts: int
    paused: bool
    metadata: dict[str, Any] | None
    latest_event_seq: int
    created_at: int
    updated_at: int

    def __post_init__(self) -> None:
        self.paused = bool(self.paused)  # SQLite's driver reads a boolean as 0 or 1

    @property
    def identifier(self) -> str:
        return f"TASK-{self.number}"


@dataclass
class RunRecord:
    id: str
    task_id: str
    attempt: int
    status: str
    priority_rank: int
    previous_run_id: str | None
    failure_kind: str | None
    session_id: str | None
    claimed_by_kind: str | None
    claimed_by_ref: str | None
    claim_token_hash: str | None
    origin_kind: str
    origin_ref: str
    queued_at: int
    claimed_at: int | None = None
    started_at: int | None = None
    ended_at: int | None = None
    heartbeat_at: int | None = None
    lease_until: int | None = None
    error: str | None = None
    metadata: Any = None
    result: Any = None


@dataclass
class LineageRecord:
    session_id: str
    parent_session_id: str | None
    root_session_id: str | None
    spawn_depth: int
    spawn_role: str | None
    ttl_expires_at: int | None
    auto_stop_on_parent: bool
    max_children: int
    max_depth: int
    ttl_seconds: int
    max_active_per_workspace: int
    permissions: dict[str, list[str]]
    provider: str
    created_at: int


@dataclass
class SoulRecord:
    agent_name: str
    body: str
    revision_id: str
    digest: str
    created_at: int


TASKS = Projection(
    agh_tasks,
    TaskRecord,
    json=("metadata",),
    mutable=("status", "paused", "latest_event_seq", "updated_at"),
    extra=(),
)
RUNS = Projection(
    agh_task_runs,
    RunRecord,
    json=("metadata", "result"),
    mutable=(
        "status",
        "failure_kind",
        "session_id",
        "claimed_by_kind",
        "claimed_by_ref",
        "claim_token_hash",
        "claimed_at",
        "started_at",
        "ended_at",
        "heartbeat_at",
        "lease_until",
        "error",
        "metadata",
        "result",
    ),
    extra=(),
)

_WS: Any = bindparam("workspace")


def _lit(*values: str) -> Any:
    """Literal strings in the SQL text: a RawStatement passes only the
    parameters it is given, so constants cannot be bound parameters."""
    found: list[Any] = [literal_column(f"'{v}'") for v in values]
    return found[0] if len(found) == 1 else found


_LIMIT: Any = bindparam("limit")
_NO_OFFSET: Any = literal_column("0")

_runs, _tasks = agh_task_runs, agh_tasks
_RUN_COLUMNS = [_runs.c[n] for n in RUNS.fields]
_TASK_COLUMNS = [_tasks.c[n] for n in TASKS.fields]
_RUN_JSON = frozenset(("metadata", "result"))
_TASK_OF_RUN = (_tasks.c.workspace == _runs.c.workspace) & (_tasks.c.id == _runs.c.task_id)


def _candidates(*, workspace_scope_only: bool, exclude_leased: bool) -> Any:
    """Queued runs a claim may take, in claim order: priority (highest first),
    then the oldest, then the id."""
    where = [
        _runs.c.workspace == _WS,
        _runs.c.status == _lit(QUEUED),
        _runs.c.priority_rank >= bindparam("priority_min"),
        _tasks.c.paused.is_(False),
        _tasks.c.status.not_in(_lit(*UNCLAIMABLE_TASK)),
    ]
    if workspace_scope_only:
        where.append(_tasks.c.scope == _lit("workspace"))
    if exclude_leased:
        # Nothing for a session that already holds a lease (the caller then
        # asks `active_lease` which of the two it was).
        held = _runs.alias("held")
        where.append(
            ~exists().where(
                held.c.workspace == _WS,
                held.c.session_id == bindparam("session_id"),
                held.c.status.in_(_lit(*ACTIVE)),
                held.c.lease_until > bindparam("now"),
            )
        )
    return (
        select(*_RUN_COLUMNS, *_TASK_COLUMNS)
        .select_from(_runs.join(_tasks, _TASK_OF_RUN))
        .where(*where)
        .order_by(_runs.c.priority_rank.desc(), _runs.c.queued_at, _runs.c.id)
        .limit(literal_column("1"))
        .offset(_NO_OFFSET)
    )


# (workspace_scope_only) -> statement; the claim locks its pick, the
# long-poll's look-ahead only reads.
_CLAIM = {
    only: RawStatement(
        _candidates(workspace_scope_only=only, exclude_leased=True).with_for_update(
            skip_locked=True, of=_runs
        )
    )
    for only in (False, True)
}
_PEEK = {
    only: RawStatement(_candidates(workspace_scope_only=only, exclude_leased=False)) for only in (False, True)
}
# The caller's session and the run it names, with its task, in one statement:
# what every lease operation starts from (no row: the session is unknown).
_SESSION_FIELDS = tuple(SessionRecord.__dataclass_fields__)
_SESSION_AND_RUN = RawStatement(
    select(*(sessions.c[n] for n in _SESSION_FIELDS), *_RUN_COLUMNS, *_TASK_COLUMNS)
    .select_from(
        sessions.outerjoin(
            _runs, (_runs.c.workspace == sessions.c.workspace) & (_runs.c.id == bindparam("id"))
        ).outerjoin(_tasks, _TASK_OF_RUN)
    )
    .where(sessions.c.workspace == _WS, sessions.c.session_id == bindparam("session_id"))
)
# A run with its task: what every lease operation starts from.
_RUN_WITH_TASK = RawStatement(
    select(*_RUN_COLUMNS, *_TASK_COLUMNS).select_from(_runs.join(_tasks, _TASK_OF_RUN)).where(RUNS.by_id)
)
# A heartbeat changes only these two columns.
_EXTEND_LEASE = RawStatement(
    update(_runs)
    .where(RUNS.by_id)
    .values(heartbeat_at=bindparam("v_heartbeat_at"), lease_until=bindparam("v_lease_until"))
)

_ACTIVE_LEASE = RUNS.select(
    (_runs.c.workspace == _WS)
    & (_runs.c.session_id == bindparam("session_id"))
    & _runs.c.status.in_(_lit(*ACTIVE))
    & (_runs.c.lease_until > bindparam("now")),
    _runs.c.lease_until.desc(),
)
_RUNS_OF_TASK = RUNS.select(
    (_runs.c.workspace == _WS) & (_runs.c.task_id == bindparam("task_id")),
    _runs.c.attempt,
    _runs.c.queued_at,
    _runs.c.id,
)
# The caller's most relevant run for its context: running > starting >
# claimed > queued, then the most recent activity.
_SESSION_RUNS = RUNS.select(
    (_runs.c.workspace == _WS)
    & (_runs.c.session_id == bindparam("session_id"))
    & _runs.c.status.in_(_lit(*ACTIVE)),
    desc(func.coalesce(_runs.c.heartbeat_at, _runs.c.claimed_at, _runs.c.queued_at)),
    limit=True,
)
_EXPIRED = RawStatement(
    select(_runs.c.workspace, _runs.c.id)
    .where(_runs.c.status.in_(_lit(*ACTIVE)), _runs.c.lease_until <= bindparam("now"))
    .order_by(_runs.c.lease_until, _runs.c.id)
    .limit(_LIMIT)
    .offset(_NO_OFFSET)
)
_MAX_NUMBER = RawStatement(select(func.max(_tasks.c.number)).where(_tasks.c.workspace == _WS))
_FILTER: Any = bindparam("status", type_=Text)
_PRIORITY: Any = bindparam("priority", type_=Text)
_SCOPE: Any = bindparam("scope", type_=Text)
_LIST_TASKS = RawStatement(
    select(*(_tasks.c[n] for n in TASKS.fields))
    .where(
        _tasks.c.workspace == _WS,
        _tasks.c.number < bindparam("before"),
        or_(_lit("") == _FILTER, _tasks.c.status == _FILTER),
        or_(_lit("") == _PRIORITY, _tasks.c.priority == _PRIORITY),
        or_(_lit("") == _SCOPE, _tasks.c.scope == _SCOPE),
    )
    .order_by(_tasks.c.number.desc())
    .limit(_LIMIT)
    .offset(_NO_OFFSET)
)
_NOTE_EVENT = RawStatement(
    insert(agh_task_events).values(workspace=_WS, task_id=bindparam("task_id"), seq=bindparam("seq"))
)
_RECENT_EVENTS = RawStatement(
    select(
        log_entries.c.seq,
        log_entries.c.event_id,
        log_entries.c.type,
        log_entries.c.recorded_at,
        log_entries.c.data,
    )
    .select_from(agh_task_events.join(log_entries, log_entries.c.seq == agh_task_events.c.seq))
    .where(agh_task_events.c.workspace == _WS, agh_task_events.c.task_id == bindparam("task_id"))
    .order_by(agh_task_events.c.seq.desc())
    .limit(_LIMIT)
    .offset(_NO_OFFSET)
)

_LINEAGE_FIELDS = tuple(LineageRecord.__dataclass_fields__)
_lineage = agh_session_lineage
_LINEAGE_KEY = (_lineage.c.workspace == _WS) & (_lineage.c.session_id == bindparam("session_id"))
_GET_LINEAGE = RawStatement(select(*(_lineage.c[n] for n in _LINEAGE_FIELDS)).where(_LINEAGE_KEY))
_INSERT_LINEAGE = RawStatement(
    insert(_lineage).values({n: bindparam(n) for n in ("workspace", *_LINEAGE_FIELDS)})
)
_POLICY_COLUMNS = ("max_children", "max_depth", "max_active_per_workspace", "permissions")
_SET_POLICY = RawStatement(
    update(_lineage).where(_LINEAGE_KEY).values({n: bindparam(f"v_{n}") for n in _POLICY_COLUMNS})
)
_LIVE_SESSION = sessions.c.status == _lit("running")
_SESSION_JOIN = (sessions.c.workspace == _lineage.c.workspace) & (
    sessions.c.session_id == _lineage.c.session_id
)
_LIVE_CHILDREN = RawStatement(
    select(func.count())
    .select_from(_lineage.join(sessions, _SESSION_JOIN))
    .where(_lineage.c.workspace == _WS, _lineage.c.parent_session_id == bindparam("parent"), _LIVE_SESSION)
)
_LIVE_IN_TREE = RawStatement(
    select(func.count())
    .select_from(_lineage.join(sessions, _SESSION_JOIN))
    .where(_lineage.c.workspace == _WS, _lineage.c.root_session_id == bindparam("root"), _LIVE_SESSION)
)
# Running spawned sessions that must stop: their time to live has ended, or
# they follow a parent that is no longer running.
_parent = sessions.alias("parent")
_TO_STOP = RawStatement(
    select(_lineage.c.workspace, _lineage.c.session_id, _lineage.c.ttl_expires_at)
    .select_from(
        _lineage.join(sessions, _SESSION_JOIN).outerjoin(
            _parent,
            (_parent.c.workspace == _lineage.c.workspace)
            & (_parent.c.session_id == _lineage.c.parent_session_id),
        )
    )
    .where(
        _LIVE_SESSION,
        or_(
            _lineage.c.ttl_expires_at <= bindparam("now"),
            and_(
                _lineage.c.auto_stop_on_parent.is_(True),
                _lineage.c.parent_session_id.is_not(None),
                or_(_parent.c.session_id.is_(None), _parent.c.status != _lit("running")),
            ),
        ),
    )
    .order_by(_lineage.c.workspace, _lineage.c.session_id)
    .limit(_LIMIT)
    .offset(_NO_OFFSET)
)
_SESSION_UPDATED_AT = RawStatement(
    select(sessions.c.updated_at).where(
        sessions.c.workspace == _WS, sessions.c.session_id == bindparam("session_id")
    )
)

_soul_key = (agh_souls.c.workspace == _WS) & (agh_souls.c.agent_name == bindparam("agent_name"))
_SOUL_FIELDS = tuple(SoulRecord.__dataclass_fields__)
_GET_SOUL = RawStatement(select(*(agh_souls.c[n] for n in _SOUL_FIELDS)).where(_soul_key))
_DELETE_SOUL = RawStatement(delete(agh_souls).where(_soul_key))
_INSERT_SOUL = RawStatement(insert(agh_souls).values({n: bindparam(n) for n in ("workspace", *_SOUL_FIELDS)}))


def _run_and_task(cur: Cursor, row: Sequence[Any]) -> tuple[RunRecord, TaskRecord]:
    """A row of run columns then task columns, as records."""
    n = _RUN_WIDTH
    values = list(row)
    for i in _RUN_JSON_AT:
        values[i] = cur.json_out(values[i])
    values[n + _TASK_METADATA] = cur.json_out(values[n + _TASK_METADATA])
    return RunRecord(*values[:n]), TaskRecord(*values[n:])


_TASK_METADATA = TASKS.fields.index("metadata")
_RUN_WIDTH = len(RUNS.fields)
_RUN_JSON_AT = tuple(i for i, f in enumerate(RUNS.fields) if f in _RUN_JSON)


def session_and_run(
    db: Db, workspace: str, session_id: str, run_id: str
) -> tuple[SessionRecord | None, tuple[RunRecord, TaskRecord] | None]:
    """The session (None if unknown) and the run `run_id` with its task (None if unknown)."""
    cur = cursor_of(db)
    row = cur.one(_SESSION_AND_RUN, {"workspace": workspace, "session_id": session_id, "id": run_id})
    if row is None:
        return None, None
    n = len(_SESSION_FIELDS)
    session = SessionRecord(*row[:n])
    return session, None if row[n] is None else _run_and_task(cur, row[n:])


def run_with_task(db: Db, workspace: str, run_id: str) -> tuple[RunRecord, TaskRecord] | None:
    cur = cursor_of(db)
    row = cur.one(_RUN_WITH_TASK, {"workspace": workspace, "id": run_id})
    return None if row is None else _run_and_task(cur, row)


def extend_lease(db: Db, workspace: str, run: RunRecord) -> None:
    """Save a heartbeat: the run's `heartbeat_at` and `lease_until`."""
    cur = cursor_of(db)
    params = {"v_heartbeat_at": run.heartbeat_at, "v_lease_until": run.lease_until}
    cur.run(_EXTEND_LEASE, {**params, "workspace": workspace, "id": run.id})


def next_queued(
    db: Db, workspace: str, session_id: str, now: int, priority_min: int, *, workspace_scope_only: bool
) -> tuple[RunRecord, TaskRecord] | None:
    """The run a claim takes, with its task, unless `session_id` holds an
    active lease; locked on PostgreSQL (other claimers skip it)."""
    cur = cursor_of(db)
    params = {"workspace": workspace, "priority_min": priority_min, "session_id": session_id, "now": now}
    row = cur.one(_CLAIM[workspace_scope_only], params)
    return None if row is None else _run_and_task(cur, row)


def any_queued(db: Db, workspace: str, priority_min: int, *, workspace_scope_only: bool) -> bool:
    """Whether a claim would find a run now (a read: what a waiting claimer
    checks before it asks the writer to claim)."""
    cur = cursor_of(db)
    params = {"workspace": workspace, "priority_min": priority_min}
    return cur.one(_PEEK[workspace_scope_only], params) is not None


def active_lease(db: Db, workspace: str, session_id: str, now: int) -> RunRecord | None:
    """The run on which `session_id` holds an unexpired lease, if any."""
    found = RUNS.read(db, _ACTIVE_LEASE, {"workspace": workspace, "session_id": session_id, "now": now})
    return found[0] if found else None


def runs_of_task(db: Db, workspace: str, task_id: str) -> list[RunRecord]:
    """A task's runs, oldest attempt first."""
    return RUNS.read(db, _RUNS_OF_TASK, {"workspace": workspace, "task_id": task_id})


def runs_of_session(db: Db, workspace: str, session_id: str, limit: int) -> list[RunRecord]:
    """The runs a session holds (their leases may have ended), the most recently active first."""
    params = {"workspace": workspace, "session_id": session_id, "limit": limit, "offset": 0}
    return RUNS.read(db, _SESSION_RUNS, params)


def expired(db: Db, now: int, limit: int) -> list[tuple[str, str]]:
    """(workspace, run id) of leases that have ended, the oldest end first."""
    cur = cursor_of(db)
    return [(str(w), str(i)) for w, i in cur.all(_EXPIRED, {"now": now, "limit": limit})]


_TASK_BY_NUMBER = TASKS.select((_tasks.c.workspace == _WS) & (_tasks.c.number == bindparam("number")))


def task_by_number(db: Db, workspace: str, number: int) -> TaskRecord | None:
    """The task whose identifier is `TASK-<number>`."""
    found = TASKS.read(db, _TASK_BY_NUMBER, {"workspace": workspace, "number": number})
    return found[0] if found else None


def next_number(db: Db, workspace: str) -> int:
    cur = cursor_of(db)
    row = cur.one(_MAX_NUMBER, {"workspace": workspace})
    return int(row[0] or 0) + 1 if row else 1


def list_tasks(
    db: Db, workspace: str, *, status: str, priority: str, scope: str, before: int, limit: int
) -> list[TaskRecord]:
    """Tasks numbered below `before`, newest first; an empty filter matches all."""
    params = {
        "workspace": workspace,
        "status": status,
        "priority": priority,
        "scope": scope,
        "before": before,
        "limit": limit,
    }
    return TASKS.read(db, _LIST_TASKS, params)


def note_event(db: Db, workspace: str, task_id: str, seq: int) -> None:
    """Index a log entry under the task it concerns."""
    cur = cursor_of(db)
    cur.run(_NOTE_EVENT, {"workspace": workspace, "task_id": task_id, "seq": seq})


def recent_events(db: Db, workspace: str, task_id: str, limit: int) -> list[Sequence[Any]]:
    """(seq, event id, type, recorded_at, data) of a task's latest log entries, newest first."""
    cur = cursor_of(db)
    rows = cur.all(_RECENT_EVENTS, {"workspace": workspace, "task_id": task_id, "limit": limit})
    return [(seq, eid, kind, at, cur.json_out(data)) for seq, eid, kind, at, data in rows]


def get_lineage(db: Db, workspace: str, session_id: str) -> LineageRecord | None:
    cur = cursor_of(db)
    row = cur.one(_GET_LINEAGE, {"workspace": workspace, "session_id": session_id})
    if row is None:
        return None
    values = dict(zip(_LINEAGE_FIELDS, row, strict=True))
    values["permissions"] = cur.json_out(values["permissions"])
    values["auto_stop_on_parent"] = bool(values["auto_stop_on_parent"])
    return LineageRecord(**values)


def insert_lineage(db: Db, workspace: str, record: LineageRecord) -> None:
    cur = cursor_of(db)
    params = {**record.__dict__, "workspace": workspace, "permissions": cur.json_in(record.permissions)}
    cur.run(_INSERT_LINEAGE, params)


def set_policy(db: Db, workspace: str, record: LineageRecord) -> None:
    cur = cursor_of(db)
    params = {f"v_{n}": getattr(record, n) for n in _POLICY_COLUMNS}
    params["v_permissions"] = cur.json_in(record.permissions)
    cur.run(_SET_POLICY, {**params, "workspace": workspace, "session_id": record.session_id})


def live_children(db: Db, workspace: str, parent: str) -> int:
    cur = cursor_of(db)
    row = cur.one(_LIVE_CHILDREN, {"workspace": workspace, "parent": parent})
    return int(row[0]) if row else 0


def live_in_tree(db: Db, workspace: str, root: str) -> int:
    """Running spawned sessions whose root is `root` (the root itself not counted)."""
    cur = cursor_of(db)
    row = cur.one(_LIVE_IN_TREE, {"workspace": workspace, "root": root})
    return int(row[0]) if row else 0


def sessions_to_stop(db: Db, now: int, limit: int) -> list[tuple[str, str, bool]]:
    """(workspace, session id, whether its time ran out) of spawned sessions to stop."""
    cur = cursor_of(db)
    return [
        (str(w), str(s), ttl is not None and int(ttl) <= now)
        for w, s, ttl in cur.all(_TO_STOP, {"now": now, "limit": limit})
    ]


def session_updated_at(db: Db, workspace: str, session_id: str) -> Any:
    cur = cursor_of(db)
    row = cur.one(_SESSION_UPDATED_AT, {"workspace": workspace, "session_id": session_id})
    return None if row is None else row[0]


def get_soul(db: Db, workspace: str, agent_name: str) -> SoulRecord | None:
    cur = cursor_of(db)
    row = cur.one(_GET_SOUL, {"workspace": workspace, "agent_name": agent_name})
    return None if row is None else SoulRecord(*row)


def put_soul(db: Db, workspace: str, record: SoulRecord | None, agent_name: str) -> None:
    """Replace an agent's soul (None removes it)."""
    cur = cursor_of(db)
    cur.run(_DELETE_SOUL, {"workspace": workspace, "agent_name": agent_name})
    if record is not None:
        cur.run(_INSERT_SOUL, {**record.__dict__, "workspace": workspace})


# The queue at a glance, across workspaces (/metrics): runs queued, held with a
# lease still running, held past their lease (the sweeper requeues them).
_QUEUE_FIGURES = text(
    "SELECT"
    f" (SELECT count(*) FROM agh_task_runs WHERE {QUEUED_ONLY}),"
    f" (SELECT count(*) FROM agh_task_runs WHERE {HELD} AND lease_until > :now),"
    f" (SELECT count(*) FROM agh_task_runs WHERE {HELD} AND lease_until <= :now)"
)


def queue_figures(conn: Connection, now_us: int) -> tuple[int, int, int]:
    """(queued, leased, expired) runs now."""
    row = conn.execute(_QUEUE_FIGURES, {"now": now_us}).one()
    return int(row[0]), int(row[1]), int(row[2])


def forget_range(tx: Tx, workspace: str, after: int, upto: int) -> None:
    """Forget which tasks the log entries `after < seq <= upto` concerned
    (retention); the tasks and their runs stay."""
    tx.conn.execute(
        delete(agh_task_events).where(
            agh_task_events.c.workspace == workspace,
            agh_task_events.c.seq > after,
            agh_task_events.c.seq <= upto,
        )
    )
