"""Reading and saving the exporter's cursor, and reading what it exports.

The exporter runs in a process of its own (service.app.otlp_export) and
owns its row: nobody else writes it, so a save is a plain UPDATE (or the
first INSERT) in a short transaction of its own. The cursor is bookkeeping,
not a fact of the log, so it is not appended to the log (an appended entry
would itself be exported, forever)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from service.store.fastpath import driver_cursor
from service.store.otlp_export.tables import otlp_export_cursors as t


@dataclass
class ExportCursor:
    target: str
    seq: int = 0
    spans_exported: int = 0
    spans_rejected: int = 0
    batches_skipped: int = 0
    retries: int = 0
    retention_gaps: int = 0


_COUNTERS = ("seq", "spans_exported", "spans_rejected", "batches_skipped", "retries", "retention_gaps")


def load(conn: Connection, target: str) -> ExportCursor | None:
    row = conn.execute(select(t).where(t.c.target == target)).first()
    if row is None:
        return None
    return ExportCursor(target, *(int(getattr(row, name)) for name in _COUNTERS))


def load_all(conn: Connection) -> list[ExportCursor]:
    rows = conn.execute(select(t).order_by(t.c.target))
    return [ExportCursor(r.target, *(int(getattr(r, name)) for name in _COUNTERS)) for r in rows]


def save(conn: Connection, cursor: ExportCursor) -> None:
    values: dict[str, Any] = {name: getattr(cursor, name) for name in _COUNTERS}
    values["updated_at"] = datetime.now(UTC)
    if conn.execute(update(t).where(t.c.target == cursor.target).values(values)).rowcount == 0:
        conn.execute(insert(t).values(target=cursor.target, **values))


@dataclass(frozen=True, slots=True)
class ExportRow:
    seq: int
    event_id: str
    type: str
    name: str | None
    workspace: str
    data: str


def log_head(conn: Connection) -> int:
    cur = driver_cursor(conn)
    try:
        cur.execute("SELECT COALESCE(MAX(seq), 0) FROM log_entries")
        return int(cur.fetchone()[0])
    finally:
        cur.close()


def read_exportable(
    conn: Connection, after: int, kinds: Mapping[str, Sequence[str] | None], limit: int
) -> tuple[list[ExportRow], int]:
    """The entries after `after` of the kinds given (type -> names, None for
    any name), oldest first, at most `limit`; and the position read up to:
    the last entry's when the page is full, else the log head seen before
    the read (every entry up to it is committed: appends commit in `seq`
    order), so entries of other kinds move the cursor on too."""
    head = log_head(conn)
    if head <= after:
        return [], after
    sqlite = conn.dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"
    terms: list[str] = []
    params: list[Any] = [after, head]
    anyname = [type for type, names in kinds.items() if names is None]
    if anyname:
        terms.append(f"type IN ({', '.join([mark] * len(anyname))})")
        params.extend(anyname)
    for type, names in kinds.items():
        if names:
            terms.append(f"(type = {mark} AND name IN ({', '.join([mark] * len(names))}))")
            params.extend([type, *names])
    data = "data" if sqlite else "data::text"
    sql = (
        f"SELECT seq, event_id, type, name, workspace, {data} FROM log_entries "
        f"WHERE seq > {mark} AND seq <= {mark} AND ({' OR '.join(terms) or 'FALSE'}) "
        f"ORDER BY seq LIMIT {mark}"
    )
    cur = driver_cursor(conn)
    try:
        cur.execute(sql, (*params, limit))
        rows = [ExportRow(*r) for r in cur.fetchall()]
    finally:
        cur.close()
    return rows, rows[-1].seq if len(rows) == limit else head
