"""Backups of the whole database, taken while the server runs, and their
restore.

SQLite: the online backup API copies the pages inside one read transaction
held on the source from the first page to the last, so the copy is the
database as of the moment the backup began (every write committed before
it, none after) while the server goes on writing through WAL; it is written
to `PATH.partial`, checked (`PRAGMA integrity_check`) and only then renamed
to PATH. A restore copies the same way into the target (so a stale `-wal`
beside it can never be replayed over the restored pages).

PostgreSQL: `pg_dump --format=custom`, a snapshot of the database in one
transaction, which the server keeps serving through; `pg_restore` brings it
back. Both must be at least the server's major version (pg_dump refuses a
newer server), which is checked before anything is written.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text

from service.store.database import libpq_dsn

# Called as pages are copied: pages done, pages in all.
PageProgress = Callable[[int, int], None]
# Pages copied per step of the online backup.
_STEP_PAGES = 1024
# The byte of a WAL database's `-shm` file every open connection holds a
# shared lock on (SQLite's "DMS" lock, os_unix.c: UNIX_SHM_DMS).
_SHM_DMS_BYTE = 128


class BackupError(Exception):
    """A backup or restore that cannot be done, said for a person."""


# ------------------------------------------------------------------ SQLite


def integrity_problems(path: Path) -> list[str]:
    """`PRAGMA integrity_check` of a SQLite file: [] when it is sound."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        found = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    finally:
        conn.close()
    return [] if found == ["ok"] else found


def sqlite_schema_version(path: Path) -> str | None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        found: str = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        return found
    except (sqlite3.DatabaseError, TypeError):
        return None
    finally:
        conn.close()


def sqlite_in_use(path: Path) -> bool:
    """Whether another process has the SQLite database open (a server): in
    WAL mode each open connection keeps a shared lock on one byte of the
    `-shm` file, so a lock test on that byte tells."""
    shm = Path(f"{path}-shm")
    if not shm.exists():
        return False
    with open(shm, "rb+") as f:
        try:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _SHM_DMS_BYTE)
        except OSError:
            return True
        fcntl.lockf(f, fcntl.LOCK_UN, 1, _SHM_DMS_BYTE)
    return False


def _copy_pages(
    source: sqlite3.Connection, target: sqlite3.Connection, progress: PageProgress | None
) -> None:
    # A read transaction held across every step: the copy is one snapshot,
    # and writes by the server meanwhile (to the WAL) neither restart nor change it.
    source.execute("BEGIN")
    source.execute("SELECT count(*) FROM sqlite_master").fetchone()
    try:
        source.backup(
            target,
            pages=_STEP_PAGES,
            progress=(lambda _status, remaining, total: progress(total - remaining, total))
            if progress
            else None,
        )
    finally:
        source.rollback()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sqlite_backup(source: Path, target: Path, progress: PageProgress | None = None) -> None:
    """Copy the live database `source` to `target` (a new file), checked."""
    partial = Path(f"{target}.partial")
    partial.unlink(missing_ok=True)
    src, dst = _connect(source), sqlite3.connect(partial)
    try:
        _copy_pages(src, dst, progress)
        # A backup is one file: no `-wal` beside it to lose when it is moved.
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()
    problems = integrity_problems(partial)
    if problems:
        partial.unlink(missing_ok=True)
        raise BackupError(f"the copy failed its integrity check: {'; '.join(problems[:5])}")
    _sync(partial)
    os.replace(partial, target)
    _sync(target.parent)


def sqlite_restore(backup: Path, target: Path, progress: PageProgress | None = None) -> None:
    """Replace the database at `target` (or create it) with the backup's pages."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src, dst = _connect(backup), _connect(target)
    try:
        _copy_pages(src, dst, progress)
        # As the server runs it (the backup was kept in rollback-journal mode).
        dst.execute("PRAGMA journal_mode=WAL")
    finally:
        dst.close()
        src.close()


# -------------------------------------------------------------- PostgreSQL


def _major(version_text: str) -> int:
    found = re.search(r"(\d+)(?:\.\d+)?", version_text)
    if not found:
        raise BackupError(f"cannot read a version in {version_text!r}")
    return int(found.group(1))


def server_major(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10000
    finally:
        engine.dispose()


def postgres_tool(name: str, url: str) -> str:
    """The path of `pg_dump` or `pg_restore`, checked to be able to work
    with the server at `url` (its major version at least the server's)."""
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not installed: install the PostgreSQL client tools of the server's version "
            f"(Debian/Ubuntu: apt install postgresql-client-{server_major(url)})"
        )
    tool = _major(subprocess.run([found, "--version"], capture_output=True, text=True, check=True).stdout)
    server = server_major(url)
    if tool < server:
        raise BackupError(
            f"{found} is version {tool}, older than the server ({server}): "
            f"install postgresql-client-{server} (or newer)"
        )
    return found


def connections_elsewhere(url: str) -> int:
    """Sessions other than ours open on the database at `url` (servers)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


def _run(argv: list[str], verbose: bool) -> None:
    done = subprocess.run(
        argv, stdout=subprocess.DEVNULL, stderr=None if verbose else subprocess.PIPE, text=True
    )
    if done.returncode != 0:
        raise BackupError(
            f"{Path(argv[0]).name} failed: {(done.stderr or '').strip() or f'exit {done.returncode}'}"
        )


def postgres_backup(url: str, target: Path, verbose: bool = False) -> None:
    """`pg_dump` the database to `target`, then check the archive reads back."""
    pg_dump = postgres_tool("pg_dump", url)
    partial = Path(f"{target}.partial")
    argv = [pg_dump, "--format=custom", "--no-owner", "--no-privileges", f"--file={partial}"]
    _run([*argv, *(["--verbose"] if verbose else []), f"--dbname={libpq_dsn(url)}"], verbose)
    try:
        _run([postgres_tool("pg_restore", url), "--list", str(partial)], False)
    except BackupError:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)


def postgres_archive_version(url: str, archive: Path) -> str | None:
    """The migration revision recorded in a `pg_dump` archive."""
    pg_restore = postgres_tool("pg_restore", url)
    done = subprocess.run(
        [pg_restore, "--data-only", "--table=alembic_version", "--file=-", str(archive)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BackupError(f"{archive} is not a pg_dump archive pg_restore can read: {done.stderr.strip()}")
    lines = done.stdout.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("COPY ") and "alembic_version" in line and i + 1 < len(lines):
            return None if lines[i + 1] == "\\." else lines[i + 1].strip()
    return None


def postgres_restore(url: str, archive: Path, verbose: bool = False) -> None:
    """Replace the database's tables with the archive's, in one transaction."""
    argv = [postgres_tool("pg_restore", url), "--clean", "--if-exists", "--no-owner", "--no-privileges"]
    argv += ["--single-transaction", f"--dbname={libpq_dsn(url)}", str(archive)]
    _run([*argv, *(["--verbose"] if verbose else [])], verbose)
