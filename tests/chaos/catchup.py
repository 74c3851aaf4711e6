"""A reader from seq 0 on a large log while /healthz is probed, then SIGTERM.

The log is filled with 1,000-event Trenchcoat batches; one reader
(`log:watch?after_seq=0&stop_at_end=true`) reads it all while /healthz is
probed every 20 ms. Then a second reader from 0 disconnects after half a
second, /healthz is probed for one more second, and the server gets
SIGTERM. Passes when probes keep p99 under 50 ms with none timing out, the
reader got every entry in order, and the server exits within its shutdown
grace."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time

import httpx

from tests.bench import loadgen, trenchcoat
from tests.chaos.context import Context, Outcome
from tests.chaos.follow import Follower

GRACE = 5  # AGENTPLANE_SHUTDOWN_GRACE_SECONDS of the server under test
PROBE_TIMEOUT = 5.0


def _fill(port: int, entries: int) -> None:
    batches = -(-entries // trenchcoat.BATCH)
    bodies = [json.dumps({"events": trenchcoat.batch(i)}).encode() for i in range(min(batches, 16))]
    result = asyncio.run(
        loadgen.run(
            "127.0.0.1",
            port,
            2,
            batches,
            lambda i: loadgen.request_bytes("POST", "/api/v1/events", bodies[i % len(bodies)]),
        )
    )
    if result.failed:
        raise RuntimeError(f"filling the log: {result.statuses}")


async def _probe_while(port: int, busy: Follower | None, seconds: float) -> list[float]:
    """/healthz latencies (PROBE_TIMEOUT for a probe that timed out) until
    the reader ends, or for `seconds` without one."""
    latencies = []
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=PROBE_TIMEOUT) as client:
        while (busy is None or busy.proc.poll() is None) and time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                (await client.get("/healthz")).raise_for_status()
                latencies.append(time.perf_counter() - started)
            except httpx.HTTPError:
                latencies.append(PROBE_TIMEOUT)
            await asyncio.sleep(0.02)
    return latencies


def run(ctx: Context) -> Outcome:
    budget = 60 + ctx.sizes.log_size / 5_000  # the reader's time limit
    with ctx.server(env={"AGENTPLANE_SHUTDOWN_GRACE_SECONDS": str(GRACE)}) as srv:
        _fill(srv.http_port, ctx.sizes.log_size)
        expected = ctx.db.seqs_after(0)
        base = f"http://127.0.0.1:{srv.http_port}/v1/log:watch?after_seq=0"
        started = time.perf_counter()
        reader = Follower(f"{base}&stop_at_end=true", ctx.workdir / "reader.ndjson", budget)
        probes = asyncio.run(_probe_while(srv.http_port, reader, budget))
        reader.proc.wait()
        elapsed = time.perf_counter() - started
        reader.stop()
        quitter = Follower(base, ctx.workdir / "quitter.ndjson", 10)
        time.sleep(0.5)
        quitter.stop()  # the client goes away in the middle of its catch-up
        probes += asyncio.run(_probe_while(srv.http_port, None, 1.0))  # is the server still answering?
        assert srv.proc is not None
        stopping = time.perf_counter()
        srv.proc.send_signal(signal.SIGTERM)
        try:
            srv.proc.wait(timeout=GRACE + 10)
            exit_seconds = time.perf_counter() - stopping
            exit_text = f"exit in {exit_seconds:.1f} s"
        except subprocess.TimeoutExpired:  # server_process kills it
            exit_seconds = float("inf")
            exit_text = f"still running {GRACE + 10} s later"
    got = reader.seqs()
    in_order = got == expected
    probes.sort()
    p99 = probes[min(len(probes) - 1, round(0.99 * (len(probes) - 1)))] if probes else float("nan")
    timeouts = sum(p >= PROBE_TIMEOUT for p in probes)
    exited = exit_seconds <= GRACE + 1
    figures = (
        f"reader from 0 on {len(expected):,} entries: {len(got) / elapsed:,.0f} entries/s, "
        f"{'all in order' if in_order else f'{len(got):,} received, not all in order'}; "
        f"/healthz p99 {p99 * 1e3:.1f} ms over {len(probes)} probes, {timeouts} timed out; "
        f"SIGTERM after a reader left: {exit_text} (grace {GRACE} s)"
    )
    fast = p99 < 0.05 and timeouts == 0
    return Outcome(in_order and (fast or not ctx.sizes.strict) and exited, figures)
