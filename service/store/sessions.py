"""Queries on the shared session projection and the runtime events of a session."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

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


async def get(conn: AsyncConnection, workspace: str, session_id: str) -> SessionRecord | None:
    row = (
        await conn.execute(
            select(*_COLUMNS).where(sessions.c.workspace == workspace, sessions.c.session_id == session_id)
        )
    ).first()
    return _record(row) if row else None


async def list_all(conn: AsyncConnection, workspace: str) -> list[SessionRecord]:
    rows = await conn.execute(
        select(*_COLUMNS)
        .where(sessions.c.workspace == workspace)
        .order_by(sessions.c.created_at.desc(), sessions.c.session_id)
    )
    return [_record(r) for r in rows]


async def insert_one(conn: AsyncConnection, workspace: str, record: SessionRecord) -> None:
    await conn.execute(
        insert(sessions), {**record.as_dict(), "workspace": workspace, "updated_at": datetime.now(UTC)}
    )


async def update_fields(conn: AsyncConnection, workspace: str, session_id: str, **values: Any) -> None:
    await conn.execute(
        update(sessions)
        .where(sessions.c.workspace == workspace, sessions.c.session_id == session_id)
        .values(**values, updated_at=datetime.now(UTC))
    )


async def delete_with_log(conn: AsyncConnection, workspace: str, session_id: str) -> int:
    """Delete a session and every log entry of it; returns its runtime event count."""
    where = (log_entries.c.workspace == workspace, log_entries.c.session_id == session_id)
    count = (
        await conn.execute(select(func.count()).where(*where, log_entries.c.type == RUNTIME_EVENT))
    ).scalar_one()
    await conn.execute(delete(log_entries).where(*where))
    await conn.execute(
        delete(sessions).where(sessions.c.workspace == workspace, sessions.c.session_id == session_id)
    )
    return int(count)


async def runtime_events(
    conn: AsyncConnection,
    workspace: str,
    session_id: str,
    *,
    limit: int,
    newest_first: bool = False,
    name: str | None = None,
) -> list[LogEntry]:
    """A session's runtime events ordered by their own timestamp (as text)."""
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
    return [entry_from_row(r) for r in await conn.execute(q.order_by(*order).limit(limit))]
