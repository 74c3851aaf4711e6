"""The store's fast path: prebuilt statements run straight on the driver's cursor.

Why: SQLAlchemy's per-execute work (context setup, result proxies, events)
costs several times a small SQLite statement, and every request runs a few.
A Core statement is compiled here once per dialect (`RawStatement`), then
each execution is one driver call. The log append, the session lookup of a
write, the projections of the executions and AGH families, channels and the
tracer's ingest and verdicts all run this way.

Store functions take what the domain has, the write transaction (`Tx`) or a
read's connection (service.store.log.Db), and find their cursor with
`cursor_of`: the transaction keeps one for all of an operation's statements,
a read gets a new one. The domain never handles a cursor.

SQLAlchemy's JSON type does not apply on this path, so JSON values are
converted here (`Cursor.json_in` / `json_out`): SQLite takes and returns
JSON text, psycopg takes `Jsonb` and returns decoded values. None is SQL
NULL both ways.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any, Generic, Protocol, TypeVar

import orjson
from psycopg.types.json import Jsonb
from sqlalchemy import Connection, Dialect, bindparam, insert, select, update
from sqlalchemy.sql import ClauseElement

# Parameters as the driver takes them: a tuple in the statement's order
# (SQLite), or the mapping itself (psycopg's named parameters).
Arrange = Callable[[Mapping[str, Any]], Any]


def _arrange(order: Sequence[str] | None) -> Arrange:
    if not order:
        return lambda params: params
    if len(order) == 1:
        (name,) = order
        return lambda params: (params[name],)
    # itemgetter builds the tuple in C: 4x faster than a generator.
    return itemgetter(*order)


class RawStatement:
    def __init__(self, stmt: ClauseElement) -> None:
        self._stmt = stmt
        self._compiled: dict[str, tuple[str, Arrange]] = {}

    def _for(self, dialect: Dialect) -> tuple[str, Arrange]:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled: Any = self._stmt.compile(dialect=dialect)  # an SQLCompiler
            positional = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
            found = self._compiled[dialect.name] = (str(compiled), _arrange(positional))
        return found

    def execute(self, cursor: Any, dialect: Dialect, params: Mapping[str, Any]) -> Any:
        sql, arrange = self._for(dialect)
        cursor.execute(sql, arrange(params))
        return cursor

    def executemany(self, cursor: Any, dialect: Dialect, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement once per row (one driver call for all of them)."""
        sql, arrange = self._for(dialect)
        cursor.executemany(sql, [arrange(r) for r in rows])


def driver_cursor(conn: Connection) -> Any:
    """A cursor of the DBAPI connection under `conn` (in its transaction)."""
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


class Cursor:
    """A driver cursor in the current transaction, with the dialect to compile for."""

    __slots__ = ("_dialect", "cursor", "sqlite")

    def __init__(self, cursor: Any, conn: Connection) -> None:
        self.cursor = cursor
        self._dialect = conn.dialect
        self.sqlite = conn.dialect.name == "sqlite"

    def run(self, stmt: RawStatement, params: dict[str, Any]) -> int:
        """Execute; returns the number of rows changed."""
        return int(stmt.execute(self.cursor, self._dialect, params).rowcount)

    def one(self, stmt: RawStatement, params: dict[str, Any]) -> Sequence[Any] | None:
        row: Sequence[Any] | None = stmt.execute(self.cursor, self._dialect, params).fetchone()
        return row

    def all(self, stmt: RawStatement, params: dict[str, Any]) -> list[Sequence[Any]]:
        return list(stmt.execute(self.cursor, self._dialect, params).fetchall())

    def json_in(self, value: Any) -> Any:
        """A JSON column parameter."""
        if value is None:
            return None
        return orjson.dumps(value).decode() if self.sqlite else Jsonb(value)

    def json_out(self, value: Any) -> Any:
        """A JSON column value as read."""
        if value is None or not self.sqlite:
            return value
        return orjson.loads(value)


class InTx(Protocol):
    """A write transaction (service.store.log.Tx): it keeps one cursor for all
    of an operation's statements."""

    @property
    def fast(self) -> Cursor: ...


def cursor_of(db: Connection | InTx) -> Cursor:
    """The cursor to run on: the write transaction's, or a new one of a read's connection."""
    if isinstance(db, Connection):
        return Cursor(driver_cursor(db), db)
    return db.fast


class Keyed(Protocol):
    """A record of a projection table: its row is (workspace, id)."""

    id: str


R = TypeVar("R", bound=Keyed)


class Projection(Generic[R]):
    """The prebuilt statements of a projection table keyed by (workspace, id),
    whose rows are read as records of `record` (a dataclass whose fields are
    column names, in order)."""

    def __init__(
        self,
        table: Any,
        record: type[R],
        *,
        json: Sequence[str],
        mutable: Sequence[str],
        extra: Sequence[str],
    ) -> None:
        """`json`: the JSON columns; `mutable`: the columns `save` writes;
        `extra`: columns written on insert but not part of the record."""
        self.table = table
        self._record = record
        self.fields: tuple[str, ...] = tuple(record.__dataclass_fields__)  # type: ignore[attr-defined]
        self._json = frozenset(json)
        self._mutable = tuple(mutable)
        # (parameter, column, is JSON) per column `save` writes: the hot loop of
        # every projection update.
        self._save_plan = tuple((f"v_{n}", n, n in self._json) for n in self._mutable)
        self.by_id = (table.c.workspace == bindparam("workspace")) & (table.c.id == bindparam("id"))
        self._get = self.select(self.by_id)
        inserted = ("workspace", *self.fields, *extra)
        self._insert = RawStatement(insert(table).values({n: bindparam(n) for n in inserted}))
        # A bind parameter may not share a SET column's name, hence the prefix.
        self._save = RawStatement(
            update(table).where(self.by_id).values({n: bindparam(f"v_{n}") for n in self._mutable})
        )

    def select(self, where: Any, *order_by: Any, limit: bool = False) -> RawStatement:
        """A statement reading records; `limit` takes `limit` and `offset`
        parameters (SQLite's LIMIT always comes with an OFFSET)."""
        stmt = select(*(self.table.c[n] for n in self.fields)).where(where).order_by(*order_by)
        if limit:
            stmt = stmt.limit(bindparam("limit")).offset(bindparam("offset"))
        return RawStatement(stmt)

    def _from_row(self, cur: Cursor, row: Sequence[Any]) -> R:
        json = self._json
        return self._record(
            *(cur.json_out(v) if n in json else v for n, v in zip(self.fields, row, strict=True))
        )

    def get(self, db: Connection | InTx, workspace: str, id: str) -> R | None:
        cur = cursor_of(db)
        row = cur.one(self._get, {"workspace": workspace, "id": id})
        return None if row is None else self._from_row(cur, row)

    def read(self, db: Connection | InTx, stmt: RawStatement, params: dict[str, Any]) -> list[R]:
        cur = cursor_of(db)
        return [self._from_row(cur, row) for row in cur.all(stmt, params)]

    def insert(self, db: Connection | InTx, workspace: str, record: R, **extra: Any) -> None:
        cur = cursor_of(db)
        json = self._json
        params = {
            n: cur.json_in(getattr(record, n)) if n in json else getattr(record, n) for n in self.fields
        }
        cur.run(self._insert, {**params, **extra, "workspace": workspace})

    def save(self, db: Connection | InTx, workspace: str, record: R, **extra: Any) -> None:
        """Write the mutable columns back to the record's row: from `extra` for
        the columns it names (those that are not part of the record), else
        from the record."""
        cur = cursor_of(db)
        params: dict[str, Any] = {"workspace": workspace, "id": record.id}
        for key, name, is_json in self._save_plan:
            if name in extra:
                params[key] = extra[name]
            else:
                value = getattr(record, name)
                params[key] = cur.json_in(value) if is_json else value
        cur.run(self._save, params)
