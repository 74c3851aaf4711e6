"""Writing an export into a database: log entries at their own seq, and
projection rows as they were, each once.

Entries keep their seq, so every position a record or a client holds
(channel message seqs, a task's latest event, a stream's cursor) means the
same entry in the new database; a seq the database already gives to
another entry is a conflict, never an overwrite. An entry already there
(same seq, same event id) and a row already there (same primary key) are
left alone: importing the same file twice adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from psycopg.types.json import Jsonb
from sqlalchemy import JSON, Column, DateTime, Table, bindparam, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from service.store.log import APPEND_COLUMNS, Tx

# An entry as imported: (seq, event_id, workspace, type, name, session_id,
# occurred_at, recorded_at as RFC 3339 text, data).
ImportEntry = tuple[int, str, str, str, str | None, str | None, str | None, str, dict[str, Any]]

# The log's own columns, with the source's seq kept.
_COLUMNS = ("seq", *APPEND_COLUMNS)
_INSERT_SQLITE = f"INSERT INTO log_entries ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_INSERT_PG = f"INSERT INTO log_entries ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))})"


def _as_is(text: str) -> str:
    return text


def _jsonb(value: Any) -> Jsonb:
    """A JSONB parameter serialised by orjson (psycopg's default is the
    standard library's json, several times slower)."""
    return Jsonb(orjson.dumps(value).decode(), dumps=_as_is)


def _utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _sqlite_time(text: str) -> str:
    """SQLAlchemy's SQLite form of a UTC time (`YYYY-MM-DD HH:MM:SS.ffffff`),
    cut from the export's own form without parsing it when it is UTC with
    microseconds (as every export writes it)."""
    if len(text) == 32 and text.endswith("+00:00") and text[10] == "T":
        return f"{text[:10]} {text[11:26]}"
    return _utc(text).isoformat(" ", "microseconds")[:26]


class SeqTaken(Exception):
    """A seq of the import belongs to another entry in this database."""

    def __init__(self, seq: int, event_id: str, held_by: str) -> None:
        super().__init__(f"seq {seq} ({event_id}) is taken by {held_by}")
        self.seq, self.event_id, self.held_by = seq, event_id, held_by


def taken_seqs(tx: Tx, first: int, last: int) -> dict[int, str]:
    """The event ids the database holds at seqs `first..last`."""
    mark = "?" if tx.conn.dialect.name == "sqlite" else "%s"
    tx.cursor.execute(
        f"SELECT seq, event_id FROM log_entries WHERE seq >= {mark} AND seq <= {mark}", (first, last)
    )
    return {int(seq): event_id for seq, event_id in tx.cursor.fetchall()}


def insert_entries(tx: Tx, entries: Sequence[ImportEntry]) -> int:
    """Insert the entries not yet present; returns how many were inserted.
    Raises SeqTaken for a seq held by another entry (the caller's savepoint
    rolls the page back)."""
    if not entries:
        return 0
    held = taken_seqs(tx, entries[0][0], entries[-1][0])
    new: list[ImportEntry] = []
    for entry in entries:
        seq, event_id = entry[0], entry[1]
        found = held.get(seq)
        if found is None:
            new.append(entry)
        elif found != event_id:
            raise SeqTaken(seq, event_id, found)
    if not new:
        return 0
    if tx.conn.dialect.name == "sqlite":
        tx.cursor.executemany(
            _INSERT_SQLITE, [(*e[:7], _sqlite_time(e[7]), orjson.dumps(e[8]).decode()) for e in new]
        )
    else:
        tx.cursor.executemany(_INSERT_PG, [(*e[:7], _utc(e[7]), _jsonb(e[8])) for e in new])
    tx.appended.append(max(e[0] for e in new))
    return len(new)


def advance_log_sequence(tx: Tx, at_least: int = 0) -> None:
    """Let new appends continue after the highest seq imported, and after
    `at_least` (the highest the source ever handed out: a seq a client saw
    there, even of an entry deleted since, is never given to another entry).
    SQLite's AUTOINCREMENT follows explicit seqs by itself; PostgreSQL's
    sequence must be moved. Neither ever goes back."""
    if tx.conn.dialect.name == "sqlite":
        if at_least:
            tx.cursor.execute(
                "UPDATE sqlite_sequence SET seq = ? WHERE name = 'log_entries' AND seq < ?",
                (at_least, at_least),
            )
            tx.cursor.execute("SELECT 1 FROM sqlite_sequence WHERE name = 'log_entries'")
            if tx.cursor.fetchone() is None:
                tx.cursor.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES ('log_entries', ?)", (at_least,)
                )
        return
    name = tx.conn.execute(text("SELECT pg_get_serial_sequence('log_entries', 'seq')")).scalar_one()
    tx.conn.execute(
        text(
            "SELECT setval(:name, greatest((SELECT max(seq) FROM log_entries), "
            f"(SELECT last_value FROM {name}), :at_least))"
        ),
        {"name": name, "at_least": at_least},
    )


def _converter(column: Column[Any], sqlite: bool) -> Callable[[Any], Any]:
    """How a column takes a value of the file, on the driver's cursor (where
    SQLAlchemy's types do not apply): JSON as text or Jsonb (None as SQLAlchemy
    binds it: SQL NULL only for `none_as_null` columns), times as the column
    stores them."""
    kind = column.type
    if isinstance(kind, JSON):
        keep_null = kind.none_as_null

        def json_value(value: Any) -> Any:
            if value is None and keep_null:
                return None
            return orjson.dumps(value).decode() if sqlite else _jsonb(value)

        return json_value
    if isinstance(kind, DateTime):
        as_stored = _sqlite_time if sqlite else _utc
        return lambda value: as_stored(value) if isinstance(value, str) else value
    return lambda value: value


_Inserter = tuple[str, list[tuple[str, Callable[[Any], Any]]]]
_INSERTERS: dict[tuple[str, str, tuple[str, ...]], _Inserter] = {}


def _inserter(tx: Tx, table: Table, names: tuple[str, ...]) -> _Inserter:
    """INSERT … ON CONFLICT DO NOTHING of the columns `names` (those the file
    has: columns it does not know keep their defaults), compiled once, with
    each column's converter."""
    dialect = tx.conn.dialect
    key = (dialect.name, table.name, names)
    found = _INSERTERS.get(key)
    if found is None:
        insert = sqlite_insert if dialect.name == "sqlite" else pg_insert
        columns = [table.c[name] for name in names]
        statement = insert(table).values({c.key: bindparam(c.key) for c in columns}).on_conflict_do_nothing()
        compiled: Any = statement.compile(dialect=dialect)
        order = compiled.positiontup if compiled.positional else [c.key for c in columns]
        convert = {c.key: _converter(c, dialect.name == "sqlite") for c in columns}
        found = _INSERTERS[key] = (str(compiled), [(name, convert[name]) for name in order])
    return found


def insert_rows(tx: Tx, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    """Insert the rows whose primary key is not taken yet; returns how many were inserted."""
    inserted = 0
    known = set(table.c.keys())
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        by_columns.setdefault(tuple(name for name in row if name in known), []).append(row)
    sqlite = tx.conn.dialect.name == "sqlite"
    for names, group in by_columns.items():
        sql, params = _inserter(tx, table, names)
        if sqlite:
            tx.cursor.executemany(
                sql, [tuple(convert(row[name]) for name, convert in params) for row in group]
            )
        else:
            tx.cursor.executemany(
                sql, [{name: convert(row[name]) for name, convert in params} for row in group]
            )
        # The rows changed, summed over the statements: those ignored as present count 0.
        inserted += max(int(tx.cursor.rowcount), 0)
    return inserted
