"""`agentplane db backup|restore|status`: the configured database
(AGENTPLANE_DATABASE_URL or --database-url), while a server runs on it.

Exit status: 0 done, 1 refused or failed (the reason on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from agentplane_cli.progress import Progress
from service.base.config import Settings
from service.store.database import describe_database, migrate, normalize_url, sqlite_path
from service.store.transfer import backups
from service.store.transfer.database_facts import (
    DatabaseFacts,
    database_facts,
    known_revisions,
    newest_migration,
)
from service.store.transfer.snapshot_reads import snapshot


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("db", help="back up, restore and inspect the database (while the server runs)")
    p.add_argument("--database-url", help="SQLAlchemy URL (AGENTPLANE_DATABASE_URL, default a SQLite file)")
    commands = p.add_subparsers(dest="db_command", required=True)
    backup = commands.add_parser("backup", help="a consistent copy of the database, taken while it is in use")
    backup.add_argument(
        "path", type=Path, help="the file to write (SQLite: a database file; PostgreSQL: a pg_dump archive)"
    )
    backup.add_argument("--force", action="store_true", help="replace PATH if it exists")
    restore = commands.add_parser(
        "restore", help="replace the database with a backup, then migrate it forward"
    )
    restore.add_argument("path", type=Path, help="a file `agentplane db backup` wrote")
    restore.add_argument(
        "--force",
        action="store_true",
        help="restore even though a server has the database open (restart it after)",
    )
    commands.add_parser("status", help="schema version, sizes per table and workspace, log head, retention")


def _pages(progress: Progress, verb: str) -> backups.PageProgress:
    return lambda done, total: progress.show(
        f"{verb}: {done:,} of {total:,} pages ({100 * done // max(total, 1)}%)"
    )


def _backup(url: str, args: argparse.Namespace, out: TextIO) -> int:
    target: Path = args.path
    if target.exists() and not args.force:
        raise backups.BackupError(f"{target} exists: choose another path, or --force to replace it")
    progress = Progress()
    path = sqlite_path(url)
    if path is not None:
        if not path.exists():
            raise backups.BackupError(f"no database at {path.resolve()}")
        backups.sqlite_backup(path, target, _pages(progress, "backup"))
        progress.done()
        with snapshot(f"sqlite:///{target}") as copy:
            head = copy.head()
        print(f"Backed up {describe_database(url)} to {target}: integrity ok, log head {head}", file=out)
    else:
        backups.postgres_backup(url, target, verbose=progress.on)
        print(
            f"Backed up {describe_database(url)} to {target} (pg_dump custom format, archive checked)",
            file=out,
        )
    return 0


def _restore(url: str, args: argparse.Namespace, out: TextIO) -> int:
    source: Path = args.path
    if not source.exists():
        raise backups.BackupError(f"no backup at {source}")
    path = sqlite_path(url)
    if path is not None:
        problems = backups.integrity_problems(source)
        if problems:
            raise backups.BackupError(f"{source} is not a sound SQLite database: {'; '.join(problems[:5])}")
        version = backups.sqlite_schema_version(source)
    else:
        version = backups.postgres_archive_version(url, source)
    if version is not None and version not in known_revisions():
        raise backups.BackupError(
            f"{source} has schema {version}, which this agentplane does not know (a newer version made it): "
            "restore it with that version"
        )
    in_use = backups.sqlite_in_use(path) if path is not None else backups.connections_elsewhere(url) > 0
    if in_use and not args.force:
        raise backups.BackupError(
            f"a running process has {describe_database(url)} open (a server?): stop it first, "
            "or --force to restore under it (then restart it)"
        )
    progress = Progress()
    if path is not None:
        backups.sqlite_restore(source, path, _pages(progress, "restore"))
        progress.done()
    else:
        backups.postgres_restore(url, source, verbose=progress.on)
    migrate(url)
    with snapshot(url) as restored:
        head = restored.head()
    print(
        f"Restored {source} into {describe_database(url)}: schema {version or 'none'} -> {newest_migration()}, "
        f"log head {head}",
        file=out,
    )
    return 0


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(), file=out)


def print_status(url: str, facts: DatabaseFacts, out: TextIO) -> None:
    current = facts.schema or "none"
    state = (
        "up to date"
        if facts.schema == facts.newest
        else f"behind: the server migrates it to {facts.newest} on start"
    )
    print(f"database: {describe_database(url)} ({_size(facts.total_bytes)})", file=out)
    print(f"schema: {current} (newest {facts.newest}; {state})", file=out)
    print(
        f"log: head {facts.head}, oldest {facts.oldest_seq if facts.oldest_seq is not None else '-'}",
        file=out,
    )
    removed = [w for w in facts.workspaces if w.horizon_seq]
    print(
        f"retention: entries removed in {len(removed)} workspace(s), horizons below (policy: GET /v1/retention)"
        if removed
        else "retention: nothing removed (every entry is kept)",
        file=out,
    )
    print("", file=out)
    _table(
        [
            ["TABLE", "ROWS", "SIZE"],
            *[[t.name, f"{t.rows:,}", _size(t.bytes)] for t in sorted(facts.tables, key=lambda t: t.name)],
        ],
        out,
    )
    print("", file=out)
    _table(
        [
            ["WORKSPACE", "ENTRIES", "LOG DATA", "ROWS", "HORIZON"],
            *[
                [w.workspace, f"{w.entries:,}", _size(w.log_bytes), f"{w.rows:,}", f"{w.horizon_seq:,}"]
                for w in facts.workspaces
            ],
        ],
        out,
    )


def _status(url: str, _args: argparse.Namespace, out: TextIO) -> int:
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise backups.BackupError(f"no database at {path.resolve()}")
    with snapshot(url) as snap:
        facts = database_facts(snap.conn)
    print_status(url, facts, out)
    return 0


_COMMANDS = {"backup": _backup, "restore": _restore, "status": _status}


def run(settings: Settings, args: argparse.Namespace, out: TextIO | None = None) -> int:
    try:
        return _COMMANDS[args.db_command](normalize_url(settings.database_url), args, out or sys.stdout)
    except backups.BackupError as exc:
        print(f"agentplane db {args.db_command}: {exc}", file=sys.stderr)
        return 1
