"""The live path's bench scenarios, on a log of 1 million entries (written
into the database before the server starts, as the server appends them).

`followers`: single-event writes (`POST /sessions/{id}/events`, as
`runtime-events`) with no follower, then with 100 live NDJSON followers
(`/v1/log:watch?after_seq=-1`), then with none again, back to back on the
same server; the rate with followers is compared with the mean of the two
without. The
followers run in another process; each must receive every entry committed
after its opening heartbeat, in order (checked against the database).

`readers`: the same, with 10 followers and one reader from seq 0 to the
end (`stop_at_end`, in another process, checked) during the writes in
between, instead of 100 followers.

`catch-up`: one reader from seq 0 to the end
(`/v1/log:watch?after_seq=0&stop_at_end=true`, in another process) while
`/healthz` and `GET /sessions` are probed every ~20 ms: entries/s, and the
probes' p50/p99.
"""

from __future__ import annotations

import asyncio
import atexit
import multiprocessing
import shutil
import socket
import sqlite3
import tempfile
import time
from collections.abc import Callable
from functools import cache
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import orjson

from tests.bench import follow_client, loadgen

if TYPE_CHECKING:  # run.py imports this module to register the scenario
    from tests.bench.run import Figures, ServerProcess

LOG_ENTRIES = 1_000_000
T = TypeVar("T")
FOLLOWERS = 100


@cache
def _template() -> Path:
    """A migrated SQLite database holding LOG_ENTRIES runtime events, made once
    per bench run (each scenario run gets a copy). It lives in a directory of
    this run's own: a shared path was rebuilt by other runs on the same
    machine (other branches, other schemas) while this one copied it, and a
    scenario then read a log that was empty or half made."""
    from sqlalchemy import create_engine

    from service.store.database import migrate
    from service.store.log import Tx

    where = tempfile.TemporaryDirectory(prefix="agentplane-bench-")
    atexit.register(where.cleanup)
    path = Path(where.name) / f"log-{LOG_ENTRIES}.db"
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
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute("SELECT count(*) FROM log_entries").fetchone()
    if count != LOG_ENTRIES:
        raise RuntimeError(f"the prepared log holds {count:,} entries, {LOG_ENTRIES:,} expected")


def _seqs_after(db: Path, after: int) -> list[int]:
    with sqlite3.connect(db) as conn:
        return [
            r[0] for r in conn.execute("SELECT seq FROM log_entries WHERE seq > ? ORDER BY seq", (after,))
        ]


def _bracketed(srv: ServerProcess, total: int, concurrency: int, load: Callable[[], T]) -> tuple[float, T]:
    """Writes alone, `load()` (which runs writes beside something), writes
    alone again: so a drift of the machine's speed during the run (up to 40%
    within minutes here) weighs on both sides. The mean rate alone, printed,
    and what `load` gave."""
    from tests.bench.run import runtime_events

    before = runtime_events(srv, total, concurrency, prefix="before")
    result = load()
    after = runtime_events(srv, total, concurrency, prefix="after")
    print(
        f"    without: {before.rate:,.0f} then {after.rate:,.0f} events/s "
        f"(server CPU {before.cpu_us:.0f}, {after.cpu_us:.0f} µs/op)"
    )
    return (before.rate + after.rate) / 2, result


def _checked(reports: list[follow_client.Report], expected: list[int]) -> None:
    missed = follow_client.problems(reports, expected)
    if missed:
        raise RuntimeError(f"{len(missed)} of {len(reports)} followers: {missed[0]}")


def followers(srv: ServerProcess, total: int, concurrency: int) -> Figures:
    from tests.bench.run import runtime_events

    def followed() -> tuple[Figures, float]:
        readers = follow_client.Followers(srv.http_port, FOLLOWERS)
        try:
            # The followers' own CPU: on a small machine they compete with the server.
            readers_cpu = readers.cpu_seconds()
            during = runtime_events(srv, total, concurrency, prefix="followed")
            readers_cpu = readers.cpu_seconds() - readers_cpu
            expected = _seqs_after(srv.db_path, min(readers.starts))
            _checked(readers.finish(expected[-1]), expected)
        finally:
            readers.close()
        return during, readers_cpu

    alone, (during, readers_cpu) = _bracketed(srv, total, concurrency, followed)
    print(
        f"    with {FOLLOWERS} between them: {during.rate:,.0f} events/s = {during.rate / alone:.0%} of their mean, "
        f"each follower got all {total:,} entries in order; "
        f"the followers' process used {readers_cpu / total * 1e6:.0f} µs CPU per event"
    )
    during.unit = f"events/s with {FOLLOWERS} followers"
    return during


READERS_FOLLOWERS = 10


def readers(srv: ServerProcess, total: int, concurrency: int) -> Figures:
    """`followers` with 10 followers and a reader from seq 0 while the writes run."""
    from tests.bench.run import _cpu_seconds, runtime_events

    ctx = multiprocessing.get_context("spawn")

    def read() -> tuple[Figures, float, tuple[str, list[int], bool, float]]:
        own = _cpu_seconds(srv.pid)  # the server process's own, without its children
        live = follow_client.Followers(srv.http_port, READERS_FOLLOWERS)
        parent, child = ctx.Pipe()
        reader = ctx.Process(target=_read_all, args=(srv.http_port, child))
        reader.start()
        try:
            during = runtime_events(srv, total, concurrency, prefix="during")
            own = _cpu_seconds(srv.pid) - own
            expected = _seqs_after(srv.db_path, min(live.starts))
            _checked(live.finish(expected[-1]), expected)
            got = parent.recv()
        finally:
            live.close()
            reader.join()
        return during, own, got

    alone, (during, own, (status, seqs, ended, seconds)) = _bracketed(srv, total, concurrency, read)
    if (
        not status.startswith("HTTP/1.1 200")
        or not ended
        or seqs != sorted(set(seqs))
        or len(seqs) < LOG_ENTRIES
    ):
        raise RuntimeError(f"the reader from 0 was answered {status!r} and got {len(seqs):,} entries")
    print(
        f"    with {READERS_FOLLOWERS} followers and a reader from 0 between them: {during.rate:,.0f} events/s "
        f"= {during.rate / alone:.0%} of their mean; the server process's own CPU {own / total * 1e6:.0f} µs "
        f"per event; the reader got {len(seqs):,} entries in order in {seconds:.1f} s"
    )
    during.unit = f"events/s with {READERS_FOLLOWERS} followers and a reader from 0"
    return during


def _read_all(port: int, pipe: Connection) -> None:
    """Read the whole log from seq 0 over NDJSON; send back the response's
    status line, the entries' seqs in the order received, whether the body
    ended as a chunked body ends (not cut), and the seconds it took."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.perf_counter()
        sock.sendall(b"GET /v1/log:watch?after_seq=0&stop_at_end=true HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data, seqs, ended = b"", [], False
        while b"\r\n\r\n" not in data and (chunk := sock.recv(1 << 16)):
            data += chunk
        status = data.split(b"\r\n", 1)[0].decode(errors="replace")
        sock.settimeout(60)
        tail = data[-7:]  # the body's last bytes, to see its end however the reads split it
        while status.startswith("HTTP/1.1 200"):
            cut = data.rfind(b"\n") + 1
            seqs.extend(int(m) for m in follow_client.SEQ.findall(data, 0, cut))
            if tail == b"\r\n0\r\n\r\n":  # the chunked body's end
                ended = True
                break
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            data = data[cut:] + chunk
            tail = (tail + chunk)[-7:]
        pipe.send((status, seqs, ended, time.perf_counter() - started))


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

    async def measure() -> tuple[tuple[str, list[int], bool, float], list[float], float]:
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

    (status, seqs, ended, seconds), probes, cpu = asyncio.run(measure())
    expected = _seqs_after(srv.db_path, 0)
    # A reader that got less (or an error, or nothing) fails the scenario: its rate would mean nothing.
    if not status.startswith("HTTP/1.1 200") or not ended or seqs != expected or len(seqs) < LOG_ENTRIES:
        raise RuntimeError(
            f"the reader was answered {status!r} and got {len(seqs):,} entries"
            f"{'' if ended else ' (the body was cut)'}; all {len(expected):,} expected in order"
        )
    count = len(seqs)
    probes.sort()
    p50 = probes[len(probes) // 2] * 1e3
    p99 = probes[min(len(probes) - 1, round(0.99 * (len(probes) - 1)))] * 1e3
    print(
        f"    {len(probes)} probes during the read: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {probes[-1] * 1e3:.1f} ms"
    )
    return Figures(count / seconds, p50, p99, "entries/s (p50/p99: probes)", cpu / count * 1e6)
