"""The `channels` scenario: one sender, 50 gRPC stream subscribers.

The sender posts `total` messages to one channel over gRPC, keeping
`concurrency` sends in flight; 50 subscribers (another session) follow the
channel with StreamChannelMessages. The latency of a delivery is from the
start of the send to the subscriber receiving it (so it includes the send's
commit); the rate counts deliveries (messages x subscribers) from the first
send to the last delivery. Every subscriber must receive every message once,
in seq order, and the database must hold every message.

    python -m tests.bench.run --scenario channels
    python -m tests.bench.channels --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

The second form runs two `agentplane serve` replicas on PostgreSQL: the
sender on one, the subscribers on the other.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from agentplane.v1 import channels_pb2 as pb
from agentplane.v1 import channels_pb2_grpc as rpc

if TYPE_CHECKING:
    from tests.bench.run import Figures, ServerProcess

SUBSCRIBERS = 50
# The paced phase: the target rate of deliveries, for this many seconds.
PACED_RATE = 5_500
PACED_SECONDS = 8
CHANNEL = "bench"
PACED_CHANNEL = "bench-paced"  # its own channel, so its streams start empty
SENDER = (("x-agh-session-id", "sender"), ("x-agh-agent", "bench"))
READER = (("x-agh-session-id", "reader"), ("x-agh-agent", "bench"))


def _post(http_port: int, path: str, body: object) -> None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{http_port}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(req).close()


def setup(http_port: int) -> None:
    for sid in ("sender", "reader"):
        _post(http_port, "/sessions", {"session_id": sid, "session_name": sid, "agent_name": "bench"})
    for channel in (CHANNEL, PACED_CHANNEL):
        _post(http_port, "/v1/channels", {"id": channel})


def _message(i: int, channel: str = CHANNEL) -> pb.SendChannelMessageRequest:
    req = pb.SendChannelMessageRequest(channel=channel)
    req.body.struct_value.update({"i": i, "text": "build is green on main"})
    md = req.metadata
    md.task_id, md.run_id, md.correlation_id, md.message_kind = "task", "run", f"c{i}", "status"
    md.coordination_channel_id = channel
    return req


async def measure(
    send_target: str,
    stream_target: str,
    total: int,
    in_flight: int,
    pace: float = 0,
    channel: str = CHANNEL,
) -> tuple[float, list[float]]:
    """(deliveries per second, delivery latencies in seconds); `pace`:
    messages a second to send (0: as fast as `in_flight` sends allow)."""
    started: dict[int, float] = {}
    latencies: list[float] = []
    seqs: list[int] = []
    async with (
        grpc.aio.insecure_channel(send_target) as send_ch,
        grpc.aio.insecure_channel(stream_target) as stream_ch,
    ):
        sender = rpc.AghChannelServiceStub(send_ch)
        reader = rpc.AghChannelServiceStub(stream_ch)
        opened = asyncio.Event()
        ready = 0

        async def subscribe() -> list[int]:
            nonlocal ready
            got: list[int] = []
            call = reader.StreamChannelMessages(
                pb.StreamChannelMessagesRequest(channel=channel), metadata=READER
            )
            async for item in call:
                if not item.HasField("message"):
                    continue
                i = int(item.message.body.struct_value["i"])  # type: ignore[arg-type]
                if i < 0:  # the warm-up: this stream is open
                    ready += 1
                    if ready == SUBSCRIBERS:
                        opened.set()
                    continue
                latencies.append(time.perf_counter() - started[i])
                got.append(item.message.seq)
                if len(got) == total:
                    break
            call.cancel()
            return got

        readers = [asyncio.create_task(subscribe()) for _ in range(SUBSCRIBERS)]
        await sender.SendChannelMessage(_message(-1, channel), metadata=SENDER)
        await asyncio.wait_for(opened.wait(), 30)
        window = asyncio.Semaphore(in_flight)

        async def send(i: int) -> None:
            async with window:
                started[i] = time.perf_counter()
                reply = await sender.SendChannelMessage(_message(i, channel), metadata=SENDER)
                seqs.append(reply.message.seq)

        t0 = time.perf_counter()
        sends = []
        for i in range(total):
            if pace:  # the i-th send starts at t0 + i / pace
                await asyncio.sleep(max(0.0, t0 + i / pace - time.perf_counter()))
            sends.append(asyncio.create_task(send(i)))
        await asyncio.gather(*sends)
        results = await asyncio.wait_for(asyncio.gather(*readers), 120)
        elapsed = time.perf_counter() - t0
    expected = sorted(seqs)
    for got in results:
        if got != expected:
            raise RuntimeError("a subscriber missed, repeated or reordered messages")
    return SUBSCRIBERS * total / elapsed, latencies


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


def run(srv: ServerProcess, total: int, concurrency: int) -> Figures:
    from tests.bench.run import Figures

    setup(srv.http_port)
    target = f"127.0.0.1:{srv.grpc_port}"
    cpu = srv.cpu_seconds()
    rate, latencies = asyncio.run(measure(target, target, total, concurrency))
    cpu = srv.cpu_seconds() - cpu
    with sqlite3.connect(srv.db_path) as conn:
        stored = int(conn.execute("SELECT count(*) FROM channel_messages").fetchone()[0])
    if stored != total + 1:  # and the warm-up
        raise RuntimeError(f"{total} messages acknowledged but {stored - 1} stored")
    # The latency target at the throughput target: sends paced so that the
    # subscribers get PACED_RATE deliveries a second, not as fast as possible.
    pace = PACED_RATE / SUBSCRIBERS
    paced_rate, paced = asyncio.run(
        measure(target, target, int(pace * PACED_SECONDS), concurrency, pace, PACED_CHANNEL)
    )
    print(
        f"    paced at {pace:.0f} sends/s ({paced_rate:,.0f} deliveries/s): delivery p50 "
        f"{_percentile(paced, 50) * 1e3:.1f} ms, p99 {_percentile(paced, 99) * 1e3:.1f} ms   [target p99 < 20 ms]"
    )
    return Figures(
        rate,
        _percentile(latencies, 50) * 1e3,
        _percentile(latencies, 99) * 1e3,
        "deliveries/s",
        cpu / (total * SUBSCRIBERS) * 1e6,
    )


@contextmanager
def _replica(url: str, workdir: Path) -> Iterator[tuple[int, int, int]]:
    """An `agentplane serve` on `url`: (http port, grpc port, pid)."""
    from tests.bench.run import free_port
    from tests.e2e.test_serve_process import serve

    http_port, grpc_port = free_port(), free_port()
    workdir.mkdir()
    args = ("--http-port", str(http_port), "--grpc-port", str(grpc_port))
    with serve(workdir, url, *args, health=f"http://127.0.0.1:{http_port}/healthz") as proc:
        yield http_port, grpc_port, proc.pid


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _scratch_database(url: str) -> Iterator[str]:
    """A database of its own next to the one `url` names, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"agentplane_bench_{os.getpid()}"
    admin = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def replicas(url: str, total: int, in_flight: int, runs: int, pace: float) -> None:
    """Sender on one PostgreSQL replica, 50 subscribers on another."""
    figures = []
    for n in range(runs):
        with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
            db = stack.enter_context(_scratch_database(url))
            a = stack.enter_context(_replica(db, Path(tmp) / "a"))
            b = stack.enter_context(_replica(db, Path(tmp) / "b"))
            setup(a[0])
            cpu = _cpu(a[2]) + _cpu(b[2])
            rate, latencies = asyncio.run(
                measure(f"127.0.0.1:{a[1]}", f"127.0.0.1:{b[1]}", total, in_flight, pace)
            )
            cpu = _cpu(a[2]) + _cpu(b[2]) - cpu
        p50, p99 = _percentile(latencies, 50) * 1e3, _percentile(latencies, 99) * 1e3
        cpu_us = cpu / (total * SUBSCRIBERS) * 1e6
        figures.append((rate, p50, p99, cpu_us))
        print(
            f"  channels-replicas run {n + 1}: {rate:,.0f} deliveries/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
            f"servers' CPU {cpu_us:.1f} µs/delivery"
        )
    med = [statistics.median(f[i] for f in figures) for i in range(4)]
    print(
        f"channels-replicas (PostgreSQL, 2 replicas, median of {runs}): {med[0]:,.0f} deliveries/s, "
        f"p50 {med[1]:.2f} ms, p99 {med[2]:.2f} ms, servers' CPU {med[3]:.1f} µs/delivery   "
        "[target p99 < 50 ms, >= 5,000 deliveries/s]"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres", required=True, help="PostgreSQL URL (a scratch database is made beside it)"
    )
    parser.add_argument("--total", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--pace", type=float, default=0, help="messages/s to send (0: as fast as in-flight allows)"
    )
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    replicas(args.postgres, args.total, args.in_flight, args.runs, args.pace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
