"""The event log: appending entries inside a write transaction, and reading
them back from a cursor."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.store.tables import log_entries


@dataclass(frozen=True)
class LogEntry:
    seq: int
    event_id: str
    type: str
    workspace: str
    session_id: str | None
    occurred_at: str | None
    recorded_at: datetime
    data: dict[str, Any]
    name: str | None = None


@dataclass
class Tx:
    """A write transaction handed to domain operations by the writer.

    `appended` collects the entries written, so the writer can wake watchers
    with the right position once the transaction has committed."""

    conn: AsyncConnection
    appended: list[int] = field(default_factory=list)

    async def append(
        self,
        type: str,
        workspace: str,
        data: dict[str, Any],
        *,
        session_id: str | None = None,
        occurred_at: str | None = None,
        name: str | None = None,
        event_id: str | None = None,
    ) -> int:
        """Append one entry and return its `seq`."""
        result = await self.conn.execute(
            insert(log_entries).returning(log_entries.c.seq),
            {
                "event_id": event_id or uuid.uuid4().hex,
                "workspace": workspace,
                "type": type,
                "name": name,
                "session_id": session_id,
                "occurred_at": occurred_at,
                "recorded_at": datetime.now(UTC),
                "data": data,
            },
        )
        seq = int(result.scalar_one())
        self.appended.append(seq)
        return seq

    async def seen(self, event_id: str) -> bool:
        """True if an entry with this id is already in the log (a resend)."""
        found = await self.conn.execute(select(log_entries.c.seq).where(log_entries.c.event_id == event_id))
        return found.first() is not None


def entry_from_row(row: Any) -> LogEntry:
    return LogEntry(
        seq=row.seq,
        event_id=row.event_id,
        type=row.type,
        workspace=row.workspace,
        session_id=row.session_id,
        occurred_at=row.occurred_at,
        recorded_at=row.recorded_at,
        data=row.data,
        name=row.name,
    )


async def head(conn: AsyncConnection) -> int:
    """The highest `seq` committed so far (0 for an empty log)."""
    return int((await conn.execute(select(func.coalesce(func.max(log_entries.c.seq), 0)))).scalar_one())


async def read_after(
    conn: AsyncConnection,
    after: int,
    *,
    limit: int,
    workspace: str | None = None,
    types: Sequence[str] = (),
    session_id: str | None = None,
) -> list[LogEntry]:
    """Entries with `seq > after` that pass the filters, oldest first."""
    q = select(log_entries).where(log_entries.c.seq > after)
    if workspace is not None:
        q = q.where(log_entries.c.workspace == workspace)
    if types:
        q = q.where(log_entries.c.type.in_(list(types)))
    if session_id:
        q = q.where(log_entries.c.session_id == session_id)
    rows = await conn.execute(q.order_by(log_entries.c.seq).limit(limit))
    return [entry_from_row(r) for r in rows]
