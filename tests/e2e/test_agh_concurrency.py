"""The AGH task queue under contention: 32 workers claim from 400 queued
runs until the queue is empty; every run must be completed exactly once,
with no run ever claimed twice. In process on each backend, and on
PostgreSQL also with two server processes sharing the database (FOR UPDATE
SKIP LOCKED across replicas), where a claimer long-polling one replica must
be woken by work queued through the other (LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Connection, func, select

from service.store.agh.tables import agh_task_runs
from service.store.tables import log_entries
from tests.agh_support import identity
from tests.conftest import POSTGRES_URL, Server, free_port, reset_postgres
from tests.e2e.test_serve_process import serve

# 12 or 13 claims per worker, each raced by the 31 others (SKIP LOCKED on
# PostgreSQL): contention throughout, at 40% of the work of the 1,000 runs
# this was (40-70 s for the two replicas).
RUNS = 400
WORKERS = 32


async def fill_queue(http: httpx.AsyncClient, count: int) -> set[str]:
    """Queue `count` tasks (16 at a time); returns their run ids."""
    run_ids: set[str] = set()

    async def create(i: int) -> None:
        resp = await http.post("/api/tasks", json={"title": f"task {i}", "priority": ("low", "high")[i % 2]})
        assert resp.status_code == 201, resp.text
        run_ids.add(resp.json()["run"]["id"])

    for start in range(0, count, 16):
        await asyncio.gather(*(create(i) for i in range(start, min(count, start + 16))))
    return run_ids


async def start_workers(clients: list[httpx.AsyncClient], workers: int) -> list[str]:
    for i in range(workers):
        body = {"session_id": f"worker-{i}", "session_name": f"worker {i}", "agent_name": "coder"}
        resp = await clients[i % len(clients)].post("/sessions", json=body)
        assert resp.status_code == 200, resp.text
    return [f"worker-{i}" for i in range(workers)]


async def drain(clients: list[httpx.AsyncClient], sessions: list[str]) -> list[str]:
    """Every worker claims and completes until nothing is queued; returns the
    run ids completed, in completion order (duplicates kept)."""
    done: list[str] = []

    async def worker(i: int, session: str) -> None:
        http = clients[i % len(clients)]
        while True:
            resp = await http.post("/api/agent/tasks/claim-next", json={}, headers=identity(session))
            if resp.status_code == 204:
                return
            assert resp.status_code == 200, resp.text
            run_id = resp.json()["claim"]["run"]["id"]
            result = {"result": {"by": session}}
            completed = await http.post(
                f"/api/agent/tasks/{run_id}/complete", json=result, headers=identity(session)
            )
            assert completed.status_code == 200, completed.text
            done.append(run_id)

    await asyncio.gather(*(worker(i, s) for i, s in enumerate(sessions)))
    return done


def assert_exactly_once(expected: set[str], done: list[str]) -> None:
    twice = [r for r, n in collections.Counter(done).items() if n > 1]
    assert twice == []
    assert set(done) == expected


def counts(conn: Connection) -> tuple[int, int, int]:
    """(completed runs, task_run.claimed entries, task_run.completed entries)."""
    completed = conn.execute(
        select(func.count()).select_from(agh_task_runs).where(agh_task_runs.c.status == "completed")
    ).scalar_one()
    logged = dict(
        conn.execute(
            select(log_entries.c.type, func.count())
            .where(log_entries.c.type.in_(["task_run.claimed", "task_run.completed"]))
            .group_by(log_entries.c.type)
        ).all()
    )
    return int(completed), int(logged.get("task_run.claimed", 0)), int(logged.get("task_run.completed", 0))


async def test_32_workers_complete_400_runs_exactly_once(server: Server) -> None:
    expected = await fill_queue(server.http, RUNS)
    sessions = await start_workers([server.http], WORKERS)
    done = await drain([server.http], sessions)
    assert_exactly_once(expected, done)
    # Each run was claimed once (no expiry, no double claim) and completed once.
    assert await server.core.store.read(counts) == (RUNS, RUNS, RUNS)


if POSTGRES_URL:

    @pytest.fixture
    def replicas(tmp_path: Path, postgres_url: str) -> Iterator[list[str]]:
        """Two `agentplane serve` processes on one PostgreSQL database."""
        reset_postgres(postgres_url)
        bases = []
        with contextlib.ExitStack() as stack:
            for i in range(2):
                port, grpc_port = free_port(), free_port()
                base = f"http://127.0.0.1:{port}"
                workdir = tmp_path / f"replica-{i}"
                workdir.mkdir()
                args = ("--http-port", str(port), "--grpc-port", str(grpc_port))
                # One after the other: the first migrates the database.
                stack.enter_context(serve(workdir, postgres_url, *args, health=f"{base}/healthz"))
                bases.append(base)
            yield bases

    async def test_two_replicas_complete_400_runs_exactly_once(replicas: list[str]) -> None:
        clients = [httpx.AsyncClient(base_url=b, timeout=60) for b in replicas]
        try:
            expected = await fill_queue(clients[0], RUNS // 2) | await fill_queue(clients[1], RUNS // 2)
            sessions = await start_workers(clients, WORKERS)
            done = await drain(clients, sessions)
            assert_exactly_once(expected, done)
        finally:
            for c in clients:
                await c.aclose()

    async def test_long_poll_on_one_replica_wakes_for_work_queued_on_the_other(replicas: list[str]) -> None:
        waiter, other = (httpx.AsyncClient(base_url=b, timeout=60) for b in replicas)
        try:
            body = {"session_id": "waiter", "session_name": "waiter", "agent_name": "coder"}
            assert (await waiter.post("/sessions", json=body)).status_code == 200
            for i in range(3):
                waiting = asyncio.create_task(
                    waiter.post(
                        "/api/agent/tasks/claim-next",
                        json={"wait": True, "wait_seconds": 30},
                        headers=identity("waiter"),
                    )
                )
                await asyncio.sleep(0.2)
                assert not waiting.done()
                created = await other.post("/api/tasks", json={"title": f"from the other replica {i}"})
                assert created.status_code == 201, created.text
                resp = await waiting
                assert resp.status_code == 200, resp.text
                claim = resp.json()["claim"]
                assert claim["run"]["id"] == created.json()["run"]["id"]
                done = await waiter.post(
                    f"/api/agent/tasks/{claim['run']['id']}/complete", json={}, headers=identity("waiter")
                )
                assert done.status_code == 200, done.text
        finally:
            await waiter.aclose()
            await other.aclose()
