"""The `retention` bench scenario: retention removing a million old entries
while ingest runs.

The database starts with 1,000,000 runtime events recorded 30 days ago (as
the server appends them, with the workspace's usage row the migration would
have counted). On one server, back to back: `runtime-events` ingest alone
(retention off), then the workspace's retention set to one day
(`PUT /v1/retention`) and the same ingest again while the sweeper (every
second) removes the old entries; then the time until all of them are gone.
Reports the ingest rate with retention running, its ratio to ingest alone
(target >= 85%), and the removal rate.
"""

from __future__ import annotations

import atexit
import json
import shutil
import sqlite3
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:  # run.py imports this module to register the scenario
    from tests.bench.run import Figures, ServerProcess

OLD_ENTRIES = 1_000_000
# The server's settings for this scenario: a pass every second.
ENV = {"AGENTPLANE_RETENTION_SWEEP_SECONDS": "1"}
# How long to wait for the last old entry to go.
_PATIENCE = 900


@cache
def _template() -> Path:
    from sqlalchemy import create_engine, text

    from service.base.clock import ManualClock
    from service.store.database import migrate
    from service.store.log import Tx

    # A directory of this process's own (a shared one was cleared under a run on the shared machine).
    home = tempfile.mkdtemp(prefix="agentplane-bench-retention-")
    atexit.register(shutil.rmtree, home, True)
    path = Path(home) / f"retention-{OLD_ENTRIES}.db"
    url = f"sqlite:///{path}"
    migrate(url)
    engine = create_engine(url)
    data = orjson.dumps(
        {
            "event_type": "post_tool",
            "tool_name": "Read",
            "tool_input": {"f": "/src/app.py"},
            "tool_output": "x" * 200,
        }
    ).decode()
    with engine.begin() as conn:
        tx = Tx(conn, clock=ManualClock(datetime.now(UTC) - timedelta(days=30)))
        for start in range(0, OLD_ENTRIES, 20_000):
            rows = [(f"old-{i % 16}", "2026-01-01T00:00:00Z", "post_tool", data) for i in range(20_000)]
            tx.append_many("bench.old", "default", rows[: OLD_ENTRIES - start])
        size = sum(n for _, n in tx.usage.values())
        conn.execute(
            text(
                "INSERT INTO workspace_usage (workspace, day, day_events, stored_bytes) VALUES ('default', '', 0, :n)"
            ),
            {"n": size},
        )
    engine.dispose()
    return path


def prepare(db: Path) -> None:
    shutil.copyfile(_template(), db)


def _old_left(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM log_entries WHERE type = 'bench.old'").fetchone()[0])


def _set_retention(srv: ServerProcess, seconds: int) -> None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{srv.http_port}/v1/retention",
        data=json.dumps({"retention_seconds": seconds}).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as resp:
        resp.read()


def retention(srv: ServerProcess, total: int, concurrency: int) -> Figures:
    from tests.bench.run import Figures, runtime_events

    held = _old_left(srv.db_path)
    if held != OLD_ENTRIES:
        raise RuntimeError(f"the database holds {held} old entries, not {OLD_ENTRIES}")
    alone = runtime_events(srv, total, concurrency, prefix="alone")
    _set_retention(srv, 86400)
    time.sleep(1.5)  # the next pass has started
    before = _old_left(srv.db_path)
    cpu = srv.cpu_seconds()
    started = time.monotonic()
    during = runtime_events(srv, total, concurrency, prefix="during")
    removed_during = before - _old_left(srv.db_path)
    while (left := _old_left(srv.db_path)) > 0 and time.monotonic() - started < _PATIENCE:
        time.sleep(1)
    elapsed = time.monotonic() - started
    cpu = srv.cpu_seconds() - cpu
    print(
        f"    ingest alone {alone.rate:,.0f} events/s ({alone.cpu_us:.0f} µs/event); with retention "
        f"{during.rate:,.0f} events/s ({during.cpu_us:.0f} µs/event): {during.rate / alone.rate:.0%} "
        f"[target >= 85%]; {removed_during:,} old entries removed during that ingest; all "
        f"{before - left:,} gone {elapsed:.1f} s after it began ({(before - left) / elapsed:,.0f} entries/s, "
        f"{(cpu - during.cpu_us * total / 1e6) / max(1, before - left) * 1e6:.1f} µs server CPU per entry "
        f"removed), {left:,} left"
    )
    return Figures(during.rate, during.p50_ms, during.p99_ms, "events/s with retention", during.cpu_us)
