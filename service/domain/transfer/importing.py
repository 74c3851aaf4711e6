"""`agentplane import`: an export file written into this database.

The log entries go in at their own seq, and the projections (sessions,
tasks, turns, verdicts, runs, channels, messages, executions, tool calls,
keys, … every table that has a workspace) are rebuilt from the rows the
export carries: the state each record had at the export's moment, which is
exactly what the source's routes answered. Replaying entries through the
families' write functions could not do that: entries are announcements (a
task's view, a session's status), not every column a projection keeps
(lease token hashes, activity counters, the server times a write took).

Pages of entries and of rows are each one operation of the group-commit
writer, so an import is many small transactions: one cut short (a full
disk, Ctrl-C) leaves whole pages, and importing the file again completes
it, since what is there is skipped (entries by seq and event id, rows by
primary key).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table

from service.base.errors import FailedPrecondition, InvalidArgument
from service.domain.transfer.export_format import End, Header, Row, read_header, read_items
from service.domain.transfer.reasons import TransferReason
from service.store.log import Tx
from service.store.store import Store
from service.store.transfer.database_facts import known_revisions
from service.store.transfer.import_writes import (
    ImportEntry,
    SeqTaken,
    advance_log_sequence,
    insert_entries,
    insert_rows,
)
from service.store.transfer.snapshot_reads import projection_tables

# Entries or rows written per operation, and operations queued at once.
PAGE = 2_000
IN_FLIGHT = 2

# Called after each page: entries and rows read from the file so far.
Progress = Callable[[int, int], None]


@dataclass
class Imported:
    header: Header
    # Read from the file, and written (the others were already there).
    entries_read: int = 0
    entries_written: int = 0
    rows_read: int = 0
    rows_written: int = 0


def _write_entries(page: list[ImportEntry]) -> Callable[[Tx], int]:
    def op(tx: Tx) -> int:
        try:
            written = insert_entries(tx, page)
        except SeqTaken as taken:
            raise FailedPrecondition(
                f"seq {taken.seq} (entry {taken.event_id}) already belongs to entry {taken.held_by} here: "
                "import into a new database, or one whose log does not use the file's seqs",
                reason=TransferReason.SEQ_TAKEN,
            ) from None
        advance_log_sequence(tx)
        return written

    return op


def _write_rows(table: Table, page: list[dict[str, Any]]) -> Callable[[Tx], int]:
    return lambda tx: insert_rows(tx, table, page)


class _Refused(Exception):
    """A page not written because one before it was refused."""


class _InOrder:
    """Pages run by the writer in the order queued; once one is refused, the
    ones queued behind it write nothing (they fail with _Refused)."""

    def __init__(self) -> None:
        self.refused = False

    def guard(self, op: Callable[[Tx], int]) -> Callable[[Tx], int]:
        def guarded(tx: Tx) -> int:
            if self.refused:
                raise _Refused
            try:
                return op(tx)
            except Exception:
                self.refused = True
                raise

        return guarded


def _pages(items: Iterator[Any], tables: dict[str, Table]) -> Iterator[tuple[str, Any, list[Any]]]:
    """Consecutive items grouped into pages: ("entries", None, entries),
    ("rows", table, rows) and, last, ("end", End, [])."""
    kind: str | None = None
    table: Table | None = None
    page: list[Any] = []
    for item in items:
        if isinstance(item, End):
            if page:
                yield (kind or "", table, page)
            yield ("end", item, [])
            return
        if isinstance(item, Row):
            found = tables.get(item.table)
            if found is None:
                raise InvalidArgument(
                    f"the file holds rows of table {item.table!r}, which this agentplane does not have "
                    "(exported by a newer version?)",
                    reason=TransferReason.UNKNOWN_TABLE,
                )
            if page and (kind != "rows" or found is not table or len(page) >= PAGE):
                yield (kind or "", table, page)
                page = []
            kind, table = "rows", found
            page.append(item.values)
        else:
            if page and (kind != "entries" or len(page) >= PAGE):
                yield (kind or "", table, page)
                page = []
            kind, table = "entries", None
            page.append(item)
    if page:
        yield (kind or "", table, page)


async def import_file(store: Store, lines: Iterable[bytes], progress: Progress | None = None) -> Imported:
    """Write the export read from `lines` (the header first) into `store`.

    Pages go to the writer as soon as they are read, with up to IN_FLIGHT
    waiting: the next page is parsed while the last one commits (its fsync).
    A refused page stops the import: nothing after it is written."""
    lines = iter(lines)
    done = Imported(read_header(next(lines, b"")))
    if done.header.schema not in known_revisions():
        raise FailedPrecondition(
            f"the file was exported at schema {done.header.schema}, which this agentplane does not know "
            "(a newer version wrote it): import it with that version",
            reason=TransferReason.SCHEMA_MISMATCH,
        )
    tables = {t.name: t for t in projection_tables()}
    await store.write(lambda tx: advance_log_sequence(tx, done.header.seq_high))
    end: End | None = None
    pending: deque[tuple[asyncio.Future[int], str]] = deque()
    order = _InOrder()

    async def settle(keep: int) -> None:
        while len(pending) > keep:
            future, kind = pending.popleft()
            written = await future
            if kind == "entries":
                done.entries_written += written
            else:
                done.rows_written += written

    try:
        for kind, table, page in _pages(read_items(lines), tables):
            if kind == "end":
                end = table
                continue
            if kind == "entries":
                pending.append((store.enqueue(order.guard(_write_entries(page))), kind))
                done.entries_read += len(page)
            else:
                pending.append((store.enqueue(order.guard(_write_rows(table, page))), kind))
                done.rows_read += len(page)
            await settle(IN_FLIGHT)
            if progress:
                progress(done.entries_read, done.rows_read)
    finally:
        # Whatever was queued is written (or refused) before the import returns.
        await asyncio.gather(*(future for future, _ in pending), return_exceptions=True)
    await settle(0)
    if end is None or (end.entries, end.rows) != (done.entries_read, done.rows_read):
        raise InvalidArgument(
            f"the file stops before its end ({done.entries_read} entries and {done.rows_read} rows read"
            + (f", {end.entries} and {end.rows} announced" if end else "")
            + "): what was read is imported; import the whole file again to complete it",
            reason=TransferReason.EXPORT_TRUNCATED,
        )
    return done
