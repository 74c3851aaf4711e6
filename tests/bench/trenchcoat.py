"""The `trenchcoat` bench scenario: POST /api/v1/events with 1,000-event
batches (seed 002), several connections at once.

Each batch carries one session's telemetry as the plugin sends it (tool
calls in pairs, turns ending in `assistant_stop` with tokens); eight
sessions recur across the run, so most batches update a session that
exists. After the run the database must hold every acknowledged event and
the sessions' counts must add up to them: each batch is durable when it is
acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

from tests.bench import loadgen

if TYPE_CHECKING:  # run.py imports this module to register the scenario
    from tests.bench.run import Figures, ServerProcess

BATCH = 1000
SESSIONS = 8


def _event(kind: str, session_id: str, second: int, data: dict[str, Any]) -> dict[str, Any]:
    ts = f"2026-01-01T{second // 3600 % 24:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"
    return {"event_type": kind, "session_id": session_id, "timestamp": ts, "data": data}


def batch(index: int) -> list[dict[str, Any]]:
    session_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-{index % SESSIONS}"))
    base = index * BATCH
    events = [_event("session_start", session_id, base, {"model": "claude-opus", "cwd": "/src/app"})]
    while len(events) < BATCH:
        n = base + len(events)
        if len(events) % 10 == 9:
            usage = {"reason": "end_turn", "input_tokens": n, "output_tokens": n // 3, "model": "claude-opus"}
            events.append(_event("assistant_stop", session_id, n, usage))
        elif len(events) % 2:
            preview = {"tool_name": "Read", "tool_input_preview": f"/src/components/file_{n}.tsx"}
            events.append(_event("tool_use", session_id, n, preview))
        else:
            result = {"tool_name": "Read", "is_error": False, "duration_ms": n % 500}
            events.append(_event("tool_result", session_id, n, result))
    return events


def _stored(db: Any) -> tuple[int, int]:
    """(log entries of the route, events counted on sessions)."""
    with sqlite3.connect(db) as conn:
        logged = conn.execute("SELECT count(*) FROM log_entries WHERE type = 'trenchcoat.event'").fetchone()[
            0
        ]
        counted = conn.execute("SELECT coalesce(sum(event_count), 0) FROM sessions").fetchone()[0]
    return int(logged), int(counted)


def trenchcoat_events(srv: ServerProcess, total: int, concurrency: int) -> Figures:
    """`total` batches of BATCH events over `concurrency` connections."""
    from tests.bench.run import Figures

    bodies = [
        loadgen.request_bytes("POST", "/api/v1/events", json.dumps({"events": batch(i)}).encode())
        for i in range(total)
    ]
    cpu = srv.cpu_seconds()
    result = asyncio.run(loadgen.run("127.0.0.1", srv.http_port, concurrency, total, bodies.__getitem__))
    cpu = srv.cpu_seconds() - cpu
    if result.failed:
        raise RuntimeError(f"{result.failed} batches failed: {result.statuses}")
    acknowledged = result.ok * BATCH
    logged, counted = _stored(srv.db_path)
    if (logged, counted) != (acknowledged, acknowledged):
        raise RuntimeError(
            f"{acknowledged} events acknowledged, {logged} logged, {counted} counted on sessions"
        )
    return Figures(
        acknowledged / result.seconds,
        result.percentile(50) * 1e3,
        result.percentile(99) * 1e3,
        "events/s",
        cpu / acknowledged * 1e6,
    )
