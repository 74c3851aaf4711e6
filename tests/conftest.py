"""Shared fixtures: every server-backed test runs on SQLite, and on PostgreSQL
too when AGENTPLANE_TEST_POSTGRES_URL is set (a set but unreachable URL fails
the run rather than skipping it)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from xdist.remote import Producer
from xdist.scheduler import LoadScopeScheduling

from gateway.app import create_app
from service.app.assembly import Core
from service.base.config import Settings
from tests.databases import PostgresReset, copy_sqlite, migrated_sqlite

POSTGRES_URL = os.environ.get("AGENTPLANE_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]
# The Host the in-process client sends: not a loopback name, so the test settings allow it by name.
TEST_HOST = "agentplane"


# Tests that start real processes: seconds each, so they start first.
SLOW_FIRST = ("tests/e2e/", "tests/browser/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not item.nodeid.startswith(SLOW_FIRST))


class NextFreeWorker(LoadScopeScheduling):
    """With -n, each test goes to the next worker that is free, in collection
    order (the slowest first, above), so that the quick in-process tests fill
    in around the slow ones. xdist's default sends contiguous chunks of up to
    an eighth of the suite, which left one worker a run of slow tests: in one
    run it finished at 566 s, two others at 176 s. The browser tests of one
    backend go to one worker together: they share a module's Chromium and
    seeded server."""

    def _split_scope(self, nodeid: str) -> str:
        if nodeid.startswith("tests/browser/"):
            return f"{nodeid.split('::')[0]}[{'postgres' if '[postgres' in nodeid else 'sqlite'}]"
        return nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> NextFreeWorker | None:
    # Only in place of the default: an explicit --dist other than load is honoured.
    return NextFreeWorker(config, log) if config.getvalue("dist") == "load" else None


def _dsn(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test run's own, created next to the one the URL names
    (so that concurrent runs on one server never see each other), dropped at the end."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"agentplane_test_{os.getpid()}"
    with psycopg.connect(_dsn(POSTGRES_URL), autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(_dsn(POSTGRES_URL), autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reset_postgres(url: str) -> None:
    """Give the test an empty database (synchronously, before the server starts)."""
    import psycopg

    with psycopg.connect(_dsn(url), autocommit=True, connect_timeout=5) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The test's database, empty: no file yet on SQLite, no schema on
    PostgreSQL; migrated instead when the test uses migrated_database_url."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        if "migrated_database_url" not in request.fixturenames:
            reset_postgres(url)
        return url
    return f"sqlite:///{tmp_path / 'agentplane.db'}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_sqlite(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def postgres_reset(postgres_url: str) -> PostgresReset:
    return PostgresReset(postgres_url)


@pytest.fixture
def migrated_database_url(request: pytest.FixtureRequest, database_url: str) -> str:
    """The test's database as a server's first start leaves it: migrated,
    every table empty (tests/databases.py: without migrating each time)."""
    if database_url.startswith("sqlite"):
        copy_sqlite(request.getfixturevalue("sqlite_template"), database_url)
    else:
        request.getfixturevalue("postgres_reset")()
    return database_url


@pytest.fixture
def settings(migrated_database_url: str) -> Settings:
    return Settings(
        grpc_port=0,
        http_port=0,
        database_url=migrated_database_url,
        heartbeat_seconds=0.5,
        shutdown_grace_seconds=2,
        allowed_hosts=[TEST_HOST],
    )


@dataclass
class Server:
    """A running agentplane: the gateway over HTTP (in-process ASGI) and gRPC."""

    app: FastAPI
    http: httpx.AsyncClient
    grpc_target: str
    core: Core

    def channel(self) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(self.grpc_target)


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Server]:
    """The app with these settings, started, and an in-process HTTP client for it."""
    app = create_app(settings, service=Core)
    async with app.router.lifespan_context(app):
        core: Core = app.state.core
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=f"http://{TEST_HOST}"
        ) as http:
            yield Server(app, http, f"127.0.0.1:{core.grpc_port}", core)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Server]:
    async with serving(settings) as running:
        yield running


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """The gateway on a real socket (for WebSockets and streaming over the wire)."""

    base_url: str
    ws_url: str
    grpc_target: str
    app: FastAPI


@pytest.fixture
async def live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    port = free_port()
    settings.http_port = port
    app = create_app(settings, service=Core)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    core: Core = app.state.core
    try:
        yield LiveServer(
            f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", f"127.0.0.1:{core.grpc_port}", app
        )
    finally:
        srv.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
