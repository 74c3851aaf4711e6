"""`agentplane db backup|restore|status` against a real `agentplane serve`
taking writes: the backup is sound and holds every write acknowledged before
it began; restoring over the server's database is refused while the server
runs; a restore into a new database brings the data back, migrated."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import psycopg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from agentplane_cli.main import main
from service.store.database import MIGRATIONS, describe_database, libpq_dsn, normalize_url
from service.store.tables import sessions
from service.store.transfer.database_facts import newest_migration, schema_version
from tests.conftest import free_port
from tests.e2e.test_serve_process import serve
from tests.transfer_support import run_here


def in_process(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The command run here (the quick ones: a process start costs more than they do)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def stored_sessions(url: str) -> set[str]:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            return set(conn.execute(select(sessions.c.session_id)).scalars())
    finally:
        engine.dispose()


@pytest.fixture
def restore_target(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database beside the test's own, on the same backend; on
    PostgreSQL dropped afterwards (the server is shared: runs must not leave
    databases behind)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    url = make_url(database_url)
    name = f"{url.database}_restored"
    admin_dsn = libpq_dsn(url.set(database="postgres").render_as_string(hide_password=False))
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield url.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def write_sessions(
    base: str, acknowledged: list[tuple[float, str]], going: asyncio.Event, stop: asyncio.Event
) -> None:
    """Create sessions one after another until told to stop; note when each was acknowledged."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        n = 0
        while not stop.is_set():
            sid = f"bk-{n}"
            resp = await http.post("/sessions", json={"session_id": sid, "session_name": sid})
            assert resp.status_code == 200, resp.text
            acknowledged.append((time.monotonic(), sid))
            n += 1
            if n == 50:
                going.set()
            await asyncio.sleep(0.005)  # a steady stream, leaving the backup some CPU


async def test_backup_under_writes_restores_every_acknowledged_write(
    database_url: str, restore_target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port, grpc_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    backup = tmp_path / "backup.bin"
    flags = ("--http-port", str(port), "--grpc-port", str(grpc_port))
    with serve(tmp_path, database_url, *flags, health=f"{base}/healthz"):
        acknowledged: list[tuple[float, str]] = []
        going, stop = asyncio.Event(), asyncio.Event()
        writer = asyncio.create_task(write_sessions(base, acknowledged, going, stop))
        await going.wait()
        began = time.monotonic()
        # (In this process, in a thread: the server is a process of its own.)
        code, out, err = await run_here(capsys, "db", "--database-url", database_url, "backup", str(backup))
        ended = time.monotonic()
        stop.set()
        await writer
        assert code == 0 and f"Backed up {describe_database(database_url)} to {backup}" in out, err
        during = [sid for at, sid in acknowledged if began < at < ended]
        assert during, "no write was acknowledged while the backup ran"

        # The running server's database is not overwritten unless told.
        code, _, err = in_process(capsys, "db", "--database-url", database_url, "restore", str(backup))
        assert code == 1 and "open (a server?): stop it first, or --force" in err
        # Nor is an existing backup.
        code, _, err = in_process(capsys, "db", "--database-url", database_url, "backup", str(backup))
        assert code == 1 and "exists" in err

    target = restore_target
    code, out, err = in_process(capsys, "db", "--database-url", target, "restore", str(backup))
    assert code == 0 and out.startswith(f"Restored {backup} into "), err
    if database_url.startswith("sqlite"):
        with closing(sqlite3.connect(backup)) as copy:
            assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    restored = stored_sessions(target)
    before = {sid for at, sid in acknowledged if at < began}
    assert before <= restored, sorted(before - restored)[:5]
    # Nothing acknowledged after the backup finished is in it.
    assert not {sid for at, sid in acknowledged if at > ended} & restored

    code, out, err = in_process(capsys, "db", "--database-url", target, "status")
    assert code == 0, err
    lines = out.splitlines()
    assert any(line.startswith("schema: ") and "up to date" in line for line in lines), out
    assert "retention: nothing removed (every entry is kept)" in lines
    assert any(line.split()[:2] == ["sessions", f"{len(restored):,}"] for line in lines), out
    assert any(line.split()[:2] == ["default", f"{len(restored):,}"] for line in lines), out


def test_restore_refuses_a_file_that_is_not_a_backup(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a database at all" * 100)
    code, _, err = in_process(capsys, "db", "--database-url", database_url, "restore", str(junk))
    assert code == 1
    assert "is not a sound SQLite database" in err or "is not a pg_dump archive" in err


def test_an_older_backup_is_migrated_forward(
    database_url: str, restore_target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    older = "0008"
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalize_url(database_url).replace("%", "%%"))
    command.upgrade(cfg, older)
    backup = tmp_path / "older.bin"
    code, _, err = in_process(capsys, "db", "--database-url", database_url, "backup", str(backup))
    assert code == 0, err

    # An export needs the schema this agentplane writes: it says how to get there.
    dump = tmp_path / "older.ndjson"
    code, _, err = in_process(capsys, "export", "--database-url", database_url, "-o", str(dump))
    assert code == 1 and f"is at schema {older}, this agentplane writes {newest_migration()}" in err, err
    assert not dump.exists() and not Path(f"{dump}.partial").exists()

    code, _, err = in_process(capsys, "db", "--database-url", database_url, "status")
    assert code == 0 and f"schema: {older} (newest {newest_migration()}; behind:" in _ + err, _ + err

    target = restore_target
    code, out, err = in_process(capsys, "db", "--database-url", target, "restore", str(backup))
    assert code == 0, err
    assert f"schema {older} -> {newest_migration()}" in out
    engine = create_engine(normalize_url(target))
    try:
        with engine.connect() as conn:
            assert schema_version(conn) == newest_migration() != older
    finally:
        engine.dispose()
