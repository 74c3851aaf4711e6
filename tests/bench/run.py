"""`make bench`: start `agentplane serve` as a real process and measure it.

Each scenario runs several times on a fresh SQLite database; the report gives
the median of the runs, with the machine's core count. After each run the
database is read directly to check that every acknowledged write is there.

    make bench                                  # every scenario
    make bench BENCH_ARGS="--runs 5 --scenario runtime-events"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import KW_ONLY, dataclass
from pathlib import Path

from tests.bench import followers, hooks, loadgen, retention
from tests.bench.channels import run as channel_deliveries
from tests.bench.console import console_reads
from tests.bench.console_browser import console_browser
from tests.bench.otlp_export import otlp_export
from tests.bench.otlp_ingest import otlp_logs
from tests.bench.overload import overload
from tests.bench.queue import run as queue_cycles
from tests.bench.rules import rules_bench
from tests.bench.tool_calls import run as tool_calls
from tests.bench.tool_calls import run_stream as tool_calls_stream
from tests.bench.tracer import tracer_events
from tests.bench.transfer import export_file, import_file
from tests.bench.trenchcoat import trenchcoat_events

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """A process's CPU time (user + system, all threads; 0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class ServerProcess:
    http_port: int
    grpc_port: int
    db_path: Path
    pid: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def cpu_seconds(self) -> float:
        """CPU time (user + system, all threads) the server has used so far,
        with its child processes' (the follower process, the OTLP exporter)."""
        return sum(_cpu_seconds(pid) for pid in [self.pid, *self.children()])

    def children(self) -> list[int]:
        """The server's child processes now."""
        found = []
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(pid) for pid in (task / "children").read_text().split()]
        return found

    def rss_bytes(self) -> int:
        """The server's resident memory now."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def post(self, path: str, body: object) -> int:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req) as resp:
            return int(resp.status)


@contextmanager
def server_process(
    workdir: Path,
    database_url: str | None = None,
    ports: tuple[int, int] | None = None,
    env: dict[str, str] | None = None,
    prepare: Callable[[Path], None] | None = None,
    wrapper: Sequence[str] = (),
    start_seconds: float = 30,
) -> Iterator[ServerProcess]:
    """`agentplane serve` on a fresh SQLite file in workdir (or on database_url),
    stopped with SIGTERM at the end (SIGKILL if it does not exit within 30 s).
    The chaos suite passes the same ports again to restart a killed server;
    `prepare(db)` writes to the SQLite file before the server starts (a large log);
    `wrapper` runs it (valgrind), given `start_seconds` to answer."""
    http_port, grpc_port = ports or (free_port(), free_port())
    db = workdir / "bench.db"
    if prepare is not None:
        prepare(db)
    env = {**os.environ, "AGENTPLANE_DATABASE_URL": database_url or f"sqlite:///{db}", **(env or {})}
    log = (workdir / "server.log").open("ab")  # a file, not a pipe a chatty server could fill
    proc = subprocess.Popen(
        [
            *wrapper,
            sys.executable,
            "-m",
            "agentplane_cli.main",
            "serve",
            "--http-port",
            str(http_port),
            "--grpc-port",
            str(grpc_port),
        ],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + start_seconds
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = (workdir / "server.log").read_text(errors="replace")[-4000:]
                    raise RuntimeError(f"server did not start: {err}") from None
                time.sleep(0.1)
        yield ServerProcess(http_port, grpc_port, db, proc.pid, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def count_rows(db: Path, where: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(f"SELECT count(*) FROM log_entries WHERE {where}").fetchone()[0])


@dataclass
class Figures:
    rate: float
    p50_ms: float
    p99_ms: float
    unit: str
    # Server CPU per operation: steadier than the rate on a shared machine.
    cpu_us: float = 0.0


def runtime_events(srv: ServerProcess, total: int, concurrency: int, prefix: str = "bench") -> Figures:
    """Single-event POST /sessions/{id}/events, one session per connection."""
    sessions = [f"{prefix}-{i}" for i in range(concurrency)]
    for sid in sessions:
        srv.post("/sessions", {"session_id": sid, "session_name": "bench"})
    bodies = []
    for i in range(total):
        sid = sessions[i % concurrency]
        event = {
            "event_type": "post_tool",
            "session_id": sid,
            "session_name": "bench",
            "timestamp": f"2026-01-01T00:00:{i % 60:02d}.{i:06d}Z",
            "tool_name": "Read",
            "tool_input": {"file_path": "/src/app.py"},
            "tool_output": "x" * 200,
        }
        bodies.append(loadgen.request_bytes("POST", f"/sessions/{sid}/events", json.dumps(event).encode()))
    cpu = srv.cpu_seconds()
    result = asyncio.run(loadgen.run("127.0.0.1", srv.http_port, concurrency, total, bodies.__getitem__))
    cpu = srv.cpu_seconds() - cpu
    if result.failed:
        raise RuntimeError(f"{result.failed} requests failed: {result.statuses}")
    stored = count_rows(srv.db_path, f"type = 'runtime.event' AND session_id LIKE '{prefix}-%'")
    if stored != result.ok:
        raise RuntimeError(f"{result.ok} events acknowledged but {stored} stored")
    return Figures(
        result.rate, result.percentile(50) * 1e3, result.percentile(99) * 1e3, "events/s", cpu / total * 1e6
    )


@dataclass
class Scenario:
    name: str
    run: Callable[[ServerProcess, int, int], Figures]
    total: int
    concurrency: int
    target: str
    # The options are named at each use: passed by position, `prepare` once
    # landed in `timed`, and the 1M-entry scenarios ran on an empty log.
    _: KW_ONLY
    # `total` is seconds of load (--duration), not requests (--total).
    timed: bool = False
    prepare: Callable[[Path], None] | None = None
    # The server's environment for this scenario.
    env: dict[str, str] | None = None


SCENARIOS = {
    s.name: s
    for s in [
        Scenario("runtime-events", runtime_events, 20_000, 16, ">= 2,500 events/s, p99 < 15 ms"),
        Scenario(
            "followers",
            followers.followers,
            20_000,
            16,
            "1M-entry log: with 100 live NDJSON followers >= 90% of the events/s with none, all delivered in order",
            prepare=followers.prepare,
        ),
        Scenario(
            "readers",
            followers.readers,
            20_000,
            16,
            "1M-entry log: writes with 10 followers and a reader from seq 0, against writes alone",
            prepare=followers.prepare,
        ),
        Scenario(
            "catch-up",
            followers.catch_up,
            1,
            1,
            ">= 100,000 entries/s from seq 0 on a 1M-entry log; probes of /healthz, /sessions p99 < 50 ms",
            prepare=followers.prepare,
        ),
        Scenario(
            "retention",
            retention.retention,
            20_000,
            16,
            "removing 1M old entries while ingest runs: ingest >= 85% of ingest alone",
            prepare=retention.prepare,
            env=retention.ENV,
        ),
        Scenario("trenchcoat", trenchcoat_events, 150, 4, ">= 25,000 events/s, p99 < 250 ms per batch"),
        Scenario(
            "queue",
            queue_cycles,
            6_000,
            16,
            ">= 1,000 cycles/s (claim, heartbeat, complete); wake p99 < 50 ms",
        ),
        Scenario("tool-calls", tool_calls, 20_000, 8, ">= 2,000 tool calls/s (start + complete pairs)"),
        Scenario(
            "tool-calls-stream",
            tool_calls_stream,
            40_000,
            8,
            ">= 2,000 tool calls/s (start + complete pairs over RecordToolCalls streams)",
        ),
        Scenario("tracer", tracer_events, 600, 4, ">= 15,000 events/s, p99 < 100 ms per batch"),
        Scenario("otlp-logs", otlp_logs, 200, 4, "OTLP logs over gRPC, batches of 512: >= 20,000 records/s"),
        Scenario("hook", hooks.server_up, 100, 1, "agentplane-hook process: median < 120 ms, p99 < 200 ms"),
        Scenario(
            "hook-down", hooks.server_down, 100, 1, "agentplane-hook process, server down: median < 150 ms"
        ),
        Scenario(
            "rules",
            rules_bench,
            30,
            1,
            "turn close of 200 events x 50 rules < 5 ms; re-evaluate over 10,000 turns < 10 s",
        ),
        Scenario(
            "channels",
            channel_deliveries,
            2_000,
            4,
            "1 sender, 50 gRPC stream subscribers: >= 5,000 deliveries/s, send -> delivery p99 < 20 ms",
        ),
        Scenario(
            "console",
            console_reads,
            30,
            1,
            "first page of every console read < 1 s with 10,000 sessions and a 50,000-event timeline",
        ),
        Scenario(
            "console-browser",
            console_browser,
            5,
            1,
            "in Chromium: first screen of a 50,000-event timeline and of 10,000 sessions < 1 s; "
            "live overview at 1,000 events/s: all delivered, lag p99 < 1 s, no frame gap >= 200 ms",
        ),
        Scenario(
            "otlp-export",
            otlp_export,
            20_000,
            16,
            ">= 10,000 spans/s to a local receiver (CPU: the exporter's per span); "
            "ingest with the exporter on >= 90% of off (printed above the line)",
        ),
        Scenario(
            "overload",
            overload,
            60,
            1024,
            "RSS < 600 MB at peak, within 20% of idle a minute later; every 2xx stored, the rest fast 503/429",
            timed=True,
        ),
        Scenario(
            "export",
            export_file,
            200_000,
            1,
            ">= 50,000 events/s from a 200,000-entry log to a file (p50/p99: the command's wall time)",
        ),
        Scenario(
            "import",
            import_file,
            200_000,
            1,
            ">= 20,000 events/s from that file into a new SQLite file (p50/p99: the command's wall time)",
        ),
    ]
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--total", type=int, help="requests per run (default: the scenario's)")
    parser.add_argument("--duration", type=int, help="seconds of load of a timed scenario (overload: 60)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, load average {load:.2f} at start"
    )
    for name in args.scenario or sorted(SCENARIOS):
        sc = SCENARIOS[name]
        runs: list[Figures] = []
        for i in range(args.runs):
            size = (args.duration if sc.timed else args.total) or sc.total
            with (
                tempfile.TemporaryDirectory() as tmp,
                server_process(Path(tmp), env=sc.env, prepare=sc.prepare) as srv,
            ):
                fig = sc.run(srv, size, sc.concurrency)
            runs.append(fig)
            print(f"  {name} run {i + 1}: {fig.rate:,.0f} {fig.unit}, ", end="")
            print(f"p50 {fig.p50_ms:.2f} ms, p99 {fig.p99_ms:.2f} ms, server CPU {fig.cpu_us:.0f} µs/op")
        print(
            f"{name} (concurrency {sc.concurrency}, median of {len(runs)}): "
            f"{statistics.median(f.rate for f in runs):,.0f} {runs[0].unit}, "
            f"p50 {statistics.median(f.p50_ms for f in runs):.2f} ms, "
            f"p99 {statistics.median(f.p99_ms for f in runs):.2f} ms, "
            f"server CPU {statistics.median(f.cpu_us for f in runs):.0f} µs/op   [target {sc.target}]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
