"""Queries on the shared session projection and the runtime events of a session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from service.store.fastpath import RawStatement, driver_cursor
from service.store.log import LogEntry, entry_from_row
from service.store.tables import log_entries, sessions

RUNTIME_EVENT = "runtime.event"


@dataclass
class SessionRecord:
    session_id: str
    session_name: str
    status: str
    created_at: str
    project_dir: str | None = None
    agent_name: str | None = None
    last_resumed_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_COLUMNS = [getattr(sessions.c, f) for f in SessionRecord.__dataclass_fields__]


def _record(row: Any) -> SessionRecord:
    return SessionRecord(**{f: getattr(row, f) for f in SessionRecord.__dataclass_fields__})


# Built once: constructing a statement costs far more than running it.
_GET = select(*_COLUMNS).where(
    sessions.c.workspace == bindparam("workspace"), sessions.c.session_id == bindparam("session_id")
)
_INSERT = insert(sessions)


_GET_RAW = RawStatement(_GET)  # every write of an event looks its session up


def get(conn: Connection, workspace: str, session_id: str) -> SessionRecord | None:
    cursor = _GET_RAW.execute(
        driver_cursor(conn), conn.dialect, {"workspace": workspace, "session_id": session_id}
    )
    row = cursor.fetchone()
    return SessionRecord(*row) if row else None


def list_all(conn: Connection, workspace: str) -> list[SessionRecord]:
    rows = conn.execute(
        select(*_COLUMNS)
        .where(sessions.c.workspace == workspace)
        .order_by(sessions.c.created_at.desc(), sessions.c.session_id)
    )
    return [_record(r) for r in rows]


def insert_one(conn: Connection, workspace: str, record: SessionRecord) -> None:
    conn.execute(
        insert(sessions), {**record.as_dict(), "workspace": workspace, "updated_at": datetime.now(UTC)}
    )


def update_fields(conn: Connection, workspace: str, session_id: str, **values: Any) -> None:
    conn.execute(
        update(sessions)
        .where(sessions.c.workspace == workspace, sessions.c.session_id == session_id)
        .values(**values, updated_at=datetime.now(UTC))
    )


def delete_with_log(conn: Connection, workspace: str, session_id: str) -> int:
    """Delete a session and every log entry of it; returns its runtime event count."""
    where = (log_entries.c.workspace == workspace, log_entries.c.session_id == session_id)
    count = (
        conn.execute(select(func.count()).where(*where, log_entries.c.type == RUNTIME_EVENT))
    ).scalar_one()
    conn.execute(delete(log_entries).where(*where))
    conn.execute(
        delete(sessions).where(sessions.c.workspace == workspace, sessions.c.session_id == session_id)
    )
    return int(count)


def runtime_events(
    conn: Connection,
    workspace: str,
    session_id: str,
    *,
    limit: int | None = None,
    newest_first: bool = False,
    name: str | None = None,
) -> Iterator[LogEntry]:
    """A session's runtime events ordered by their own timestamp (as text), lazily."""
    q = select(log_entries).where(
        log_entries.c.workspace == workspace,
        log_entries.c.session_id == session_id,
        log_entries.c.type == RUNTIME_EVENT,
    )
    if name is not None:
        q = q.where(log_entries.c.name == name)
    order = (
        (log_entries.c.occurred_at.desc(), log_entries.c.seq.desc())
        if newest_first
        else (log_entries.c.occurred_at, log_entries.c.seq)
    )
    q = q.order_by(*order)
    if limit is not None:
        q = q.limit(limit)
    return (entry_from_row(r) for r in conn.execute(q))
