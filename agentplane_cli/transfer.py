"""`agentplane export` and `agentplane import`: the log (and the records it
produced) as NDJSON, from one database into another, e.g. from the embedded
SQLite file to PostgreSQL.

Exit status: 0 done, 1 refused or failed (the reason on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

from agentplane_cli.progress import Progress
from service.base.config import Settings
from service.base.errors import DomainError
from service.domain.transfer.exporting import export
from service.domain.transfer.importing import import_file
from service.store.database import describe_database, normalize_url, sqlite_path
from service.store.store import Store

_CHUNK = 1 << 20


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    url_help = "SQLAlchemy URL (AGENTPLANE_DATABASE_URL, default a SQLite file)"
    exp = sub.add_parser("export", help="write the log (and the records it produced) as NDJSON")
    exp.add_argument("--database-url", help=f"the database to read: {url_help}")
    exp.add_argument("--workspace", help="only this workspace (default: every one)")
    exp.add_argument("--from-seq", type=int, metavar="A", help="only entries with seq >= A (the log alone)")
    exp.add_argument("--to-seq", type=int, metavar="B", help="only entries with seq <= B (the log alone)")
    exp.add_argument("-o", "--output", type=Path, metavar="FILE", help="write to FILE (default: stdout)")
    imp = sub.add_parser("import", help="write an export into this database (a second time adds nothing)")
    imp.add_argument("--database-url", help=f"the database to write: {url_help}")
    imp.add_argument("file", help="a file `agentplane export` wrote (- for stdin)")


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[BinaryIO]:
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    partial = Path(f"{path}.partial")
    try:
        with open(partial, "wb", buffering=_CHUNK) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)


def _export(settings: Settings, args: argparse.Namespace, err: TextIO) -> int:
    url = normalize_url(settings.database_url)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        print(f"agentplane export: no database at {path.resolve()}", file=err)
        return 1
    progress = Progress(err)

    def report(entries: int, rows: int, share: float) -> None:
        progress.show(f"export: {entries:,} entries, {rows:,} rows ({100 * share:.0f}% of the log)")

    with _output(args.output) as out:
        done = export(
            url, out, workspace=args.workspace, from_seq=args.from_seq, to_seq=args.to_seq, progress=report
        )
    progress.done()
    what = f"seqs {done.header.from_seq}..{done.header.to_seq}" + (
        f" of workspace {args.workspace}" if args.workspace else ""
    )
    rows = (
        f" and {done.rows:,} rows"
        if done.header.projections
        else " (the log alone: a seq range carries no rows)"
    )
    print(f"Exported {done.entries:,} entries{rows} ({what}) from {describe_database(url)}", file=err)
    return 0


class _CountingLines:
    """The file's lines, counting the bytes read (for the progress line)."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.read = 0

    def __iter__(self) -> Iterator[bytes]:
        for line in self.f:
            self.read += len(line)
            yield line


async def _import_async(url: str, source: BinaryIO, size: int | None, err: TextIO) -> int:
    lines = _CountingLines(source)
    progress = Progress(err)

    def report(entries: int, rows: int) -> None:
        share = f" ({100 * lines.read // size}%)" if size else ""
        progress.show(f"import: {entries:,} entries, {rows:,} rows{share}")

    store = Store(url)
    await store.open()
    try:
        done = await import_file(store, lines, report)
    finally:
        progress.done()
        await store.close()
    print(
        f"Imported into {describe_database(url)}: {done.entries_written:,} of {done.entries_read:,} entries and "
        f"{done.rows_written:,} of {done.rows_read:,} rows written (the rest were there already)",
        file=err,
    )
    return 0


def _import(settings: Settings, args: argparse.Namespace, err: TextIO) -> int:
    url = normalize_url(settings.database_url)
    if args.file == "-":
        return asyncio.run(_import_async(url, sys.stdin.buffer, None, err))
    path = Path(args.file)
    if not path.is_file():
        print(f"agentplane import: no file at {path}", file=err)
        return 1
    with open(path, "rb", buffering=_CHUNK) as f:
        return asyncio.run(_import_async(url, f, path.stat().st_size, err))


def run(settings: Settings, args: argparse.Namespace, err: TextIO | None = None) -> int:
    err = err or sys.stderr
    try:
        return (_export if args.command == "export" else _import)(settings, args, err)
    except DomainError as exc:
        print(f"agentplane {args.command}: {exc}", file=err)
        return 1
    except BrokenPipeError:
        # The reader of stdout stopped (`| head`): that ends the export, quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
