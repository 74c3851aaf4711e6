"""Helpers of the export, import and backup tests: a server on a given
database, the command run in this process, and what each table holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from agentplane_cli.main import main
from gateway.app import create_app
from service.app.assembly import Core
from service.base.config import Settings
from service.store.database import normalize_url
from service.store.schema import metadata
from tests.conftest import TEST_HOST


@asynccontextmanager
async def running(url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A server on `url` (no background sweeps: both copies must stay as they are)."""
    settings = Settings(
        grpc_port=0,
        http_port=0,
        database_url=url,
        allowed_hosts=[TEST_HOST],
        lease_sweep_seconds=0,
        tracer_reaper_interval_seconds=0,
        idempotency_sweep_seconds=0,
    )
    app = create_app(settings, service=Core)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{TEST_HOST}") as http,
    ):
        yield http


def table_counts(url: str) -> dict[str, int]:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            return {
                t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in metadata.sorted_tables
                if t.name != "idempotency_keys"
            }
    finally:
        engine.dispose()


async def run_here(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`agentplane ARGV` in this process (in a thread: import runs its own
    event loop); returns the exit status, stdout and stderr."""
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err
