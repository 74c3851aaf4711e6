"""Followers under write load: single-event writes over 16 connections for a
while with no follower, then again with N live `GET /v1/log:watch?after_seq=-1`
followers, all in one process (tests/bench/follow_client.py, the bench's
client, so the followers do not take the server's CPU). Passes when writes
keep 90% of their rate and every follower got every entry written
meanwhile, in order."""

from __future__ import annotations

import asyncio
import json

from tests.bench import loadgen
from tests.bench.follow_client import Followers, problems
from tests.bench.run import ServerProcess
from tests.chaos.context import Context, Outcome

CONNECTIONS = 16


def _writes(ctx: Context, srv: ServerProcess) -> tuple[loadgen.Result, float]:
    """The writes' result and the server's CPU per write, in µs."""
    bodies = []
    for i in range(CONNECTIONS):
        event = {
            "event_type": "post_tool",
            "session_id": f"chaos-{i}",
            "session_name": "chaos",
            "timestamp": "2026-01-01T00:00:00Z",
            "tool_name": "Read",
            "tool_input": {"file_path": "/src/app.py"},
            "tool_output": "x" * 200,
        }
        bodies.append(
            loadgen.request_bytes("POST", f"/sessions/chaos-{i}/events", json.dumps(event).encode())
        )
    cpu = srv.cpu_seconds()
    result = asyncio.run(
        loadgen.run(
            "127.0.0.1",
            srv.http_port,
            CONNECTIONS,
            10**9,
            lambda i: bodies[i % CONNECTIONS],
            ctx.sizes.write_seconds,
        )
    )
    if result.failed:
        raise RuntimeError(f"{result.failed} writes failed: {result.statuses}")
    return result, (srv.cpu_seconds() - cpu) / max(result.ok, 1) * 1e6


def run(ctx: Context) -> Outcome:
    n = ctx.sizes.followers
    with ctx.server() as srv:
        for i in range(CONNECTIONS):
            srv.post("/sessions", {"session_id": f"chaos-{i}", "session_name": "chaos"})
        alone, alone_cpu = _writes(ctx, srv)
        followers = Followers(srv.http_port, n)
        try:
            followed, followed_cpu = _writes(ctx, srv)
            expected = ctx.db.seqs_after(min(followers.starts))
            missed = problems(followers.finish(expected[-1]), expected)
        finally:
            followers.close()
    complete = n - len(missed)
    ratio = followed.rate / alone.rate
    figures = (
        f"{n} followers: {alone.rate:,.0f} -> {followed.rate:,.0f} writes/s ({ratio:.0%}), "
        f"p50 {alone.percentile(50) * 1e3:.1f} -> {followed.percentile(50) * 1e3:.1f} ms, "
        f"server CPU {alone_cpu:,.0f} -> {followed_cpu:,.0f} µs/write; "
        f"{complete}/{n} followers got all {len(expected):,} entries in order"
    )
    if missed:
        figures += f"; {missed[0]}"
    return Outcome((ratio >= 0.9 or not ctx.sizes.strict) and complete == n, figures)
