"""Reading a whole database, or one workspace of it, as of one moment: what
`agentplane export` writes out.

Everything is read in one read transaction (REPEATABLE READ on PostgreSQL;
on SQLite in WAL mode a read transaction is a snapshot), so the log entries
and the projection rows agree with each other while the server keeps
writing. The log is read in pages on its primary key, or on the
`(workspace, seq)` index for one workspace; the projection tables are
streamed (a server-side cursor on PostgreSQL), so memory stays bounded
whatever the size.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, select, text

from service.store.database import create_engines
from service.store.fastpath import driver_cursor
from service.store.schema import metadata
from service.store.tables import log_entries

# Entries read per page.
PAGE = 5_000
# Tables that are not carried from one instance to another: the log (read
# apart, in order) and the idempotency keys (a retry's memory for 24 hours,
# whose answers are bound to the instance that gave them).
_NOT_PROJECTIONS = frozenset({"log_entries", "idempotency_keys"})

# An entry as exported: (seq, event_id, workspace, type, name, session_id,
# occurred_at, recorded_at as RFC 3339 text, data as JSON text).
RawEntry = tuple[int, str, str, str, str | None, str | None, str | None, str, str]

_COLUMNS = "seq, event_id, workspace, type, name, session_id, occurred_at"
# recorded_at as RFC 3339 text made by the database (cheaper than in Python):
# SQLite keeps SQLAlchemy's UTC text (`YYYY-MM-DD HH:MM:SS.ffffff`); the data
# as the JSON text stored (PostgreSQL's JSONB rendered as text).
_SQLITE_COLUMNS = f"{_COLUMNS}, replace(recorded_at, ' ', 'T') || '+00:00', data"
_PG_COLUMNS = f"{_COLUMNS}, to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'), data::text"


def projection_tables() -> list[Table]:
    """Every table a workspace's records live in besides the log, parents
    before children (foreign keys): new families' tables are included as
    soon as service.store.schema registers them."""
    return [
        t
        for t in metadata.sorted_tables
        if t.name not in _NOT_PROJECTIONS and "workspace" in t.c and t.name != log_entries.name
    ]


def _aware(value: Any) -> Any:
    # SQLite's DateTime columns come back naive; they hold UTC.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class Snapshot:
    """One consistent read of the database (open it with `snapshot`)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._sqlite = conn.dialect.name == "sqlite"

    def head(self) -> int:
        """The highest seq in the snapshot (0 for an empty log)."""
        return int(self.conn.execute(text("SELECT coalesce(max(seq), 0) FROM log_entries")).scalar_one())

    def seq_high(self) -> int:
        """The highest seq ever handed out (deleted entries' included)."""
        if self._sqlite:
            found = self.conn.execute(
                text("SELECT seq FROM sqlite_sequence WHERE name = 'log_entries'")
            ).scalar()
        else:
            name = self.conn.execute(text("SELECT pg_get_serial_sequence('log_entries', 'seq')")).scalar_one()
            found = self.conn.execute(
                text(f"SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {name}")
            ).scalar()
        return max(int(found or 0), self.head())

    def entries(self, workspace: str | None, after: int, upto: int) -> Iterator[list[RawEntry]]:
        """Pages of the entries with `after < seq <= upto` (of one workspace,
        or every one), oldest first; data left as the JSON text stored."""
        mark = "?" if self._sqlite else "%s"
        columns = _SQLITE_COLUMNS if self._sqlite else _PG_COLUMNS
        where = f"seq > {mark} AND seq <= {mark}"
        if workspace is not None:
            hint = " INDEXED BY ix_log_workspace_seq" if self._sqlite else ""
            sql = f"SELECT {columns} FROM log_entries{hint} WHERE workspace = {mark} AND {where} ORDER BY seq LIMIT {mark}"
        else:
            sql = f"SELECT {columns} FROM log_entries WHERE {where} ORDER BY seq LIMIT {mark}"
        cur = driver_cursor(self.conn)
        try:
            while after < upto:
                params = (after, upto, PAGE) if workspace is None else (workspace, after, upto, PAGE)
                cur.execute(sql, params)
                page: list[RawEntry] = cur.fetchall()
                if not page:
                    return
                yield page
                after = page[-1][0]
        finally:
            cur.close()

    def rows(self, table: Table, workspace: str | None) -> Iterator[dict[str, Any]]:
        """A projection table's rows (of one workspace, or all), as column
        name -> value; JSON columns decoded, times aware (UTC)."""
        query = select(table)
        if workspace is not None:
            query = query.where(table.c.workspace == workspace)
        result = self.conn.execution_options(stream_results=True, yield_per=PAGE).execute(query)
        # Plain str (SQLAlchemy's quoted names are a subclass, which orjson refuses as keys).
        names = [str(column.name) for column in table.columns]
        for row in result:
            yield {name: _aware(value) for name, value in zip(names, row, strict=True)}


@contextmanager
def snapshot(url: str) -> Iterator[Snapshot]:
    """A consistent read of the database at `url`, for as long as the block runs."""
    engines = create_engines(url)
    try:
        with engines.read.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SET TRANSACTION READ ONLY"))
                yield Snapshot(conn)
    finally:
        engines.dispose()
