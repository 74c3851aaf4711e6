"""Sessions and tasks of every family as console items: one select per
family, each paged on its own creation-order key and index, merged newest
first. A page token holds each family's position, so merging never skips or
repeats an item, whatever the families' clocks say."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, exists, func, or_, select, tuple_

from service.store.agh.tables import agh_session_lineage, agh_tasks
from service.store.console import cursors
from service.store.console.records import (
    AGH_TASK,
    EXECUTION,
    RUNTIME_SESSION,
    TRACER_SESSION,
    TRACER_TASK,
    Item,
)
from service.store.console.times import EPOCH, from_db, from_micros, from_text
from service.store.executions.tables import executions
from service.store.tables import sessions
from service.store.tracer.tables import tracer_sessions, tracer_tasks


@dataclass(frozen=True)
class Filters:
    kind: str = ""
    status: str = ""
    runtime: str = ""
    query: str = ""


def _contains(query: str, *columns: Any) -> ColumnElement[bool]:
    """Case-insensitive substring match on any of `columns`."""
    pattern = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return or_(*(func.lower(c).like(pattern, escape="\\") for c in columns))


@dataclass(frozen=True)
class _Family:
    kind: str
    # The select of its items' columns, filtered by workspace and the filters.
    select: Callable[[str, Filters], Select[Any] | None]
    # The paging key of a row (JSON-able), its order columns, and the row as an item.
    key_columns: Callable[[], Sequence[Any]]
    item: Callable[[Any, str], Item]


# ---------------------------------------------------------------- runtime sessions

NOT_MONITOR = ~exists().where(
    tracer_sessions.c.workspace == sessions.c.workspace, tracer_sessions.c.id == sessions.c.session_id
)


def _runtime_sessions(workspace: str, f: Filters) -> Select[Any] | None:
    q = (
        select(
            sessions.c.session_id,
            sessions.c.session_name,
            sessions.c.status,
            sessions.c.agent_name,
            sessions.c.created_at,
            sessions.c.updated_at,
            sessions.c.event_count,
            sessions.c.input_tokens,
            sessions.c.output_tokens,
            agh_session_lineage.c.parent_session_id,
        )
        .select_from(
            sessions.outerjoin(
                agh_session_lineage,
                and_(
                    agh_session_lineage.c.workspace == sessions.c.workspace,
                    agh_session_lineage.c.session_id == sessions.c.session_id,
                ),
            )
        )
        .where(sessions.c.workspace == workspace, NOT_MONITOR)
    )
    if f.status:
        q = q.where(sessions.c.status == f.status)
    if f.runtime:
        q = q.where(sessions.c.agent_name == f.runtime)
    if f.query:
        q = q.where(_contains(f.query, sessions.c.session_id, sessions.c.session_name))
    return q


def _runtime_item(r: Any, workspace: str) -> Item:
    tokens_in, tokens_out = r.input_tokens or 0, r.output_tokens or 0
    return Item(
        kind=RUNTIME_SESSION,
        id=r.session_id,
        title=r.session_name,
        status=r.status,
        runtime=r.agent_name or "",
        workspace=workspace,
        created_at=from_text(r.created_at),
        updated_at=from_db(r.updated_at),
        parent_kind=RUNTIME_SESSION if r.parent_session_id else "",
        parent_id=r.parent_session_id or "",
        event_count=r.event_count,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        total_tokens=tokens_in + tokens_out,
    )


# ---------------------------------------------------------------- tracer tasks and sessions


def _tracer_tasks(workspace: str, f: Filters) -> Select[Any] | None:
    t = tracer_tasks.c
    q = select(
        t.seq,
        t.id,
        t.title,
        t.status,
        t.runtime_source,
        t.created_at,
        t.updated_at,
        t.parent_task_id,
        t.input_tokens,
        t.output_tokens,
        t.cost_usd,
    ).where(t.workspace == workspace)
    if f.status:
        q = q.where(t.status == f.status)
    if f.runtime:
        q = q.where(t.runtime_source == f.runtime)
    if f.query:
        q = q.where(_contains(f.query, t.id, t.title))
    return q


def _tracer_task_item(r: Any, workspace: str) -> Item:
    return Item(
        kind=TRACER_TASK,
        id=r.id,
        title=r.title,
        status=r.status,
        runtime=r.runtime_source or "",
        workspace=workspace,
        created_at=from_text(r.created_at),
        updated_at=from_text(r.updated_at),
        parent_kind=TRACER_TASK if r.parent_task_id else "",
        parent_id=r.parent_task_id or "",
        input_tokens=r.input_tokens,
        output_tokens=r.output_tokens,
        total_tokens=r.input_tokens + r.output_tokens,
        cost_usd=r.cost_usd,
    )


def _tracer_sessions(workspace: str, f: Filters) -> Select[Any] | None:
    s, t = tracer_sessions.c, tracer_tasks.c
    q = (
        select(
            s.seq,
            s.id,
            s.task_id,
            s.status,
            s.started_at,
            s.ended_at,
            s.summary,
            s.input_tokens,
            s.output_tokens,
            s.cost_usd,
            t.title,
            t.runtime_source,
        )
        .select_from(tracer_sessions.join(tracer_tasks, and_(t.workspace == s.workspace, t.id == s.task_id)))
        .where(s.workspace == workspace)
    )
    if f.status:
        q = q.where(s.status == f.status)
    if f.runtime:
        q = q.where(t.runtime_source == f.runtime)
    if f.query:
        q = q.where(_contains(f.query, s.id, t.title))
    return q


def _tracer_session_item(r: Any, workspace: str) -> Item:
    return Item(
        kind=TRACER_SESSION,
        id=r.id,
        title=r.title,
        status=r.status,
        runtime=r.runtime_source or "",
        workspace=workspace,
        created_at=from_text(r.started_at),
        updated_at=from_text(r.ended_at),
        parent_kind=TRACER_TASK,
        parent_id=r.task_id,
        input_tokens=r.input_tokens,
        output_tokens=r.output_tokens,
        total_tokens=r.input_tokens + r.output_tokens,
        cost_usd=r.cost_usd,
    )


# ---------------------------------------------------------------- executions and AGH tasks


def _executions(workspace: str, f: Filters) -> Select[Any] | None:
    if f.runtime:  # executions name no runtime
        return None
    e = executions.c
    q = select(
        e.seq,
        e.id,
        e.name,
        e.status,
        e.created_at,
        e.completed_at,
        e.started_at,
        e.total_agents,
        e.total_tool_calls,
        e.total_tokens_used,
    ).where(e.workspace == workspace)
    if f.status:
        q = q.where(e.status == f.status)
    if f.query:
        q = q.where(_contains(f.query, e.id, e.name))
    return q


def _execution_item(r: Any, workspace: str) -> Item:
    return Item(
        kind=EXECUTION,
        id=r.id,
        title=r.name or r.id,
        status=r.status,
        runtime="",
        workspace=workspace,
        created_at=from_micros(r.created_at),
        updated_at=from_micros(r.completed_at or r.started_at),
        event_count=r.total_agents + r.total_tool_calls,
        total_tokens=r.total_tokens_used,
    )


def _agh_tasks(workspace: str, f: Filters) -> Select[Any] | None:
    if f.runtime:  # AGH tasks name no runtime
        return None
    a = agh_tasks.c
    q = select(a.number, a.id, a.title, a.status, a.created_at, a.updated_at).where(a.workspace == workspace)
    if f.status:
        q = q.where(a.status == f.status)
    if f.query:
        q = q.where(_contains(f.query, a.id, a.title))
    return q


def _agh_task_item(r: Any, workspace: str) -> Item:
    return Item(
        kind=AGH_TASK,
        id=r.id,
        title=r.title,
        status=r.status,
        runtime="",
        workspace=workspace,
        created_at=from_micros(r.created_at),
        updated_at=from_micros(r.updated_at),
    )


FAMILIES: dict[str, _Family] = {
    f.kind: f
    for f in (
        _Family(
            RUNTIME_SESSION,
            _runtime_sessions,
            lambda: (sessions.c.created_at, sessions.c.session_id),
            _runtime_item,
        ),
        _Family(TRACER_TASK, _tracer_tasks, lambda: (tracer_tasks.c.seq,), _tracer_task_item),
        _Family(TRACER_SESSION, _tracer_sessions, lambda: (tracer_sessions.c.seq,), _tracer_session_item),
        _Family(EXECUTION, _executions, lambda: (executions.c.seq,), _execution_item),
        _Family(AGH_TASK, _agh_tasks, lambda: (agh_tasks.c.number,), _agh_task_item),
    )
}
# A key's value types, to check a token's positions.
_KEY_TYPES: dict[str, tuple[type, ...]] = {RUNTIME_SESSION: (str, str)}


def _before(columns: Sequence[Any], key: list[Any]) -> ColumnElement[bool]:
    if len(columns) == 1:
        return columns[0] < key[0]
    return tuple_(*columns) < tuple_(*key)


def _page_of(
    conn: Connection, family: _Family, workspace: str, f: Filters, after: list[Any] | None, limit: int
) -> list[tuple[list[Any], Item]]:
    q = family.select(workspace, f)
    if q is None:
        return []
    columns = family.key_columns()
    if after is not None:
        q = q.where(_before(columns, after))
    q = q.order_by(*(c.desc() for c in columns)).limit(limit)
    out = []
    for row in conn.execute(q):
        key = [getattr(row, c.name) for c in columns]
        out.append((key, family.item(row, workspace)))
    return out


def _newest(item: Item, kind: str) -> tuple[datetime, str, str]:
    return (item.created_at or EPOCH, kind, item.id)


def list_items(conn: Connection, workspace: str, f: Filters, size: int, token: str) -> tuple[list[Item], str]:
    """A page of items, newest first, and the next page's token ("" on the last)."""
    filters = (f.kind, f.status, f.runtime, f.query)
    positions = cursors.decode("console.sessions", filters, token) or {}
    if not isinstance(positions, dict) or not set(positions) <= set(FAMILIES):
        raise cursors.refused()
    heads: dict[str, list[tuple[list[Any], Item]]] = {}
    for kind in [f.kind] if f.kind else list(FAMILIES):
        after = positions.get(kind)
        if after is not None:
            after = cursors.checked(after, *_KEY_TYPES.get(kind, (int,)))
        heads[kind] = _page_of(conn, FAMILIES[kind], workspace, f, after, size + 1)
    # Merge the families' pages, each kept in its own key order, so that a
    # family's taken items are a prefix of its page and its position is exact.
    taken: list[Item] = []
    moved = dict(positions)
    while len(taken) < size:
        live = [k for k, rows in heads.items() if rows]
        if not live:
            return taken, ""
        kind = max(live, key=lambda k: _newest(heads[k][0][1], k))
        key, item = heads[kind].pop(0)
        taken.append(item)
        moved[kind] = key
    if not any(heads.values()):
        return taken, ""
    return taken, cursors.encode("console.sessions", filters, moved)


def get_item(conn: Connection, workspace: str, kind: str, item_id: str) -> Item | None:
    """One item by kind and id, None when the workspace has no such item."""
    family = FAMILIES[kind]
    q = family.select(workspace, Filters())
    assert q is not None
    id_column = {
        RUNTIME_SESSION: sessions.c.session_id,
        TRACER_TASK: tracer_tasks.c.id,
        TRACER_SESSION: tracer_sessions.c.id,
        EXECUTION: executions.c.id,
        AGH_TASK: agh_tasks.c.id,
    }[kind]
    row = conn.execute(q.where(id_column == item_id)).first()
    return None if row is None else family.item(row, workspace)
