"""The `export` and `import` bench scenarios: `agentplane export` of a log
filled through the server (Trenchcoat batches: one log entry per event, the
sessions they update), to a file, while the server runs; and `agentplane
import` of that file into a new SQLite database.

Each command runs as its own process, timed from its start to its exit (its
start-up, about half a second of imports, included); its CPU time (user +
system, from wait4) per event is the steadier figure. After the import, the
new database must hold every entry of the file and the same sessions.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tests.bench import loadgen
from tests.bench.trenchcoat import BATCH, batch

if TYPE_CHECKING:  # run.py imports this module to register the scenario
    from tests.bench.run import Figures, ServerProcess


def _fill(srv: ServerProcess, events: int) -> int:
    """Post `events` Trenchcoat events in 1,000-event batches; returns the log head."""
    batches = max(events // BATCH, 1)
    bodies = [
        loadgen.request_bytes("POST", "/api/v1/events", json.dumps({"events": batch(i)}).encode())
        for i in range(batches)
    ]
    result = asyncio.run(loadgen.run("127.0.0.1", srv.http_port, 4, batches, bodies.__getitem__))
    if result.failed:
        raise RuntimeError(f"{result.failed} batches failed: {result.statuses}")
    with sqlite3.connect(srv.db_path) as conn:
        return int(conn.execute("SELECT count(*) FROM log_entries").fetchone()[0])


def _command(*argv: str) -> tuple[float, float]:
    """Run `agentplane ARGV`; returns (wall seconds, CPU seconds) of the process."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentplane_cli.main", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"agentplane {argv[0]} failed: {err}")
    return wall, usage.ru_utime + usage.ru_stime


def _export(srv: ServerProcess, total: int) -> tuple[int, Path, float, float]:
    entries = _fill(srv, total)
    out = srv.db_path.parent / "export.ndjson"
    wall, cpu = _command("export", "--database-url", f"sqlite:///{srv.db_path}", "-o", str(out))
    return entries, out, wall, cpu


def export_file(srv: ServerProcess, total: int, _concurrency: int) -> Figures:
    from tests.bench.run import Figures

    entries, out, wall, cpu = _export(srv, total)
    lines = sum(1 for _ in out.open("rb"))
    if lines < entries + 2:
        raise RuntimeError(f"{entries} entries in the log but {lines} lines exported")
    return Figures(entries / wall, wall * 1e3, wall * 1e3, "events/s (whole command)", cpu / entries * 1e6)


def import_file(srv: ServerProcess, total: int, _concurrency: int) -> Figures:
    from tests.bench.run import Figures

    entries, out, _, _ = _export(srv, total)
    target = srv.db_path.parent / "imported.db"
    wall, cpu = _command("import", "--database-url", f"sqlite:///{target}", str(out))
    with sqlite3.connect(target) as conn:
        stored = int(conn.execute("SELECT count(*) FROM log_entries").fetchone()[0])
        counted = int(conn.execute("SELECT coalesce(sum(event_count), 0) FROM sessions").fetchone()[0])
    with sqlite3.connect(srv.db_path) as conn:
        expected = int(conn.execute("SELECT coalesce(sum(event_count), 0) FROM sessions").fetchone()[0])
    if (stored, counted) != (entries, expected):
        raise RuntimeError(
            f"imported {stored} entries, {counted} counted; the source has {entries}, {expected}"
        )
    return Figures(entries / wall, wall * 1e3, wall * 1e3, "events/s (whole command)", cpu / entries * 1e6)
