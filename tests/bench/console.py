"""The `console` bench scenario: the first page of every console read on
real volumes (issue 18): 10,000 runtime sessions and a tracer task with a
50,000-event timeline, written through the public routes (`seed_volume`,
reused by the browser benchmark), then each RPC's first page timed over
HTTP, back to back, with the server's CPU per call.

    make bench BENCH_ARGS="--runs 1 --scenario console"
    .venv/bin/python -m tests.bench.console --postgres postgresql+psycopg://postgres@127.0.0.1:5432/bench

Target: each first page well under the browser's one-second budget (the
report's line per RPC gives the median and p99 latency and server CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.bench import loadgen
from tests.bench.rules import Api, cpu_seconds

if TYPE_CHECKING:  # run.py imports this module to register the scenario
    from tests.bench.run import Figures, ServerProcess

SESSIONS = 10_000
TIMELINE_EVENTS = 50_000
BATCH = 100
TARGET_MS = 1000.0


@dataclass
class Volume:
    """What `seed_volume` wrote: the big timeline's task and session, and
    the number of runtime sessions."""

    task_id: str
    session_id: str
    sessions: int
    events: int


def _session_request(i: int) -> bytes:
    body = {"session_id": f"bench-{i:05d}", "session_name": f"bench session {i}", "agent_name": "claude"}
    return loadgen.request_bytes("POST", "/sessions", json.dumps(body).encode())


def _event_batch(task_id: str, session_id: str, start: int, count: int) -> list[dict[str, Any]]:
    lanes = ("exploration", "implementation", "planning")
    return [
        {
            "kind": "terminal.command" if n % 3 == 1 else "tool.used",
            "taskId": task_id,
            "sessionId": session_id,
            "lane": lanes[n % 3],
            "title": f"step {n}",
            "body": f"$ echo {n}",
            "metadata": {"toolName": "Bash", "command": f"echo {n}", "durationMs": n % 900},
        }
        for n in range(start, start + count)
    ]


def seed_volume(http_port: int, sessions: int = SESSIONS, events: int = TIMELINE_EVENTS) -> Volume:
    """`sessions` runtime sessions and one tracer task with `events` events
    (plus a few turns judged by a rule), through the public routes."""
    result = asyncio.run(loadgen.run("127.0.0.1", http_port, 8, sessions, _session_request))
    assert result.ok == sessions, result.statuses
    api = Api(http_port)
    rule = {
        "name": "run tests",
        "scope": "global",
        "trigger": {"phrases": ["run the tests"]},
        "expect": {"tool": "command", "commandMatches": ["pytest"]},
    }
    api.call("POST", "/api/v1/rules", rule)
    task_id, session_id = api.ensure("console-bench")

    def say(kind: str, text: str) -> None:
        lane = "user" if kind == "user.message" else "planning"
        item = {
            "kind": kind,
            "taskId": task_id,
            "sessionId": session_id,
            "lane": lane,
            "title": text,
            "body": text,
        }
        api.call("POST", "/ingest/v1/conversation", {"events": [item]})

    say("user.message", "Please run the tests")
    for start in range(0, events, BATCH):
        batch = _event_batch(task_id, session_id, start, min(BATCH, events - start))
        api.call("POST", "/ingest/v1/events", {"events": batch})
    say("assistant.response", "Done.")
    return Volume(task_id, session_id, sessions, events)


def _native(api: Api, path: str) -> Any:
    """A native route's body (the message itself, not the tracer's envelope)."""
    api.conn.request("GET", path)
    resp = api.conn.getresponse()
    raw = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"GET {path}: {resp.status} {raw[:300]!r}")
    return json.loads(raw)


def time_reads(
    http_port: int, pid: int, volume: Volume, calls: int = 30
) -> dict[str, tuple[float, float, float]]:
    """(median ms, p99 ms, server CPU µs per call) of each console read's first page."""
    api = Api(http_port)
    last = _native(api, f"/v1/console/timelines/tracer_task/{volume.task_id}?page_size=1")
    assert last["item"]["id"] == volume.task_id
    paths = {
        "overview": "/v1/console/overview",
        "sessions (50 of 10,000)": "/v1/console/sessions",
        "sessions, text filter": "/v1/console/sessions?query=session%209999",
        "sessions, kind filter": "/v1/console/sessions?kind=runtime_session&status=running",
        "timeline (200 of 50,000)": f"/v1/console/timelines/tracer_task/{volume.task_id}",
        "timeline, monitor session": f"/v1/console/timelines/tracer_session/{volume.session_id}",
        "queue": "/v1/console/queue",
        "channels": "/v1/console/channels",
        "rules": "/v1/console/rules",
    }
    out = {}
    for name, path in paths.items():
        _native(api, path)  # warm
        latencies = []
        cpu_before = cpu_seconds(pid)
        for _ in range(calls):
            started = time.perf_counter()
            _native(api, path)
            latencies.append(time.perf_counter() - started)
        cpu = (cpu_seconds(pid) - cpu_before) / calls
        ordered = sorted(latencies)
        out[name] = (
            statistics.median(latencies) * 1e3,
            ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1e3,
            cpu * 1e6,
        )
    return out


def _report(figures: dict[str, tuple[float, float, float]]) -> None:
    for name, (p50, p99, cpu_us) in figures.items():
        verdict = "ok" if p99 < TARGET_MS else "MISSED"
        print(f"    {name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms, server CPU {cpu_us:,.0f} µs/call [{verdict}]")


def console_reads(srv: ServerProcess, total: int, concurrency: int) -> Figures:
    """`total` calls per read (concurrency is unused: one client, back to back)."""
    from tests.bench.run import Figures

    started = time.perf_counter()
    volume = seed_volume(srv.http_port)
    print(
        f"    seeded {volume.sessions:,} sessions and {volume.events:,} events in {time.perf_counter() - started:.1f} s"
    )
    figures = time_reads(srv.http_port, srv.pid, volume, total)
    _report(figures)
    p50, p99, cpu_us = figures["timeline (200 of 50,000)"]
    return Figures(1e3 / p50, p50, p99, "timeline first pages/s", cpu_us)


def main() -> int:
    """The same scenario against PostgreSQL (the bench runner is SQLite only)."""
    from tests.bench.run import server_process

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", help="a PostgreSQL URL (an empty database)")
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, server_process(Path(tmp), args.postgres) as srv:
        fig = console_reads(srv, args.calls, 1)
    print(
        f"timeline first page: p50 {fig.p50_ms:.1f} ms, p99 {fig.p99_ms:.1f} ms, server CPU {fig.cpu_us:,.0f} µs/call"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
