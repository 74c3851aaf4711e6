"""The live path's bench scenarios, on a log of 1 million entries (written
into the database before the server starts, as the server appends them).

`followers`: single-event writes (`POST /sessions/{id}/events`, as
`runtime-events`) with no follower, then with 100 live NDJSON followers
(`/v1/log:watch?after_seq=-1`), back to back on the same server. The
followers run in another process; each must receive every entry committed
after its opening heartbeat, in order (checked against the database).

`catch-up`: one reader from seq 0 to the end
(`/v1/log:watch?after_seq=0&stop_at_end=true`, in another process) while
`/healthz` and `GET /sessions` are probed every ~20 ms: entries/s, and the
probes' p50/p99.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator
from functools import cache
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from tests.bench import loadgen

if TYPE_CHECKING:  # run.py imports this module to register the scenario
    from tests.bench.run import Figures, ServerProcess

LOG_ENTRIES = 1_000_000
FOLLOWERS = 100
_SEQ = re.compile(rb'"entry":\{"seq":(\d+)')
_TEMPLATE_DIR = Path(tempfile.gettempdir()) / "agentplane-bench"


@cache
def _template() -> Path:
    """A migrated SQLite database holding LOG_ENTRIES runtime events, made once
    per bench run (each scenario run gets a copy)."""
    from sqlalchemy import create_engine

    from service.store.database import migrate
    from service.store.log import Tx

    _TEMPLATE_DIR.mkdir(exist_ok=True)
    path = _TEMPLATE_DIR / f"log-{LOG_ENTRIES}.db"
    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    migrate(url)
    engine = create_engine(url)
    data = orjson.dumps(
        {
            "event_type": "post_tool",
            "session_id": "fill",
            "tool_name": "Read",
            "tool_input": {"file_path": "/src/app.py"},
            "tool_output": "x" * 200,
        }
    ).decode()
    with engine.begin() as conn:
        tx = Tx(conn)
        for start in range(0, LOG_ENTRIES, 20_000):
            rows = [(f"fill-{i % 16}", "2026-01-01T00:00:00Z", "post_tool", data) for i in range(20_000)]
            tx.append_many("bench.fill", "default", rows[: LOG_ENTRIES - start])
    engine.dispose()
    return path


def prepare(db: Path) -> None:
    shutil.copyfile(_template(), db)


def _seqs_after(db: Path, after: int) -> list[int]:
    with sqlite3.connect(db) as conn:
        return [
            r[0] for r in conn.execute("SELECT seq FROM log_entries WHERE seq > ? ORDER BY seq", (after,))
        ]


async def _entry_seqs(reader: asyncio.StreamReader) -> AsyncIterator[list[int]]:
    """The seqs of the entries of an NDJSON watch response, chunk by chunk,
    until the response (or the connection) ends."""
    tail = b""
    while True:
        chunk = await reader.read(1 << 20)
        if not chunk:
            return
        data = tail + chunk
        cut = data.rfind(b"\n") + 1
        yield [int(m) for m in _SEQ.findall(data, 0, cut)]
        tail = data[cut:]
        if data.endswith(b"\r\n0\r\n\r\n"):  # the chunked body's end
            return


async def _follow_all(port: int, n: int, pipe: Connection) -> None:
    """n followers; tells the parent each one's start cursor once all are
    open, then reads until told the last seq; sends back each one's seqs."""
    streams = []
    for _ in range(n):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /v1/log:watch?after_seq=-1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        streams.append((reader, writer))
    starts = []
    for reader, _ in streams:
        await reader.readuntil(b'"cursor":')  # the opening heartbeat
        starts.append(int((await reader.readuntil(b","))[:-1]))
    pipe.send(starts)
    got: list[list[int]] = [[] for _ in range(n)]
    last = asyncio.get_running_loop().run_in_executor(None, pipe.recv)

    async def read(i: int) -> None:
        async for seqs in _entry_seqs(streams[i][0]):
            got[i].extend(seqs)
            if last.done() and got[i] and got[i][-1] >= last.result():
                return

    readers = [asyncio.create_task(read(i)) for i in range(n)]
    final = await last
    behind = [t for g, t in zip(got, readers, strict=True) if not (g and g[-1] >= final)]
    if behind:  # each returns once it has read up to `final`
        await asyncio.wait(behind, timeout=120)
    for t in readers:
        t.cancel()
    pipe.send(got)


def _followers_process(port: int, n: int, pipe: Connection) -> None:
    asyncio.run(_follow_all(port, n, pipe))


def followers(srv: ServerProcess, total: int, concurrency: int) -> Figures:
    from tests.bench.run import ServerProcess, runtime_events

    alone = runtime_events(srv, total, concurrency)
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_followers_process, args=(srv.http_port, FOLLOWERS, child))
    proc.start()
    try:
        starts = parent.recv()
        # The followers' own CPU: on a small machine they compete with the server.
        readers = ServerProcess(0, 0, srv.db_path, proc.pid or 0)
        readers_cpu = readers.cpu_seconds()
        followed = runtime_events(srv, total, concurrency, prefix="followed")
        readers_cpu = readers.cpu_seconds() - readers_cpu
        expected = _seqs_after(srv.db_path, min(starts))
        parent.send(expected[-1])
        got = parent.recv()
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    for start, seqs in zip(starts, got, strict=True):
        want = [s for s in expected if s > start]
        if seqs != want:
            raise RuntimeError(f"a follower got {len(seqs)} entries, {len(want)} expected (or out of order)")
    share = followed.rate / alone.rate
    print(
        f"    without followers {alone.rate:,.0f} events/s (server CPU {alone.cpu_us:.0f} µs/op); "
        f"with {FOLLOWERS}: {followed.rate:,.0f} events/s = {share:.0%}, "
        f"each follower got all {total:,} entries in order; "
        f"the followers' process used {readers_cpu / total * 1e6:.0f} µs CPU per event"
    )
    followed.unit = f"events/s with {FOLLOWERS} followers"
    return followed


def _read_all(port: int, pipe: Connection) -> None:
    """Read the whole log from seq 0 over NDJSON; send back (count, in order, seconds)."""

    async def read() -> tuple[int, bool, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.perf_counter()
        writer.write(b"GET /v1/log:watch?after_seq=0&stop_at_end=true HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        count, last, ordered = 0, 0, True
        async for seqs in _entry_seqs(reader):
            for seq in seqs:
                ordered = ordered and seq > last
                last = seq
            count += len(seqs)
        return count, ordered, time.perf_counter() - started

    pipe.send(asyncio.run(read()))


async def _probe(port: int, stop: asyncio.Event) -> list[float]:
    times: list[float] = []
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    requests = [loadgen.request_bytes("GET", "/healthz"), loadgen.request_bytes("GET", "/sessions")]
    while not stop.is_set():
        for req in requests:
            started = time.perf_counter()
            writer.write(req)
            status, _ = await loadgen._read_response(reader)
            times.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"probe answered {status}")
        await asyncio.sleep(0.02)
    writer.close()
    return times


def catch_up(srv: ServerProcess, total: int, concurrency: int) -> Figures:
    from tests.bench.run import Figures

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()

    async def measure() -> tuple[tuple[int, bool, float], list[float], float]:
        stop = asyncio.Event()
        probes = asyncio.create_task(_probe(srv.http_port, stop))
        await asyncio.sleep(0.2)
        cpu = srv.cpu_seconds()
        proc = ctx.Process(target=_read_all, args=(srv.http_port, child))
        proc.start()
        result = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
        cpu = srv.cpu_seconds() - cpu
        proc.join()
        stop.set()
        return result, await probes, cpu

    (count, ordered, seconds), probes, cpu = asyncio.run(measure())
    if count != LOG_ENTRIES or not ordered:
        raise RuntimeError(f"the reader got {count:,} entries (ordered: {ordered}), {LOG_ENTRIES:,} expected")
    probes.sort()
    p50 = probes[len(probes) // 2] * 1e3
    p99 = probes[min(len(probes) - 1, round(0.99 * (len(probes) - 1)))] * 1e3
    print(
        f"    {len(probes)} probes during the read: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {probes[-1] * 1e3:.1f} ms"
    )
    return Figures(count / seconds, p50, p99, "entries/s (p50/p99: probes)", cpu / count * 1e6)
