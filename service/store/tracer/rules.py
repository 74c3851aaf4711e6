"""Queries on the verification-rule projections (service/store/tracer/rule_tables.py).

The lookup every turn close and every stored batch of turn events makes
(the active rules of a task) goes straight to the driver's cursor
(service.store.fastpath); the rest goes through SQLAlchemy Core. Every query is
scoped to a workspace.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

import orjson
from sqlalchemy import Connection, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from service.store.fastpath import RawStatement, driver_cursor
from service.store.tables import log_entries
from service.store.tracer.queries import json_param
from service.store.tracer.rule_tables import tracer_enforcements, tracer_rules, tracer_verdicts
from service.store.tracer.tables import tracer_events, tracer_turns

_WS: Any = bindparam("w_workspace")


@dataclass
class RuleRecord:
    id: str
    name: str
    phrases: list[str] | None
    trigger_on: str | None
    action: str | None
    command_matches: list[str] | None
    pattern: str | None
    scope: str
    task_id: str | None
    source: str
    severity: str
    rationale: str | None
    signature: str
    created_at: str
    deleted_at: str | None = None
    seq: int = 0
    changed_seq: int = 0


_RULE_COLUMNS = [tracer_rules.c[f.name] for f in fields(RuleRecord)]


def _decoded(value: Any) -> Any:
    """A JSON column read from the driver: text on SQLite, decoded on PostgreSQL."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _rule(row: Sequence[Any]) -> RuleRecord:
    rule = RuleRecord(*row)
    rule.phrases = _decoded(rule.phrases)
    rule.command_matches = _decoded(rule.command_matches)
    return rule


def _rule_params(workspace: str, rule: RuleRecord) -> dict[str, Any]:
    return {**{f.name: getattr(rule, f.name) for f in fields(RuleRecord)}, "workspace": workspace}


_ACTIVE = tracer_rules.c.deleted_at.is_(None)
# Global rules and the task's own, oldest first (the evaluation order).
_ACTIVE_FOR_TASK = RawStatement(
    select(*_RULE_COLUMNS)
    .where(
        tracer_rules.c.workspace == _WS,
        _ACTIVE,
        or_(tracer_rules.c.task_id.is_(None), tracer_rules.c.task_id == bindparam("w_task")),
    )
    .order_by(tracer_rules.c.seq)
)
_GET = select(*_RULE_COLUMNS).where(tracer_rules.c.workspace == _WS, tracer_rules.c.id == bindparam("w_id"))
_UPDATE = update(tracer_rules).where(tracer_rules.c.workspace == _WS, tracer_rules.c.id == bindparam("w_id"))
_BY_SIGNATURE = (
    select(*_RULE_COLUMNS)
    .where(tracer_rules.c.workspace == _WS, tracer_rules.c.signature == bindparam("w_signature"), _ACTIVE)
    .order_by(tracer_rules.c.seq)
    .limit(1)
)


_VERSION = RawStatement(select(func.max(tracer_rules.c.changed_seq)).where(tracer_rules.c.workspace == _WS))


def rules_version(conn: Connection, workspace: str) -> int:
    """A number that grows whenever a rule of the workspace changes."""
    row = _VERSION.execute(driver_cursor(conn), conn.dialect, {"w_workspace": workspace}).fetchone()
    return int(row[0] or 0)


def active_rules(conn: Connection, workspace: str, task_id: str) -> list[RuleRecord]:
    """The rules that apply to the task's turns, oldest first."""
    cursor = _ACTIVE_FOR_TASK.execute(
        driver_cursor(conn), conn.dialect, {"w_workspace": workspace, "w_task": task_id}
    )
    return [_rule(row) for row in cursor.fetchall()]


def get_rule(conn: Connection, workspace: str, rule_id: str, *, deleted: bool = False) -> RuleRecord | None:
    """The rule (None when unknown, or deleted unless `deleted`)."""
    row = conn.execute(_GET, {"w_workspace": workspace, "w_id": rule_id}).first()
    if row is None:
        return None
    rule = _rule(row)
    return rule if deleted or rule.deleted_at is None else None


def rule_by_signature(conn: Connection, workspace: str, signature: str) -> RuleRecord | None:
    row = conn.execute(_BY_SIGNATURE, {"w_workspace": workspace, "w_signature": signature}).first()
    return _rule(row) if row else None


def insert_rule(conn: Connection, workspace: str, rule: RuleRecord) -> None:
    conn.execute(tracer_rules.insert(), _rule_params(workspace, rule))


def update_rule(conn: Connection, workspace: str, rule: RuleRecord) -> None:
    """Store every field of the rule."""
    params = _rule_params(workspace, rule)
    del params["workspace"], params["id"]
    conn.execute(_UPDATE, {**params, "w_workspace": workspace, "w_id": rule.id})


def list_rules(
    conn: Connection,
    workspace: str,
    *,
    scope: str | None = None,
    task_id: str | None = None,
    source: str | None = None,
) -> list[RuleRecord]:
    """Rules that are not deleted, newest first."""
    t = tracer_rules.c
    q = select(*_RULE_COLUMNS).where(t.workspace == workspace, _ACTIVE)
    if scope is not None:
        q = q.where(t.scope == scope)
    if task_id is not None:
        q = q.where(t.task_id == task_id)
    if source is not None:
        q = q.where(t.source == source)
    return [_rule(r) for r in conn.execute(q.order_by(t.seq.desc()))]


# ---------------------------------------------------------------- verdicts


@dataclass
class VerdictRow:
    turn_id: str
    rule_id: str
    task_id: str
    session_id: str
    status: str
    detail: dict[str, Any]
    evaluated_at: str


def _upserts(table: Any, keys: list[str], update_columns: list[str] | None) -> dict[str, RawStatement]:
    """INSERT … ON CONFLICT (keys) DO UPDATE (DO NOTHING without `update_columns`),
    per dialect, run straight on the driver (JSON values given as driver values)."""
    out = {}
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql)):
        stmt: Any = dialect.insert(table).values({c.name: bindparam(c.name) for c in table.columns})
        if update_columns is None:
            stmt = stmt.on_conflict_do_nothing(index_elements=keys)
        else:
            stmt = stmt.on_conflict_do_update(
                index_elements=keys, set_={c: stmt.excluded[c] for c in update_columns}
            )
        out[name] = RawStatement(stmt)
    return out


_VERDICT_UPSERT = _upserts(
    tracer_verdicts,
    ["workspace", "turn_id", "rule_id"],
    ["task_id", "session_id", "status", "detail", "evaluated_at"],
)
_ENFORCEMENT_INSERT = _upserts(tracer_enforcements, ["workspace", "event_id", "rule_id", "match_kind"], None)


def upsert_verdicts(conn: Connection, workspace: str, rows: Sequence[VerdictRow]) -> None:
    if rows:
        params = [{**r.__dict__, "detail": json_param(conn, r.detail), "workspace": workspace} for r in rows]
        _VERDICT_UPSERT[conn.dialect.name].executemany(driver_cursor(conn), conn.dialect, params)


def verdict_statuses(conn: Connection, workspace: str, turn_ids: Sequence[str]) -> dict[str, list[str]]:
    """Every verdict status of each turn."""
    out: dict[str, list[str]] = {t: [] for t in turn_ids}
    v = tracer_verdicts.c
    for chunk in _chunks(turn_ids):
        rows = conn.execute(select(v.turn_id, v.status).where(v.workspace == workspace, v.turn_id.in_(chunk)))
        for turn_id, status in rows:
            out[turn_id].append(status)
    return out


def rules_evaluated(conn: Connection, workspace: str, turn_ids: Sequence[str]) -> dict[str, int]:
    """Each turn's count of rules evaluated."""
    t = tracer_turns.c
    out: dict[str, int] = {}
    for chunk in _chunks(turn_ids):
        rows = conn.execute(
            select(t.id, t.rules_evaluated_count).where(t.workspace == workspace, t.id.in_(chunk))
        )
        out.update({turn_id: int(n) for turn_id, n in rows})
    return out


def turns_with_verdict(conn: Connection, workspace: str, rule_id: str) -> set[str]:
    v = tracer_verdicts.c
    rows = conn.execute(select(v.turn_id).where(v.workspace == workspace, v.rule_id == rule_id))
    return {r[0] for r in rows}


def delete_rule_results(conn: Connection, workspace: str, rule_id: str) -> list[tuple[str, str, str]]:
    """Delete the rule's verdicts and enforcements; returns (turn, session,
    task) of each turn that lost a verdict."""
    v = tracer_verdicts.c
    lost = [
        (r[0], r[1], r[2])
        for r in conn.execute(
            select(v.turn_id, v.session_id, v.task_id).where(v.workspace == workspace, v.rule_id == rule_id)
        )
    ]
    conn.execute(delete(tracer_verdicts).where(v.workspace == workspace, v.rule_id == rule_id))
    e = tracer_enforcements.c
    conn.execute(delete(tracer_enforcements).where(e.workspace == workspace, e.rule_id == rule_id))
    return lost


def delete_session_results(conn: Connection, workspace: str, session_id: str) -> None:
    """Delete the verdicts and enforcements of a session's turns and events
    (the session is being deleted with its log entries)."""
    v = tracer_verdicts.c
    conn.execute(delete(tracer_verdicts).where(v.workspace == workspace, v.session_id == session_id))
    e = tracer_enforcements.c
    conn.execute(delete(tracer_enforcements).where(e.workspace == workspace, e.session_id == session_id))


def verdict_counts(conn: Connection, workspace: str, task_id: str) -> dict[str, int]:
    v = tracer_verdicts.c
    rows = conn.execute(
        select(v.status, func.count())
        .where(v.workspace == workspace, v.task_id == task_id)
        .group_by(v.status)
    )
    return {status: int(n) for status, n in rows}


_TURN_RESULT = RawStatement(
    update(tracer_turns)
    .where(tracer_turns.c.workspace == _WS, tracer_turns.c.id == bindparam("w_id"))
    .values(
        aggregate_verdict=bindparam("w_aggregate"),
        rules_evaluated_count=bindparam("w_count"),
    )
)


_TURN_BUMP = RawStatement(
    update(tracer_turns)
    .where(tracer_turns.c.workspace == _WS, tracer_turns.c.id == bindparam("w_id"))
    .values(
        aggregate_verdict=bindparam("w_aggregate"),
        rules_evaluated_count=tracer_turns.c.rules_evaluated_count + bindparam("w_inc"),
    )
)


def bump_turn_results(
    conn: Connection, workspace: str, results: Iterable[tuple[str, str | None, int]]
) -> None:
    """(turn id, aggregate verdict, rules evaluated to add) for each turn."""
    rows = [{"w_workspace": workspace, "w_id": t, "w_aggregate": a, "w_inc": n} for t, a, n in results]
    if rows:
        _TURN_BUMP.executemany(driver_cursor(conn), conn.dialect, rows)


def set_turn_results(
    conn: Connection, workspace: str, results: Iterable[tuple[str, str | None, int]]
) -> None:
    """(turn id, aggregate verdict, rules evaluated) for each turn."""
    rows = [{"w_workspace": workspace, "w_id": t, "w_aggregate": a, "w_count": n} for t, a, n in results]
    if rows:
        _TURN_RESULT.executemany(driver_cursor(conn), conn.dialect, rows)


# ------------------------------------------------------------ enforcements


@dataclass
class EnforcementRow:
    event_id: str
    rule_id: str
    match_kind: str
    task_id: str
    session_id: str | None
    turn_id: str | None
    decided_at: str


def insert_enforcements(conn: Connection, workspace: str, rows: Sequence[EnforcementRow]) -> None:
    """Insert, ignoring rows that exist (same event, rule and match kind)."""
    if rows:
        params = [{**r.__dict__, "workspace": workspace} for r in rows]
        _ENFORCEMENT_INSERT[conn.dialect.name].executemany(driver_cursor(conn), conn.dialect, params)


def enforcement_keys(conn: Connection, workspace: str, rule_id: str) -> set[tuple[str, str]]:
    """(event id, match kind) of the rule's enforcements."""
    e = tracer_enforcements.c
    rows = conn.execute(
        select(e.event_id, e.match_kind).where(e.workspace == workspace, e.rule_id == rule_id)
    )
    return {(r[0], r[1]) for r in rows}


def enforcements_of_events(
    conn: Connection, workspace: str, event_ids: Sequence[str]
) -> dict[str, list[tuple[str, str]]]:
    """(rule id, match kind) of each event's enforcements, in the order they were decided."""
    e = tracer_enforcements.c
    out: dict[str, list[tuple[str, str]]] = {}
    for chunk in _chunks(event_ids):
        rows = conn.execute(
            select(e.event_id, e.rule_id, e.match_kind)
            .where(e.workspace == workspace, e.event_id.in_(chunk))
            .order_by(e.decided_at, e.rule_id, e.match_kind)
        )
        for event_id, rule_id, kind in rows:
            out.setdefault(event_id, []).append((rule_id, kind))
    return out


_EVENT_VIEW = (tracer_events.c.data, log_entries.c.data)
_EVENTS_WITH_LOG = tracer_events.join(log_entries, log_entries.c.seq == tracer_events.c.seq)


def evidence_rows(
    conn: Connection, workspace: str, task_id: str, rule_id: str
) -> list[tuple[str, str, dict[str, Any]]]:
    """(match kind, decided at, event view) of the rule's enforcements on the task's events."""
    e = tracer_enforcements.c
    joined = tracer_enforcements.join(
        tracer_events,
        and_(tracer_events.c.workspace == e.workspace, tracer_events.c.id == e.event_id),
    ).join(log_entries, log_entries.c.seq == tracer_events.c.seq)
    rows = conn.execute(
        select(e.match_kind, e.decided_at, *_EVENT_VIEW)
        .select_from(joined)
        .where(e.workspace == workspace, e.rule_id == rule_id, tracer_events.c.task_id == task_id)
        .order_by(tracer_events.c.seq)
    )
    return [(kind, at, override or logged) for kind, at, override, logged in rows]


# ------------------------------------------------------------------ replay


@dataclass
class StoredTurn:
    id: str
    session_id: str
    task_id: str
    status: str
    asked_text: str | None
    assistant_text: str | None
    rules_evaluated_count: int
    events: list[dict[str, Any]]


# Without statistics, SQLite prefers a scan of the workspace's events by
# primary key (it covers every column of a WITHOUT ROWID table) to the turn
# index; asking for the ids first makes the turn index the covering one.
_IDS_OF_TURN = select(tracer_events.c.id).where(
    tracer_events.c.workspace == _WS, tracer_events.c.turn_id == bindparam("w_turn")
)
_TURN_VIEWS = RawStatement(
    select(*_EVENT_VIEW)
    .select_from(_EVENTS_WITH_LOG)
    .where(tracer_events.c.workspace == _WS, tracer_events.c.id.in_(_IDS_OF_TURN.scalar_subquery()))
    .order_by(tracer_events.c.seq)
)
_TURNS = select(
    tracer_turns.c.id,
    tracer_turns.c.session_id,
    tracer_turns.c.task_id,
    tracer_turns.c.status,
    tracer_turns.c.asked_text,
    tracer_turns.c.assistant_text,
    tracer_turns.c.rules_evaluated_count,
).where(tracer_turns.c.workspace == _WS)
_TURN_EVENT_VIEWS = (
    select(tracer_events.c.turn_id, *_EVENT_VIEW)
    .select_from(_EVENTS_WITH_LOG)
    .where(tracer_events.c.workspace == _WS, tracer_events.c.turn_id.is_not(None))
)
_REPLAY = {
    # (turns, their events) of every task, and of one task
    False: (
        RawStatement(_TURNS.order_by(tracer_turns.c.seq)),
        RawStatement(_TURN_EVENT_VIEWS.order_by(tracer_events.c.seq)),
    ),
    True: (
        RawStatement(
            _TURNS.where(tracer_turns.c.task_id == bindparam("w_task")).order_by(tracer_turns.c.seq)
        ),
        RawStatement(
            _TURN_EVENT_VIEWS.where(tracer_events.c.task_id == bindparam("w_task")).order_by(
                tracer_events.c.seq
            )
        ),
    ),
}


_TURN_EVENT_COUNTS = RawStatement(
    select(func.count(), func.count(tracer_events.c.data)).where(
        tracer_events.c.workspace == _WS, tracer_events.c.turn_id == bindparam("w_turn")
    )
)


def turn_event_counts(conn: Connection, workspace: str, turn_id: str) -> tuple[int, int]:
    """(events of the turn, how many of them have a rewritten view)."""
    row = _TURN_EVENT_COUNTS.execute(
        driver_cursor(conn), conn.dialect, {"w_workspace": workspace, "w_turn": turn_id}
    ).fetchone()
    return int(row[0]), int(row[1])


def turn_views(conn: Connection, workspace: str, turn_id: str) -> list[dict[str, Any]]:
    """The timeline views of a turn's events, in recording order."""
    cursor = _TURN_VIEWS.execute(
        driver_cursor(conn), conn.dialect, {"w_workspace": workspace, "w_turn": turn_id}
    )
    return [_decoded(override if override is not None else logged) for override, logged in cursor.fetchall()]


def stored_turns(conn: Connection, workspace: str, task_id: str | None) -> list[StoredTurn]:
    """The task's turns (every task's when None), in the order they opened,
    each with its events' views in recording order."""
    turns_q, events_q = _REPLAY[task_id is not None]
    params = {"w_workspace": workspace} if task_id is None else {"w_workspace": workspace, "w_task": task_id}
    cursor = driver_cursor(conn)
    turns = {
        turn_id: StoredTurn(turn_id, session_id, task, status, asked, answered, int(evaluated), [])
        for turn_id, session_id, task, status, asked, answered, evaluated in turns_q.execute(
            cursor, conn.dialect, params
        ).fetchall()
    }
    for turn_id, override, logged in events_q.execute(cursor, conn.dialect, params).fetchall():
        turn = turns.get(turn_id)
        if turn is not None:
            turn.events.append(_decoded(override if override is not None else logged))
    return list(turns.values())


def _chunks(items: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
