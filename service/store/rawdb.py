"""Running prebuilt statements on the driver's cursor, and the JSON column
values that go with it (see service.store.raw for why the cursor).

SQLAlchemy's JSON type does not apply on this path, so values are converted
here: SQLite takes and returns JSON text, psycopg takes `Jsonb` and returns
decoded values. None is SQL NULL both ways.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar

import orjson
from psycopg.types.json import Jsonb
from sqlalchemy import Connection, bindparam, insert, select, update

from service.store.log import Tx
from service.store.raw import RawStatement, driver_cursor


class Keyed(Protocol):
    """A record of a projection table: its row is (workspace, id)."""

    id: str


R = TypeVar("R", bound=Keyed)


class RawDb:
    """A cursor in the current transaction, with the dialect to compile for."""

    __slots__ = ("_dialect", "cursor", "sqlite")

    def __init__(self, cursor: Any, conn: Connection) -> None:
        self.cursor = cursor
        self._dialect = conn.dialect
        self.sqlite = conn.dialect.name == "sqlite"

    @classmethod
    def of(cls, conn: Connection) -> RawDb:
        """For a read (`Store.read`): a new cursor of the connection."""
        return cls(driver_cursor(conn), conn)

    @classmethod
    def of_tx(cls, tx: Tx) -> RawDb:
        """For a write operation: the writer's cursor, in the operation's savepoint."""
        return cls(tx.cursor, tx.conn)

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

    def _from_row(self, db: RawDb, row: Sequence[Any]) -> R:
        json = self._json
        return self._record(
            *(db.json_out(v) if n in json else v for n, v in zip(self.fields, row, strict=True))
        )

    def _param(self, db: RawDb, record: R, name: str) -> Any:
        value = getattr(record, name)
        return db.json_in(value) if name in self._json else value

    def get(self, db: RawDb, workspace: str, id: str) -> R | None:
        row = db.one(self._get, {"workspace": workspace, "id": id})
        return None if row is None else self._from_row(db, row)

    def read(self, db: RawDb, stmt: RawStatement, params: dict[str, Any]) -> list[R]:
        return [self._from_row(db, row) for row in db.all(stmt, params)]

    def insert(self, db: RawDb, workspace: str, record: R, **extra: Any) -> None:
        params = {n: self._param(db, record, n) for n in self.fields}
        db.run(self._insert, {**params, **extra, "workspace": workspace})

    def save(self, db: RawDb, workspace: str, record: R, **extra: Any) -> None:
        """Write the mutable columns back to the record's row: from `extra` for
        the columns it names (those that are not part of the record), else
        from the record."""
        params: dict[str, Any] = {"workspace": workspace, "id": record.id}
        for key, name, is_json in self._save_plan:
            if name in extra:
                params[key] = extra[name]
            else:
                value = getattr(record, name)
                params[key] = db.json_in(value) if is_json else value
        db.run(self._save, params)
