"""Reading the event log for live feeds: rows as stored, with the data left
as JSON text (a feed renders it, it need not parse it), read straight on the
driver's cursor.

Two reads: what was committed after a position, in every workspace (the one
reader per process behind every follower, on the primary key), and one
workspace's entries in a `seq` range (a catch-up page, on the
`(workspace, seq)` index). `seq` is strictly increasing but not dense
(PostgreSQL may skip numbers), so positions are compared, never counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection

from service.store.fastpath import driver_cursor

_COLUMNS = "seq, event_id, type, workspace, session_id, occurred_at, recorded_at, data"
# PostgreSQL hands JSONB back as text with spaces; the feed wants orjson's compact form.
_PG_COLUMNS = _COLUMNS.replace("data", "data::text")


class LogRow:
    """One log entry as stored. `data` is compact JSON text; `recorded_at` a
    datetime (naive means UTC). `rendered` is where the feed's readers keep
    what they made of the entry (one wire shape each), so an entry shared by
    many streams is rendered once; None for rows read for one stream alone."""

    __slots__ = (
        "data",
        "event_id",
        "occurred_at",
        "recorded_at",
        "rendered",
        "seq",
        "session_id",
        "type",
        "workspace",
    )

    def __init__(
        self,
        seq: int,
        event_id: str,
        type: str,
        workspace: str,
        session_id: str | None,
        occurred_at: str | None,
        recorded_at: datetime,
        data: str,
    ) -> None:
        self.seq = seq
        self.event_id = event_id
        self.type = type
        self.workspace = workspace
        self.session_id = session_id
        self.occurred_at = occurred_at
        self.recorded_at = recorded_at
        self.data = data
        self.rendered: dict[Any, Any] | None = None


def _rows(conn: Connection, sql: str, params: Sequence[Any]) -> list[LogRow]:
    cur = driver_cursor(conn)
    try:
        cur.execute(sql, params)
        fetched = cur.fetchall()
    finally:
        cur.close()
    if conn.dialect.name == "sqlite":
        # SQLAlchemy's SQLite DateTime text (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC).
        parse = datetime.fromisoformat
        return [LogRow(s, e, t, w, si, o, parse(r), d) for s, e, t, w, si, o, r, d in fetched]
    dumps, loads = orjson.dumps, orjson.loads
    return [LogRow(s, e, t, w, si, o, r, dumps(loads(d)).decode()) for s, e, t, w, si, o, r, d in fetched]


def _sql(conn: Connection, sqlite: str) -> str:
    if conn.dialect.name == "sqlite":
        return sqlite
    return (
        sqlite.replace(_COLUMNS, _PG_COLUMNS)
        .replace(" INDEXED BY ix_log_workspace_seq", "")
        .replace("?", "%s")
    )


def read_new(conn: Connection, after: int, limit: int) -> list[LogRow]:
    """Entries of every workspace with `seq > after`, oldest first."""
    sql = f"SELECT {_COLUMNS} FROM log_entries WHERE seq > ? ORDER BY seq LIMIT ?"
    return _rows(conn, _sql(conn, sql), (after, limit))


def read_range(
    conn: Connection,
    workspace: str,
    after: int,
    upto: int,
    limit: int,
    types: Sequence[str] = (),
    session_id: str | None = None,
) -> list[LogRow]:
    """The workspace's entries with `after < seq <= upto` that pass the
    filters, oldest first, at most `limit`. Planned on `(workspace, seq)`
    (SQLite is told to: its planner would take the session index for a
    session filter and sort), so the work is bounded by the range."""
    where = ["workspace = ?", "seq > ?", "seq <= ?"]
    params: list[Any] = [workspace, after, upto]
    # The filters are written so that no plan takes the session index (and
    # then sorts all of a session's or type's entries for each page):
    # PostgreSQL takes no index hints.
    if types:
        where.append(f"type || '' IN ({', '.join('?' * len(types))})")
        params.extend(types)
    if session_id:
        where.append("session_id || '' = ?")
        params.append(session_id)
    sql = (
        f"SELECT {_COLUMNS} FROM log_entries INDEXED BY ix_log_workspace_seq "
        f"WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?"
    )
    return _rows(conn, _sql(conn, sql), (*params, limit))
