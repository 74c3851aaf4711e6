"""Overload with RSS sampling: many connections post 1,000-event Trenchcoat
batches for a while, the server's RSS sampled every 100 ms, then again after
a quiet spell. Passes when peak RSS stays under 600 MB, RSS comes back within
20% of its idle figure, every acknowledged batch is stored, and everything
refused is a fast 429 or 503 (p99 under 1 s): no other status, no dropped
connection."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field

from tests.bench import loadgen, trenchcoat
from tests.bench.run import ServerProcess
from tests.chaos.context import Context, Outcome

PEAK_LIMIT = 600 * 2**20
FAST = 1.0  # seconds: refusals (p99) slower than this are not shedding load
RSS_CAP = 4 * 2**30  # the load stops here, to keep the shared machine alive


@dataclass
class Tally:
    ok: int = 0
    refusals: list[float] = field(default_factory=list)  # latencies of 429/503
    other: Counter[str] = field(default_factory=Counter)  # other statuses, dropped connections
    latencies: list[float] = field(default_factory=list)


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes
) -> tuple[int, bool]:
    """Send one request; (status, whether the server closes the connection)."""
    writer.write(body)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    length = next((int(x.split(b":", 1)[1]) for x in lines if x.startswith(b"content-length:")), 0)
    await reader.readexactly(length)
    return int(lines[0].split()[1]), b"connection: close" in lines


async def _load(srv: ServerProcess, ctx: Context, tally: Tally, peak: list[int]) -> None:
    bodies = [
        loadgen.request_bytes("POST", "/api/v1/events", json.dumps({"events": trenchcoat.batch(i)}).encode())
        for i in range(8)
    ]
    end = time.monotonic() + ctx.sizes.duration

    async def sample() -> None:
        nonlocal end
        while True:
            peak[0] = max(peak[0], srv.rss_bytes())
            if peak[0] > RSS_CAP:
                end = 0.0
            await asyncio.sleep(0.1)

    async def worker(n: int) -> None:
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while time.monotonic() < end:
            try:
                conn = conn or await asyncio.open_connection("127.0.0.1", srv.http_port)
                started = time.perf_counter()
                status, close = await asyncio.wait_for(_exchange(*conn, bodies[n % len(bodies)]), 120)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as exc:
                tally.other[type(exc).__name__] += 1
                if conn:
                    conn[1].close()
                conn = None
                await asyncio.sleep(0.05)
                continue
            latency = time.perf_counter() - started
            tally.latencies.append(latency)
            if status < 300:
                tally.ok += 1
            elif status in (429, 503):
                tally.refusals.append(latency)
            else:
                tally.other[str(status)] += 1
            if close:
                conn[1].close()
                conn = None
            n += 1
        if conn:
            conn[1].close()

    sampler = asyncio.create_task(sample())
    await asyncio.gather(*(worker(i) for i in range(ctx.sizes.connections)))
    sampler.cancel()


def run(ctx: Context) -> Outcome:
    tally = Tally()
    with ctx.server() as srv:
        for i in range(4):  # warm up: the idle figure is of a server that has served
            srv.post("/api/v1/events", {"events": trenchcoat.batch(i)})
        warm = 4
        time.sleep(1)
        idle = srv.rss_bytes()
        peak = [idle]
        asyncio.run(_load(srv, ctx, tally, peak))
        time.sleep(ctx.sizes.settle)
        after = srv.rss_bytes()
        stored = ctx.db.scalar("SELECT count(*) FROM log_entries WHERE type = 'trenchcoat.event'")
    acknowledged = (tally.ok + warm) * trenchcoat.BATCH
    answered = tally.ok + len(tally.refusals) + sum(tally.other.values())
    slow = sum(x >= FAST for x in tally.refusals)
    refusals = sorted(tally.refusals) or [0.0]
    refusal_p99 = refusals[round(0.99 * (len(refusals) - 1))]
    lat = sorted(tally.latencies) or [float("nan")]
    mb = 2**20
    figures = (
        f"{ctx.sizes.connections} connections x {trenchcoat.BATCH}-event batches for {ctx.sizes.duration:.0f} s: "
        f"RSS idle {idle / mb:.0f} MB, peak {peak[0] / mb:.0f} MB, {after / mb:.0f} MB {ctx.sizes.settle:.0f} s after; "
        f"{tally.ok:,} 2xx, {len(tally.refusals):,} 429/503 ({len(tally.refusals) - slow:,} fast: "
        f"{(len(tally.refusals) - slow) / max(answered, 1):.0%} of answers; p99 {refusal_p99:.2f} s), "
        f"other {dict(tally.other) or 0}, of {answered:,}; p50 {lat[len(lat) // 2]:.2f} s, "
        f"max {lat[-1]:.2f} s; {stored:,} of {acknowledged:,} acknowledged events stored"
    )
    within_targets = peak[0] < PEAK_LIMIT and after <= idle * 1.2 and refusal_p99 < FAST
    passed = (within_targets or not ctx.sizes.strict) and not tally.other and stored == acknowledged
    return Outcome(passed, figures)
