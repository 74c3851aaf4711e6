"""The `overload` bench scenario: 1,024 connections posting 1,000-event
Trenchcoat batches (POST /api/v1/events) as fast as they are answered, for
`--duration` seconds (60). A refused connection waits as its Retry-After
says, as a client that retries should; BENCH_IGNORE_RETRY_AFTER=1 sends
again at once instead (the worst case: refusal latency is then mostly the
generator's own queue, 1,024 connections over the refusals a second).

What it checks (issue 14's target): the server's RSS, sampled every 0.1 s
from /proc, stays under 600 MB at peak and is back within 20% of its idle
figure a minute after the burst; every 2xx is stored (rows counted in the
database against the accepted events); everything else is a 503/429, and
fast (p99 under 1 s), with no connection dropped. The idle figure is that of
a server that has served a few batches (as in the chaos check): what its
first requests load once (modules, compiled decoders) is not the burst's.
It reports accepted events/s, refusals/s and their latencies, the RSS
figures and their ratios to idle.

The generator must cost little beside the server on 2 cores: raw asyncio
streams on uvloop, one pre-built body per connection in which only the
session id changes (a distinct session per request, so no natural-key
de-duplication can merge two requests).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tests.bench import loadgen
from tests.bench.trenchcoat import BATCH, batch

if TYPE_CHECKING:  # run.py imports this module to register the scenario
    from tests.bench.run import Figures, ServerProcess

# The targets (issue 14).
PEAK_RSS_MB = 600
SETTLE_SECONDS = 60
BACK_WITHIN = 0.20
SAMPLE_SECONDS = 0.1
FAST_SECONDS = 1.0  # refusals (p99) slower than this are not shedding load
WARM_BATCHES = 4
_PLACEHOLDER = "00000000-0000-4000-8000-000000000000"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """The server's RSS every SAMPLE_SECONDS, on a thread (the generator's
    loop is busy), with the time of each sample."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), rss_mb(self.pid)))
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, since: float, until: float) -> float:
        return max((mb for t, mb in self.samples if since <= t <= until), default=0.0)


@dataclass
class Tally:
    accepted: list[float] = field(default_factory=list)
    refused: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    dropped: int = 0


def _template() -> bytes:
    events = batch(0)
    for event in events:
        event["session_id"] = _PLACEHOLDER
    return json.dumps({"events": events}).encode()


async def _response(reader: asyncio.StreamReader) -> tuple[int, float]:
    """A response's status and Retry-After (0 without one); its body is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length, retry_after = 0, 0.0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"retry-after":
            retry_after = float(value)
    if length:
        await reader.readexactly(length)
    return int(lines[0].split()[1]), retry_after


async def load(port: int, connections: int, seconds: float, honour_retry_after: bool = True) -> Tally:
    tally = Tally()
    template = _template()
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        writer: asyncio.StreamWriter | None = None
        while time.perf_counter() < deadline:
            if writer is None:
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    tally.dropped += 1  # not even connected: counted as a failure
                    await asyncio.sleep(0.05)
                    continue
            body = template.replace(_PLACEHOLDER.encode(), str(uuid.uuid4()).encode())
            started = time.perf_counter()
            writer.write(loadgen.request_bytes("POST", "/api/v1/events", body))
            try:
                status, retry_after = await _response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                tally.dropped += 1  # the server closed it: it may or may not have stored it
                writer.close()
                writer = None
                continue
            took = time.perf_counter() - started
            tally.statuses[status] = tally.statuses.get(status, 0) + 1
            (tally.accepted if 200 <= status < 300 else tally.refused).append(took)
            if retry_after and honour_retry_after:
                await asyncio.sleep(min(retry_after, deadline - time.perf_counter()))
        if writer is not None:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return tally


def _ms(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1e3


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _run_load(port: int, connections: int, seconds: float) -> Tally:
    honour = not os.environ.get("BENCH_IGNORE_RETRY_AFTER")
    try:
        import uvloop

        return uvloop.run(load(port, connections, seconds, honour))
    except ImportError:
        return asyncio.run(load(port, connections, seconds, honour))


def overload(srv: ServerProcess, seconds: int, connections: int) -> Figures:
    """`seconds` of load over `connections` connections, then SETTLE_SECONDS idle."""
    from tests.bench.run import Figures, count_rows

    cold = rss_mb(srv.pid)
    for i in range(WARM_BATCHES):
        srv.post("/api/v1/events", {"events": batch(i)})
    with RssSampler(srv.pid) as rss:
        time.sleep(2)
        idle = statistics.median(mb for _, mb in rss.samples[-10:])
        cpu, started, own = srv.cpu_seconds(), time.monotonic(), _own_cpu()
        tally = _run_load(srv.http_port, connections, seconds)
        ended = time.monotonic()
        cpu, own = srv.cpu_seconds() - cpu, _own_cpu() - own
        time.sleep(SETTLE_SECONDS)
        peak = rss.peak(started, ended + 1)
        soon = rss.peak(ended + 4, ended + 6)
        after = rss.samples[-1][1]
    load_seconds = ended - started
    stored = count_rows(srv.db_path, "type = 'trenchcoat.event'") - WARM_BATCHES * BATCH
    accepted = len(tally.accepted) * BATCH
    refusal_p99 = _ms(tally.refused, 99)
    requests = len(tally.accepted) + len(tally.refused)
    print(
        f"  overload: {connections} connections, {load_seconds:.0f} s, "
        f"{'ignoring' if os.environ.get('BENCH_IGNORE_RETRY_AFTER') else 'honouring'} Retry-After, load average "
        f"{os.getloadavg()[0]:.2f}: {len(tally.accepted)} batches accepted "
        f"({accepted / load_seconds:,.0f} events/s, p50 {_ms(tally.accepted, 50):.0f} ms, "
        f"p99 {_ms(tally.accepted, 99):.0f} ms), {len(tally.refused) / load_seconds:,.0f} refusals/s "
        f"(p50 {_ms(tally.refused, 50):.1f} ms, p99 {_ms(tally.refused, 99):.1f} ms), "
        f"statuses {dict(sorted(tally.statuses.items()))}, dropped {tally.dropped}; "
        f"server RSS at start {cold:.0f} MB, idle after {WARM_BATCHES} batches {idle:.0f} MB, "
        f"peak {peak:.0f} MB ({peak / idle:.2f}x idle), 5 s after {soon:.0f} MB, "
        f"{SETTLE_SECONDS} s after {after:.0f} MB ({after / idle - 1:+.0%}); {stored:,} events stored; "
        f"server CPU {cpu / max(1, requests) * 1e6:.0f} µs/request, {cpu / max(1, accepted) * 1e6:.1f} µs "
        f"per accepted event ({cpu / load_seconds:.2f} cores), generator {own / load_seconds:.2f} cores"
    )
    if not accepted <= stored <= accepted + tally.dropped * BATCH:
        raise RuntimeError(f"{accepted} events acknowledged, {stored} stored")
    if set(tally.statuses) - {200, 429, 503}:
        raise RuntimeError(f"statuses other than 200/429/503: {tally.statuses}")
    failures = []
    if tally.dropped:
        failures.append(f"{tally.dropped} requests without an answer (connection closed or refused)")
    if tally.refused and refusal_p99 >= FAST_SECONDS * 1e3:
        failures.append(f"refusals p99 {refusal_p99:.0f} ms, not under {FAST_SECONDS * 1e3:.0f} ms")
    if peak > PEAK_RSS_MB:
        failures.append(f"peak RSS {peak:.0f} MB over {PEAK_RSS_MB} MB")
    if after > idle * (1 + BACK_WITHIN):
        failures.append(f"RSS {after:.0f} MB a minute later, idle was {idle:.0f} MB")
    if failures:
        print("  overload FAILED: " + "; ".join(failures))
    return Figures(
        accepted / load_seconds,
        _ms(tally.refused, 50),
        refusal_p99,
        "accepted events/s (p50/p99: refusals)",
        cpu / max(1, requests) * 1e6,
    )
