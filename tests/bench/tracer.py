"""The `tracer` bench scenario: POST /ingest/v1/events with 100-event batches
(seed 000, the largest batch the API takes), several connections at once.

Four Claude Code sessions are ensured first; each batch is one turn of one
of them as the hooks report it: the user's prompt, file reads, shell
commands and edits (with their file paths), and the assistant's answer, so
turns open and close and derived `file.changed` events are written. The
rate counts the events sent (derived ones not included). After the run the
database must hold every acknowledged event: a batch is durable when it is
acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.request
from typing import TYPE_CHECKING, Any

from tests.bench import loadgen

if TYPE_CHECKING:  # run.py imports this module to register the scenario
    from tests.bench.run import Figures, ServerProcess

BATCH = 100
SESSIONS = 4
EDIT_EVERY = 10  # one event in ten is an edit, which derives one file.changed


def _ensure(srv: ServerProcess, i: int) -> tuple[str, str]:
    body = {"runtimeSource": "claude-plugin", "runtimeSessionId": f"bench-{i}", "title": f"Bench task {i}"}
    req = urllib.request.Request(
        f"http://127.0.0.1:{srv.http_port}/ingest/v1/sessions/ensure",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as resp:
        data = json.loads(resp.read())["data"]
    return data["taskId"], data["sessionId"]


def _meta(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "evidenceLevel": "proven",
        "evidenceReason": "hook payload",
        "tags": ["source:claude-plugin"],
        **extra,
    }


def _event(task_id: str, session_id: str, n: int, position: int) -> dict[str, Any]:
    base = {"taskId": task_id, "sessionId": session_id, "createdAt": f"2026-01-01T00:00:00.{n % 1000:03d}Z"}
    if position == 0:
        prompt = f"Please fix the failing test number {n} in the parser module"
        return {
            **base,
            "kind": "user.message",
            "lane": "user",
            "title": prompt,
            "body": prompt,
            "metadata": _meta(n, messageId=f"m-{n}", captureMode="raw", source="claude-plugin"),
        }
    if position == BATCH - 1:
        return {
            **base,
            "kind": "assistant.response",
            "lane": "user",
            "title": "Fixed the parser",
            "body": "I fixed the off-by-one in the parser and the test passes now.",
            "metadata": _meta(n, messageId=f"a-{n}", stopReason="end_turn"),
        }
    path = f"/src/app/module_{n % 50}.py"
    if position % EDIT_EVERY == 0:
        return {
            **base,
            "kind": "tool.used",
            "lane": "implementation",
            "title": f"Edit: module_{n % 50}.py",
            "body": f"Modified src/app/module_{n % 50}.py",
            "filePaths": [path],
            "metadata": _meta(n, toolName="Edit", filePath=path, resultBytes=120),
        }
    if position % 2:
        return {
            **base,
            "kind": "tool.used",
            "lane": "exploration",
            "title": f"Read: module_{n % 50}.py",
            "filePaths": [path],
            "metadata": _meta(n, toolName="Read", toolInput={"file_path": path}, resultBytes=2048),
        }
    return {
        **base,
        "kind": "terminal.command",
        "lane": "implementation",
        "title": "pytest tests/test_parser.py",
        "body": "$ pytest tests/test_parser.py",
        "metadata": _meta(n, command="pytest tests/test_parser.py", exitCode=0, stdout="." * 200),
    }


def batch(sessions: list[tuple[str, str]], index: int) -> list[dict[str, Any]]:
    task_id, session_id = sessions[index % len(sessions)]
    return [_event(task_id, session_id, index * BATCH + p, p) for p in range(BATCH)]


def _stored(db: Any) -> tuple[int, int]:
    """(timeline events, log entries of them)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT count(*) FROM tracer_events").fetchone()[0]
        logged = conn.execute(
            "SELECT count(*) FROM log_entries WHERE type = 'tracer.event.logged'"
        ).fetchone()[0]
    return int(rows), int(logged)


def tracer_events(srv: ServerProcess, total: int, concurrency: int) -> Figures:
    """`total` batches of BATCH events over `concurrency` connections."""
    from tests.bench.run import Figures

    sessions = [_ensure(srv, i) for i in range(SESSIONS)]
    bodies = [
        loadgen.request_bytes(
            "POST", "/ingest/v1/events", json.dumps({"events": batch(sessions, i)}).encode()
        )
        for i in range(total)
    ]
    start_rows, _ = _stored(srv.db_path)  # the task.start events of the ensures
    cpu = srv.cpu_seconds()
    result = asyncio.run(loadgen.run("127.0.0.1", srv.http_port, concurrency, total, bodies.__getitem__))
    cpu = srv.cpu_seconds() - cpu
    if result.failed:
        raise RuntimeError(f"{result.failed} batches failed: {result.statuses}")
    acknowledged = result.ok * BATCH
    derived = result.ok * len(range(EDIT_EVERY, BATCH - 1, EDIT_EVERY))
    rows, logged = _stored(srv.db_path)
    expected = start_rows + acknowledged + derived
    if (rows, logged) != (expected, expected):
        raise RuntimeError(f"{expected} events expected, {rows} stored, {logged} logged")
    return Figures(
        acknowledged / result.seconds,
        result.percentile(50) * 1e3,
        result.percentile(99) * 1e3,
        "events/s",
        cpu / acknowledged * 1e6,
    )
