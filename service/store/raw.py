"""Hot statements run straight on the driver's cursor.

A Core statement is compiled once per dialect; executing it then skips
SQLAlchemy's per-execute work (context setup, result proxies, events), which
costs several times a small SQLite statement. Only the statements every
request runs use this: the log append and the session lookup of a write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Dialect
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
