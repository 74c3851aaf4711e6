"""The event log: appending entries inside a write transaction, and reading
them back from a cursor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from psycopg.types.json import Jsonb
from sqlalchemy import Connection, bindparam, func, insert, select

from service.base.clock import Clock
from service.base.ids import uuid7_hex
from service.store.fastpath import Cursor, RawStatement, driver_cursor
from service.store.tables import log_entries


def _json(data: dict[str, Any]) -> str:
    return orjson.dumps(data).decode()


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


APPEND_COLUMNS = (
    "event_id",
    "workspace",
    "type",
    "name",
    "session_id",
    "occurred_at",
    "recorded_at",
    "data",
)


# The hottest statement of every family (see service.store.fastpath).
_APPEND = RawStatement(
    insert(log_entries)
    .values({name: bindparam(name) for name in APPEND_COLUMNS})
    .returning(log_entries.c.seq)
)


_APPEND_MANY = RawStatement(insert(log_entries).values({name: bindparam(name) for name in APPEND_COLUMNS}))
_APPEND_MANY_SQLITE = (
    f"INSERT INTO log_entries ({', '.join(APPEND_COLUMNS)}) VALUES ({', '.join('?' * len(APPEND_COLUMNS))})"
)
# SQLite: rows per multi-row INSERT, largest first. One statement of many
# VALUES tuples is stepped once, not once per row as executemany does: a
# 512-row append costs ~3.9 µs a row instead of ~5.8 (2 cores, 800-byte rows,
# log_entries' indexes). Fixed sizes, so the driver's statement cache keeps
# each one prepared; what is left over goes through executemany.
_ROWS_PER_INSERT = (256, 16)
_APPEND_ROWS_SQLITE = {
    size: _APPEND_MANY_SQLITE + f", ({', '.join('?' * len(APPEND_COLUMNS))})" * (size - 1)
    for size in _ROWS_PER_INSERT
}


def _insert_sqlite(cursor: Any, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert `rows` (APPEND_COLUMNS order) in order, so AUTOINCREMENT gives
    them consecutive seqs in that order."""
    start = 0
    for size in _ROWS_PER_INSERT:
        sql = _APPEND_ROWS_SQLITE[size]
        while len(rows) - start >= size:
            cursor.execute(sql, [value for row in rows[start : start + size] for value in row])
            start += size
    if start < len(rows):
        cursor.executemany(_APPEND_MANY_SQLITE, rows[start:])


_LAST_SEQ = RawStatement(select(func.max(log_entries.c.seq)))
_APPEND_RETURNING_PG = (
    f"INSERT INTO log_entries ({', '.join(APPEND_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(APPEND_COLUMNS))}) RETURNING seq"
)
# An entry of `Tx.append_entries`: (type, session_id, occurred_at, name,
# event_id or None for a generated one, data as JSON text).
Entry = tuple[str, str | None, str | None, str | None, str | None, str]


def _sqlite_time(now: datetime) -> str:
    """SQLAlchemy's SQLite form of a UTC DateTime (`YYYY-MM-DD HH:MM:SS.ffffff`),
    so reads decode it; isoformat writes it at a third of strftime's cost."""
    return now.isoformat(" ", "microseconds")[:26]


def _as_is(text: str) -> str:
    """psycopg's JSON `dumps` for data already serialised."""
    return text


_SYSTEM_CLOCK = Clock()


@dataclass
class Tx:
    """A write transaction handed to domain operations by the writer.

    `appended` collects the entries written, so the writer can wake watchers
    with the right position once the transaction has committed. `usage`
    counts what the current operation appended per workspace (entries, JSON
    characters of their data), for the quotas and stored-size counters the
    writer keeps (service.store.retention.usage); an operation that sets
    `unmetered` is counted but never refused (an admin raising a quota)."""

    conn: Connection
    appended: list[int] = field(default_factory=list)
    clock: Clock = _SYSTEM_CLOCK
    usage: dict[str, list[int]] = field(default_factory=dict)
    unmetered: bool = False

    def _count(self, workspace: str, entries: int, size: int) -> None:
        used = self.usage.get(workspace)
        if used is None:
            self.usage[workspace] = [entries, size]
        else:
            used[0] += entries
            used[1] += size

    def __post_init__(self) -> None:
        self.cursor: Any = driver_cursor(self.conn)
        self._sqlite = self.conn.dialect.name == "sqlite"
        # What store functions run on when handed this transaction.
        self.fast = Cursor(self.cursor, self.conn)

    def append(
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
        now = self.clock.now()
        text = _json(data)
        self._count(workspace, 1, len(text))
        params = {
            "event_id": event_id or uuid7_hex(),
            "workspace": workspace,
            "type": type,
            "name": name,
            "session_id": session_id,
            "occurred_at": occurred_at,
            # SQLAlchemy's own SQLite forms for DateTime and JSON, so reads decode them.
            "recorded_at": _sqlite_time(now) if self._sqlite else now,
            "data": text if self._sqlite else Jsonb(text, dumps=_as_is),
        }
        seq = int(_APPEND.execute(self.cursor, self.conn.dialect, params).fetchone()[0])
        self.appended.append(seq)
        return seq

    def append_many(
        self,
        type: str,
        workspace: str,
        entries: Sequence[tuple[str | None, str | None, str | None, str]],
        event_ids: Sequence[str | None] = (),
    ) -> int:
        """Append a batch of entries in one statement and return the last `seq`.

        Each entry is (session_id, occurred_at, name, data as JSON text): the
        caller serialises the data (with orjson, where it can also check it),
        so a batch of a thousand costs one executemany. Ids are `event_ids`
        where given (a natural key), else one random prefix plus the entry's
        index in the batch."""
        if not entries:
            return 0
        now = self.clock.now()
        self._count(workspace, len(entries), sum(len(e[3]) for e in entries))
        recorded_at: Any = _sqlite_time(now) if self._sqlite else now
        prefix = uuid7_hex()
        ids = [(event_ids[i] if i < len(event_ids) else None) or f"{prefix}-{i}" for i in range(len(entries))]
        if self._sqlite:
            # SQLite's parameters are positional: one tuple per row, in
            # APPEND_COLUMNS order, with no dict built (or reordered) per row.
            _insert_sqlite(
                self.cursor,
                [
                    (ids[i], workspace, type, name, session_id, occurred_at, recorded_at, data)
                    for i, (session_id, occurred_at, name, data) in enumerate(entries)
                ],
            )
        else:
            rows: list[Mapping[str, Any]] = [
                {
                    "event_id": ids[i],
                    "workspace": workspace,
                    "type": type,
                    "name": name,
                    "session_id": session_id,
                    "occurred_at": occurred_at,
                    "recorded_at": recorded_at,
                    "data": Jsonb(data, dumps=_as_is),
                }
                for i, (session_id, occurred_at, name, data) in enumerate(entries)
            ]
            _APPEND_MANY.executemany(self.cursor, self.conn.dialect, rows)
        # Appends are serialised (one writer; the advisory lock on PostgreSQL),
        # so the highest seq is this batch's last. The writer only needs the
        # highest appended seq, to wake watchers after the commit.
        seq = int(_LAST_SEQ.execute(self.cursor, self.conn.dialect, {}).fetchone()[0])
        self.appended.append(seq)
        return seq

    def append_entries(self, workspace: str, entries: Sequence[Entry]) -> Sequence[int]:
        """Append entries of mixed types in one statement, in order, and return
        their seqs (for writers that buffer an operation's entries, see
        service.domain.tracer.timeline). Generated ids are one random prefix
        plus the entry's index, as in `append_many`."""
        if not entries:
            return ()
        now = self.clock.now()
        self._count(workspace, len(entries), sum(len(e[5]) for e in entries))
        prefix = uuid7_hex()
        recorded_at: Any = _sqlite_time(now) if self._sqlite else now
        rows = [
            (event_id or f"{prefix}-{i}", workspace, type, name, session_id, occurred_at, recorded_at, data)
            for i, (type, session_id, occurred_at, name, event_id, data) in enumerate(entries)
        ]
        seqs: Sequence[int]
        if self._sqlite:
            _insert_sqlite(self.cursor, rows)
            # One writer, AUTOINCREMENT: the rows took consecutive seqs up to the highest.
            last = int(_LAST_SEQ.execute(self.cursor, self.conn.dialect, {}).fetchone()[0])
            seqs = range(last - len(entries) + 1, last + 1)
        else:
            self.cursor.executemany(
                _APPEND_RETURNING_PG,
                [(*row[:-1], Jsonb(row[-1], dumps=_as_is)) for row in rows],
                returning=True,
            )
            found = [int(self.cursor.fetchone()[0])]
            while self.cursor.nextset():
                found.append(int(self.cursor.fetchone()[0]))
            seqs = found
        self.appended.append(seqs[-1])
        return seqs


# What a store function runs in: the write transaction, or a read's connection.
Db = Tx | Connection


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


def existing_event_ids(conn: Connection, event_ids: Sequence[str]) -> set[str]:
    """Which of `event_ids` the log holds (natural keys: a resend is recognised)."""
    found: set[str] = set()
    for start in range(0, len(event_ids), 500):
        chunk = list(event_ids[start : start + 500])
        found.update(
            conn.execute(select(log_entries.c.event_id).where(log_entries.c.event_id.in_(chunk))).scalars()
        )
    return found


def head(conn: Connection) -> int:
    """The highest `seq` committed so far (0 for an empty log)."""
    return int(conn.execute(select(func.coalesce(func.max(log_entries.c.seq), 0))).scalar_one())


def read_after(
    conn: Connection,
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
    rows = conn.execute(q.order_by(log_entries.c.seq).limit(limit))
    return [entry_from_row(r) for r in rows]
