"""A full disk and a PostgreSQL that goes away (issue 19 item 6), mid-load:
writes are refused with 503 and Retry-After, each refusal wrote nothing and
every acknowledged write is stored, the SQLite file stays intact, one log line
says what happened, and writes succeed again by themselves once space or the
database is back. Both run on their own storage: a small tmpfs the test
mounts, and a private PostgreSQL cluster the test starts (never the shared one)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from gateway.app import create_app
from service.app.assembly import Core
from service.base.config import Settings
from tests.conftest import TEST_HOST, free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
WRITERS = 8


def _settings(database_url: str) -> Settings:
    return Settings(
        grpc_port=0,
        http_port=0,
        database_url=database_url,
        shutdown_grace_seconds=2,
        allowed_hosts=[TEST_HOST],
        lease_sweep_seconds=3600,
        tracer_reaper_interval_seconds=3600,
        idempotency_sweep_seconds=3600,
    )


@asynccontextmanager
async def serving(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(_settings(database_url), service=Core)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{TEST_HOST}") as http:
            yield http


class Load:
    """WRITERS sessions posting events, each event numbered; what was
    acknowledged and what was refused, by number."""

    def __init__(self, http: httpx.AsyncClient, payload_bytes: int) -> None:
        self.http = http
        self.payload = "x" * payload_bytes
        self.acked: set[int] = set()
        self.refused: list[httpx.Response] = []
        self.n = 0

    async def start(self) -> None:
        for w in range(WRITERS):
            resp = await self.http.post("/sessions", json={"session_id": f"w{w}", "session_name": "load"})
            assert resp.status_code == 200, resp.text

    async def post(self, w: int) -> httpx.Response:
        self.n += 1
        n = self.n
        event = {
            "event_type": "post_tool",
            "session_id": f"w{w}",
            "session_name": "load",
            "timestamp": "2026-01-01T00:00:00Z",
            "tool_input": {"n": n},
            "tool_output": self.payload,
        }
        resp = await self.http.post(f"/sessions/w{w}/events", json=event)
        if resp.status_code == 200:
            self.acked.add(n)
        else:
            self.refused.append(resp)
        return resp

    async def until_refused(self, refusals: int, limit: int = 5000) -> None:
        """Post from every writer at once until `refusals` were refused."""
        for _ in range(limit):
            await asyncio.gather(*(self.post(w) for w in range(WRITERS)))
            if len(self.refused) >= refusals:
                return
        raise AssertionError(f"no outage after {self.n} events")

    async def until_accepted(self, seconds: float = 20) -> None:
        """Post until writes succeed again (the server recovers by itself)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            if (await self.post(0)).status_code == 200:
                await asyncio.gather(*(self.post(w) for w in range(WRITERS)))
                return
            await asyncio.sleep(0.1)
        raise AssertionError("writes did not succeed again")


def assert_refusals(refused: list[httpx.Response], reason: str) -> None:
    assert refused
    for resp in refused:
        assert resp.status_code == 503, resp.text
        assert resp.headers["retry-after"] == "2"
        assert "retry in 2 s" in resp.json()["detail"]
    details = {r.json()["detail"] for r in refused}
    assert any(reason in d for d in details), details


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "writes refused" in r.getMessage()]


# -- a full disk (SQLite) ------------------------------------------------------


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 3 MiB tmpfs mounted for the test (we run as root)."""
    where = Path(tempfile.mkdtemp(prefix="agentplane-disk-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        shutil.rmtree(where, ignore_errors=True)


def stored_numbers(db: Path) -> list[int]:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute(
            "SELECT json_extract(data, '$.tool_input.n') FROM log_entries WHERE type = 'runtime.event'"
        ).fetchall()
    return [int(n) for (n,) in rows]


async def test_a_full_disk_refuses_writes_and_recovers(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = small_disk / "agentplane.db"
    caplog.set_level(logging.INFO)
    async with serving(f"sqlite:///{db}") as http:
        load = Load(http, payload_bytes=16_000)
        await load.start()
        await load.until_refused(refusals=3 * WRITERS)
        assert_refusals(load.refused, "the disk is full")
        assert len(outage_lines(caplog)) == 1  # one line for the outage, not one per batch
        # Reads keep working meanwhile.
        assert (await http.get("/sessions")).status_code == 200
        await asyncio.to_thread(
            subprocess.run, ["mount", "-o", "remount,size=64m", str(small_disk)], check=True
        )
        await load.until_accepted()
        assert any("writes succeed again" in r.getMessage() for r in caplog.records)
    stored = stored_numbers(db)
    assert sorted(stored) == sorted(load.acked)  # every acknowledged write, and no refused one


# -- PostgreSQL away -----------------------------------------------------------


class PrivatePostgres:
    """A PostgreSQL 15 cluster of the test's own, in a temporary directory, run
    as the `postgres` user (it refuses root), on a free port."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="agentplane-pg-"))
        self.dir.chmod(0o755)
        self.data = self.dir / "data"
        self.port = free_port()
        shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres(PG_BIN / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *argv: object) -> None:
        cmd = ["runuser", "-u", "postgres", "--", *map(str, argv)]
        subprocess.run(cmd, check=True, capture_output=True, cwd=self.dir)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            PG_BIN / "pg_ctl", "-D", self.data, "-o", options, "-l", self.dir / "log", "-w", "start"
        )

    def stop(self) -> None:
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    if os.geteuid() != 0:
        raise RuntimeError("this test starts its own PostgreSQL as the postgres user: run it as root")
    pg = PrivatePostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.remove()


async def test_postgres_away_refuses_writes_and_recovers(
    private_postgres: PrivatePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    pg = private_postgres
    caplog.set_level(logging.INFO)
    async with serving(pg.url) as http:
        load = Load(http, payload_bytes=200)
        await load.start()
        for _ in range(5):
            await asyncio.gather(*(load.post(w) for w in range(WRITERS)))
        assert not load.refused
        await asyncio.to_thread(pg.stop)
        await load.until_refused(refusals=2 * WRITERS)
        assert_refusals(load.refused, "the database is unavailable")
        assert len(outage_lines(caplog)) == 1
        await asyncio.to_thread(pg.start)
        await load.until_accepted()
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{pg.port}/postgres") as conn:
        rows = conn.execute(
            "SELECT data::jsonb -> 'tool_input' ->> 'n' FROM log_entries WHERE type = 'runtime.event'"
        ).fetchall()
    stored = {int(n) for (n,) in rows}
    assert load.acked <= stored  # every acknowledged write is there
    # A refusal wrote nothing, but for a commit whose answer the stopping server never sent.
    assert len(stored - load.acked) <= WRITERS
