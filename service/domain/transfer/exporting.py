"""`agentplane export`: the log (and, for a whole log, the projections) of
one consistent moment, written as NDJSON (see export_format)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from service.base.errors import FailedPrecondition
from service.domain.transfer.export_format import Header, end_line, entry_lines, row_line
from service.domain.transfer.reasons import TransferReason
from service.store.database import describe_database
from service.store.transfer.database_facts import newest_migration, schema_version
from service.store.transfer.snapshot_reads import projection_tables, snapshot

# Called as the export goes: entries written, rows written, and the share of
# the seq range done (0 to 1).
Progress = Callable[[int, int, float], None]


@dataclass(frozen=True)
class Exported:
    header: Header
    entries: int
    rows: int


def export(
    url: str,
    out: BinaryIO,
    *,
    workspace: str | None = None,
    from_seq: int | None = None,
    to_seq: int | None = None,
    progress: Progress | None = None,
) -> Exported:
    """Write the entries with `from_seq <= seq <= to_seq` (of `workspace`, or
    every one); with no range, the projection rows after them, so that an
    import rebuilds every record as it is here."""
    with snapshot(url) as snap:
        head = snap.head()
        schema, newest = schema_version(snap.conn), newest_migration()
        if schema != newest:
            raise FailedPrecondition(
                f"{describe_database(url)} is at schema {schema or 'none'}, this agentplane writes {newest}: "
                "start `agentplane serve` on it once (it migrates on start), or export with the version that wrote it",
                reason=TransferReason.SCHEMA_MISMATCH,
            )
        after = max((from_seq or 1) - 1, 0)
        upto = head if to_seq is None else min(to_seq, head)
        header = Header(
            schema=schema,
            workspace=workspace,
            from_seq=after + 1,
            to_seq=upto,
            projections=from_seq is None and to_seq is None,
            seq_high=snap.seq_high(),
            source=describe_database(url),
            exported_at=datetime.now(UTC).isoformat(),
        )
        out.write(header.line())
        span = max(upto - after, 1)
        entries = rows = 0
        for page in snap.entries(workspace, after, upto):
            out.write(entry_lines(page))
            entries += len(page)
            if progress:
                progress(entries, rows, (page[-1][0] - after) / span)
        if header.projections:
            for table in projection_tables():
                for values in snap.rows(table, workspace):
                    out.write(row_line(table.name, values))
                    rows += 1
                    if progress and rows % 5_000 == 0:
                        progress(entries, rows, 1.0)
        out.write(end_line(entries, rows))
        if progress:
            progress(entries, rows, 1.0)
    return Exported(header, entries, rows)
