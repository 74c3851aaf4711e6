"""The `queue` scenario: AGH task-queue cycles over HTTP.

`concurrency` workers, each an agent session on its own keep-alive
connection, loop claim-next -> heartbeat -> complete over the queued runs.
The rate counts full cycles; the latencies are those of a whole cycle.
After the cycles, a long-polling claimer waits (`wait: true`) while a task
is created, `WAKE_SAMPLES` times: the wake-up latency is from sending the
create to receiving the claim (so it includes the create's own commit).
Afterwards the database must hold exactly one completed run per task, each
with its `task_run.completed` log entry.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import time
from typing import TYPE_CHECKING, Any

from tests.bench import loadgen
from tests.bench.loadgen import Result

if TYPE_CHECKING:
    from tests.bench.run import Figures, ServerProcess

WAKE_SAMPLES = 100
_CREATE = json.dumps({"title": "bench task", "description": "a unit of work", "priority": "medium"}).encode()
_RESULT = json.dumps({"result": {"status": "done", "files_changed": 3}}).encode()


def _request(path: str, body: bytes, session: str | None = None) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    if session:
        head += f"X-AGH-Session-ID: {session}\r\nX-AGH-Agent: bench\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class Connection:
    """One keep-alive HTTP/1.1 connection sending JSON POSTs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, path: str, body: bytes, session: str | None = None) -> tuple[int, Any]:
        self.writer.write(_request(path, body, session))
        status, raw = await loadgen._read_response(self.reader)
        return status, json.loads(raw) if raw else None

    def close(self) -> None:
        self.writer.close()


async def _setup(port: int, sessions: list[str], tasks: int) -> None:
    conn = await Connection.open(port)
    try:
        for sid in sessions:
            body = json.dumps({"session_id": sid, "session_name": sid, "agent_name": "bench"}).encode()
            status, _ = await conn.post("/sessions", body)
            assert status == 200, status
    finally:
        conn.close()
    created = await loadgen.run("127.0.0.1", port, 16, tasks, lambda _: _request("/api/tasks", _CREATE))
    if created.failed:
        raise RuntimeError(f"{created.failed} task creations failed: {created.statuses}")


async def _cycles(port: int, sessions: list[str], total: int) -> Result:
    result = Result()
    counter = iter(range(total))

    async def worker(session: str) -> None:
        conn = await Connection.open(port)
        try:
            for _ in counter:
                began = time.perf_counter()
                status, claim = await conn.post("/api/agent/tasks/claim-next", b"{}", session)
                if status != 200:
                    raise RuntimeError(f"claim-next answered {status}: {claim}")
                run_id = claim["claim"]["run"]["id"]
                status, _ = await conn.post(f"/api/agent/tasks/{run_id}/heartbeat", b"{}", session)
                ok = status == 200
                status, _ = await conn.post(f"/api/agent/tasks/{run_id}/complete", _RESULT, session)
                ok = ok and status == 200
                result.latencies.append(time.perf_counter() - began)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if ok:
                    result.ok += 1
                else:
                    result.failed += 1
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(s) for s in sessions))
    result.seconds = time.perf_counter() - started
    return result


async def _wake_ups(port: int, samples: int) -> list[float]:
    """Seconds from sending a task's creation to a long-polling claimer getting it."""
    claimer, creator = await Connection.open(port), await Connection.open(port)
    body = json.dumps({"session_id": "waiter", "session_name": "waiter", "agent_name": "bench"}).encode()
    await creator.post("/sessions", body)
    wait = json.dumps({"wait": True, "wait_seconds": 10, "lease_seconds": 60}).encode()
    found: list[float] = []
    try:
        for _ in range(samples):
            claim = asyncio.create_task(claimer.post("/api/agent/tasks/claim-next", wait, "waiter"))
            await asyncio.sleep(0.02)  # the claimer is waiting by now
            sent = time.perf_counter()
            status, _ = await creator.post("/api/tasks", _CREATE)
            assert status == 201, status
            status, got = await claim
            found.append(time.perf_counter() - sent)
            if status != 200:
                raise RuntimeError(f"long-poll claim answered {status}: {got}")
            run_id = got["claim"]["run"]["id"]
            status, _ = await claimer.post(f"/api/agent/tasks/{run_id}/complete", _RESULT, "waiter")
            assert status == 200, status
    finally:
        claimer.close()
        creator.close()
    return found


def _check(db: Any, expected: int) -> None:
    with sqlite3.connect(db) as conn:
        (completed,) = conn.execute(
            "SELECT count(*) FROM agh_task_runs WHERE status = 'completed'"
        ).fetchone()
        (tasks,) = conn.execute(
            "SELECT count(DISTINCT task_id) FROM agh_task_runs WHERE status = 'completed'"
        ).fetchone()
        (logged,) = conn.execute(
            "SELECT count(*) FROM log_entries WHERE type = 'task_run.completed'"
        ).fetchone()
        (left,) = conn.execute("SELECT count(*) FROM agh_task_runs WHERE status != 'completed'").fetchone()
    if not completed == tasks == logged == expected or left:
        raise RuntimeError(
            f"{expected} cycles acknowledged, but {completed} runs completed ({tasks} tasks, "
            f"{logged} log entries, {left} runs not completed)"
        )


def run(srv: ServerProcess, total: int, concurrency: int) -> Figures:
    from tests.bench.run import Figures

    sessions = [f"worker-{i}" for i in range(concurrency)]
    asyncio.run(_setup(srv.http_port, sessions, total))
    cpu = srv.cpu_seconds()
    result = asyncio.run(_cycles(srv.http_port, sessions, total))
    cpu = srv.cpu_seconds() - cpu
    if result.failed:
        raise RuntimeError(f"{result.failed} cycles failed: {result.statuses}")
    wake = sorted(asyncio.run(_wake_ups(srv.http_port, WAKE_SAMPLES)))
    _check(srv.db_path, total + WAKE_SAMPLES)
    p99 = wake[min(len(wake) - 1, round(0.99 * (len(wake) - 1)))]
    print(
        f"    long-poll wake-up ({len(wake)} samples): p50 {statistics.median(wake) * 1e3:.1f} ms, "
        f"p99 {p99 * 1e3:.1f} ms, max {wake[-1] * 1e3:.1f} ms   [target p99 < 50 ms]"
    )
    return Figures(
        result.rate, result.percentile(50) * 1e3, result.percentile(99) * 1e3, "cycles/s", cpu / total * 1e6
    )
