"""The `hook` and `hook-down` scenarios: the hook command itself, process
start to exit, as Claude Code runs it (`agentplane-hook claude-code`, the
PostToolUse(Bash) payload on stdin), `total` times one after the other.

`hook`: the server is up; each run ensures the session and posts the event
(two requests). `hook-down`: nothing listens on the adapter's URL; each run
finds the spool undeliverable and appends to it. The rate is hooks per
second, the latencies are those of whole processes (Python start-up
included); server CPU is per hook. After `hook`, the database must hold
every event.
"""

from __future__ import annotations

import os
import resource
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tests.bench.loadgen import Result

if TYPE_CHECKING:  # run.py imports this module to register the scenario
    from tests.bench.run import Figures, ServerProcess

PAYLOAD = (
    Path(__file__).resolve().parents[1] / "fixtures" / "hooks" / "claude-code" / "12-PostToolUse-Bash.json"
)
COMMAND = [str(Path(sys.executable).with_name("agentplane-hook")), "claude-code"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(srv: ServerProcess, total: int, url: str) -> tuple[Result, float]:
    raw = PAYLOAD.read_bytes()
    result = Result()
    with tempfile.TemporaryDirectory() as state:
        env = {**os.environ, "AGENTPLANE_URL": url, "AGENTPLANE_HOOK_STATE_DIR": state}
        cpu = srv.cpu_seconds()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        for _ in range(total):
            t0 = time.perf_counter()
            done = subprocess.run(COMMAND, input=raw, env=env, capture_output=True, check=False)
            result.latencies.append(time.perf_counter() - t0)
            if done.returncode != 0 or done.stdout:
                raise RuntimeError(f"hook exited {done.returncode}: {done.stdout!r} {done.stderr!r}")
            result.ok += 1
        result.seconds = time.perf_counter() - started
        cpu = srv.cpu_seconds() - cpu
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = (after.ru_utime - children.ru_utime + after.ru_stime - children.ru_stime) / total
        print(f"    (hook process CPU, user + system: {own * 1e3:.1f} ms per run)")
        log = Path(state) / "hook.log"
        if url == f"http://127.0.0.1:{srv.http_port}" and log.exists():
            raise RuntimeError(f"the hook logged problems: {log.read_text()[:500]}")
    return result, cpu


def _figures(result: Result, cpu: float) -> Figures:
    from tests.bench.run import Figures

    return Figures(
        result.rate,
        result.percentile(50) * 1e3,
        result.percentile(99) * 1e3,
        "hooks/s",
        cpu / result.ok * 1e6,
    )


def server_up(srv: ServerProcess, total: int, concurrency: int) -> Figures:
    result, cpu = _run(srv, total, f"http://127.0.0.1:{srv.http_port}")
    with sqlite3.connect(srv.db_path) as conn:
        query = "SELECT count(*) FROM tracer_events WHERE kind = 'terminal.command'"
        stored = int(conn.execute(query).fetchone()[0])
    if stored != result.ok:
        raise RuntimeError(f"{result.ok} hooks ran but {stored} events stored")
    return _figures(result, cpu)


def server_down(srv: ServerProcess, total: int, concurrency: int) -> Figures:
    result, cpu = _run(srv, total, f"http://127.0.0.1:{_closed_port()}")
    return _figures(result, cpu)
