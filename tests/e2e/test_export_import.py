"""`agentplane export` and `agentplane import` as real processes: a database
filled through the public routes of every family is exported, imported into
an empty database on the other backend, and a server on each answers every
GET route of /openapi.json the same (ids, bodies, seqs); a second import
adds nothing, and a deleted session stays deleted."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agh_support import identity
from tests.conftest import POSTGRES_URL, reset_postgres
from tests.transfer_support import run_here, running, table_counts

# Source and target backends: each backend is exported from and imported into.
PAIRS = [("sqlite", "postgres"), ("postgres", "sqlite")] if POSTGRES_URL else [("sqlite", "sqlite")]
WORKER, ALICE = "worker-1", "alice"
TRENCHCOAT_SESSION = "6f1c2d3e-0000-4000-8000-00000000000a"
# Routes whose answer is not compared, and why.
NOT_COMPARED = {
    # An endless stream; /recv and /v1/channels/{channel}/messages answer the same messages.
    "/api/agent/channels/{channel}/stream",
    # The instance's own bookkeeping, not the log: its policy and what it appended today
    # (an import appends every entry again, and the usage of the day says so).
    "/v1/retention",
}

# What must differ: when an answer was made (AGH context's provenance, the
# console's clock), and so which minutes the console's last hour spans (its
# buckets are compared where they hold events: all of them are in the last minutes).
ANSWER_TIMES = {"generated_at", "server_time"}


def _without_now(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: "-"
            if key in ANSWER_TIMES
            else [b for b in item if b["count"]]
            if key == "events_per_minute"
            else _without_now(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_without_now(item) for item in value]
    return value


def comparable(body: str) -> Any:
    """An answer as parsed JSON (NDJSON: a list of lines), so that the order
    of an object's keys is not compared: PostgreSQL's JSONB keeps none, and
    an entry's free-form data comes back from it in its own order."""
    try:
        parsed = json.loads(body)
    except json.JSONDecodeError:
        parsed = [json.loads(line) for line in body.splitlines()]
    return _without_now(parsed)


@pytest.fixture(params=PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS])
def urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    def url(kind: str, name: str) -> str:
        if kind == "postgres":
            pg: str = request.getfixturevalue("postgres_url")
            reset_postgres(pg)
            return pg
        return f"sqlite:///{tmp_path / name}"

    source, target = request.param
    return url(source, "source.db"), url(target, "target.db")


def agentplane(*argv: str) -> str:
    """Run the command as a user does; returns its stderr (the summary)."""
    done = subprocess.run(
        [sys.executable, "-m", "agentplane_cli.main", *argv], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def ok(resp: httpx.Response) -> Any:
    assert resp.status_code in (200, 201, 202), f"{resp.request.url}: {resp.status_code} {resp.text}"
    return resp.json()


def tracer_data(resp: httpx.Response) -> Any:
    return ok(resp)["data"]


async def fill(http: httpx.AsyncClient) -> dict[str, str]:
    """Write through every family's public routes; returns the ids the GET routes need."""
    ids: dict[str, str] = {}
    # Agent Runtime (seed 004): a session with events, and one deleted.
    for sid in ("rt-1", "rt-gone"):
        ok(await http.post("/sessions", json={"session_id": sid, "session_name": f"Session {sid}"}))
        event = {
            "event_type": "message",
            "session_id": sid,
            "session_name": "s",
            "timestamp": "2025-11-16T10:34:55Z",
        }
        ok(
            await http.post(
                f"/sessions/{sid}/events",
                json={**event, "role": "user", "content": [{"type": "text", "text": "hi"}]},
            )
        )
    stop = {
        "event_type": "session_stop",
        "session_id": "rt-1",
        "session_name": "s",
        "timestamp": "2025-11-16T10:35:00Z",
    }
    ok(await http.post("/sessions/rt-1/events", json=stop))
    ok(await http.delete("/sessions/rt-gone"))

    # Trenchcoat (seed 002).
    events = [
        {
            "event_type": "session_start",
            "session_id": TRENCHCOAT_SESSION,
            "timestamp": "2024-01-15T10:31:00Z",
            "seq": 1,
        },
        {
            "event_type": "tool_use",
            "session_id": TRENCHCOAT_SESSION,
            "timestamp": "2024-01-15T10:31:05Z",
            "seq": 2,
            "tool_name": "Bash",
            "tool_input": {"command": "ls"},
        },
    ]
    ok(await http.post("/api/v1/events", json={"events": events}))

    # Agent Tracer (seed 000): a task with a rule, two judged turns, a closed session.
    ensured = tracer_data(
        await http.post(
            "/ingest/v1/sessions/ensure",
            json={"runtimeSource": "claude-plugin", "runtimeSessionId": "rs-1", "title": "Fix it"},
        )
    )
    task_id = ids["tracer_task"] = ensured["taskId"]
    tsid = ensured["sessionId"]
    rule = {
        "name": "run tests",
        "trigger": {"phrases": ["run the tests"]},
        "expect": {"tool": "command", "commandMatches": ["pytest"]},
        "scope": "task",
        "taskId": task_id,
    }
    ids["rule"] = tracer_data(await http.post("/api/v1/rules", json=rule))["rule"]["id"]
    for ask, command in (("Please run the tests", "pytest -q"), ("Now run the tests again", "ls")):
        for endpoint, kind, lane, extra in (
            ("conversation", "user.message", "user", {"title": ask, "body": ask}),
            (
                "events",
                "terminal.command",
                "implementation",
                {"title": command, "metadata": {"command": command}},
            ),
            ("conversation", "assistant.response", "planning", {"title": "Done.", "body": "Done."}),
        ):
            item = {"kind": kind, "taskId": task_id, "lane": lane, "sessionId": tsid, **extra}
            assert (
                tracer_data(await http.post(f"/ingest/v1/{endpoint}", json={"events": [item]}))["rejected"]
                == []
            )
    tracer_data(
        await http.post(
            "/ingest/v1/sessions/end", json={"runtimeSource": "claude-plugin", "runtimeSessionId": "rs-1"}
        )
    )

    # Agents API (seed 001): an execution, an agent, a completed tool call.
    eid = ids["execution"] = ok(await http.post("/api/v1/executions", json={"name": "nightly"}))["execution"][
        "id"
    ]
    aid = ids["agent"] = ok(
        await http.post(f"/api/v1/executions/{eid}/agents", json={"prompt": "Implement", "model": "sonnet"})
    )["agent"]["id"]
    tid = ids["tool_call"] = ok(
        await http.post(
            f"/api/v1/agents/{aid}/tool-calls", json={"tool_name": "Edit", "input": {"file": "a.py"}}
        )
    )["tool_call"]["id"]
    ok(
        await http.post(
            f"/api/v1/tool-calls/{tid}/complete", json={"output": "edited", "summary": "Edited a.py"}
        )
    )

    # AGH (seed 003): sessions, a task run through claim, heartbeat and complete, one queued,
    # a soul, a spawned helper, a channel with a message.
    for sid in (WORKER, ALICE):
        ok(await http.post("/sessions", json={"session_id": sid, "session_name": sid, "agent_name": "coder"}))
    done_task = ok(await http.post("/api/tasks", json={"title": "Fix the build"}))["task"]["id"]
    ids["agh_task"] = ok(await http.post("/api/tasks", json={"title": "Write docs", "priority": "high"}))[
        "task"
    ]["id"]
    claim = ok(await http.post("/api/agent/tasks/claim-next", json={}, headers=identity(WORKER)))["claim"]
    assert claim["task"]["id"] == ids["agh_task"] or claim["task"]["id"] == done_task
    run_id = claim["run"]["id"]
    ok(
        await http.post(
            f"/api/agent/tasks/{run_id}/heartbeat", json={"lease_seconds": 600}, headers=identity(WORKER)
        )
    )
    ok(
        await http.post(
            f"/api/agent/tasks/{run_id}/complete", json={"result": {"ok": True}}, headers=identity(WORKER)
        )
    )
    ok(
        await http.put(
            "/api/agents/coder/soul",
            json={"body": "---\nversion: 1\nrole: reviewer\n---\n\nReview carefully.\n"},
        )
    )
    ok(
        await http.post(
            "/api/agent/spawn", json={"agent_name": "helper", "ttl_seconds": 600}, headers=identity(ALICE)
        )
    )
    ok(await http.post("/v1/channels", json={"id": "ops"}))
    message = {
        "body": "build is green",
        "metadata": {
            "task_id": "t",
            "run_id": "r",
            "coordination_channel_id": "ops",
            "correlation_id": "c",
            "message_kind": "status",
        },
    }
    ok(await http.post("/api/agent/channels/ops/send", json=message, headers=identity(ALICE)))
    # OTLP telemetry (OTLP JSON over HTTP): a Claude Code model request, and an event it does not know.
    records = [
        {
            "timeUnixNano": "1763289295000000000",
            "body": {"stringValue": f"claude_code.{name}"},
            "attributes": [
                {"key": "event.name", "value": {"stringValue": name}},
                {"key": "session.id", "value": {"stringValue": "cc-1"}},
                {"key": "model", "value": {"stringValue": "claude-sonnet-4"}},
                {"key": "input_tokens", "value": {"intValue": "120"}},
                {"key": "cost_usd", "value": {"doubleValue": 0.25}},
            ],
        }
        for name in ("api_request", "something_new")
    ]
    ok(await http.post("/v1/logs", json={"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}))
    return ids


def requests_for(ids: dict[str, str]) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """Every GET route template -> the requests made of it (path with query, headers)."""
    me = identity(WORKER)
    t, a = ids["tracer_task"], ids["agh_task"]
    return {
        "/v1/log:watch": [("/v1/log:watch?after_seq=0&stop_at_end=true", {})],
        "/sessions": [("/sessions", {})],
        "/sessions/{session_id}": [("/sessions/rt-1", {}), ("/sessions/rt-gone", {})],
        "/sessions/{session_id}/status": [("/sessions/rt-1/status", {})],
        "/sessions/{session_id}/result": [("/sessions/rt-1/result", {})],
        "/sessions/{session_id}/events": [("/sessions/rt-1/events", {}), ("/sessions/rt-gone/events", {})],
        "/events/{session_id}": [("/events/rt-1", {})],
        "/api/v1/tasks": [("/api/v1/tasks", {})],
        "/api/v1/tasks/{task_id}": [(f"/api/v1/tasks/{t}", {})],
        "/api/v1/tasks/{task_id}/timeline": [(f"/api/v1/tasks/{t}/timeline", {})],
        "/api/v1/rules": [("/api/v1/rules", {})],
        "/ingest/v1/rules": [("/ingest/v1/rules", {})],
        "/api/v1/tasks/{task_id}/rules": [(f"/api/v1/tasks/{t}/rules", {})],
        "/api/v1/tasks/{task_id}/verdict-counts": [(f"/api/v1/tasks/{t}/verdict-counts", {})],
        "/api/v1/tasks/{task_id}/rules/{rule_id}/evidence": [
            (f"/api/v1/tasks/{t}/rules/{ids['rule']}/evidence", {})
        ],
        "/api/v1/executions": [("/api/v1/executions", {})],
        "/api/v1/executions/{execution_id}": [(f"/api/v1/executions/{ids['execution']}", {})],
        "/api/v1/executions/{execution_id}/agents": [(f"/api/v1/executions/{ids['execution']}/agents", {})],
        "/api/v1/executions/{execution_id}/agents/current": [
            (f"/api/v1/executions/{ids['execution']}/agents/current", {})
        ],
        "/api/v1/agents/{agent_id}": [(f"/api/v1/agents/{ids['agent']}", {})],
        "/api/v1/agents/{agent_id}/tool-calls": [(f"/api/v1/agents/{ids['agent']}/tool-calls", {})],
        "/api/v1/tool-calls/{tool_call_id}": [(f"/api/v1/tool-calls/{ids['tool_call']}", {})],
        "/api/v1/tool-calls/{tool_call_id}/output": [(f"/api/v1/tool-calls/{ids['tool_call']}/output", {})],
        "/api/tasks": [("/api/tasks", {})],
        "/api/tasks/{task_id}": [(f"/api/tasks/{a}", {})],
        "/v1/api-keys": [("/v1/api-keys", {})],
        "/api/agent/me": [("/api/agent/me", me)],
        "/api/agent/context": [("/api/agent/context", me)],
        "/api/agent/coordinator/config": [("/api/agent/coordinator/config", me)],
        "/api/agent/soul": [("/api/agent/soul", me)],
        "/v1/channels": [("/v1/channels", {})],
        "/v1/channels/{channel}/messages": [("/v1/channels/ops/messages", {})],
        "/v1/channels/{channel}/members": [("/v1/channels/ops/members", {})],
        "/api/agent/channels": [("/api/agent/channels", identity(ALICE))],
        # The console's reads (every family at once).
        "/v1/console/overview": [("/v1/console/overview", {})],
        "/v1/console/sessions": [("/v1/console/sessions", {})],
        "/v1/console/timelines/{kind}/{id}": [
            ("/v1/console/timelines/runtime_session/rt-1", {}),
            (f"/v1/console/timelines/tracer_task/{t}", {}),
            (f"/v1/console/timelines/execution/{ids['execution']}", {}),
            (f"/v1/console/timelines/agh_task/{a}", {}),
        ],
        "/v1/console/queue": [("/v1/console/queue", {})],
        "/v1/console/queue/tasks/{task_id}/runs": [(f"/v1/console/queue/tasks/{a}/runs", {})],
        "/v1/console/channels": [("/v1/console/channels", {})],
        "/v1/console/channels/{channel_id}": [("/v1/console/channels/ops", {})],
        "/v1/console/channels/{channel_id}/messages": [("/v1/console/channels/ops/messages", {})],
        "/v1/console/rules": [("/v1/console/rules", {})],
        "/v1/console/rules/{rule_id}/verdicts": [(f"/v1/console/rules/{ids['rule']}/verdicts", {})],
        "/v1/telemetry/usage": [("/v1/telemetry/usage", {})],
        "/v1/telemetry/sessions/{session_id}/usage": [("/v1/telemetry/sessions/cc-1/usage", {})],
        "/v1/telemetry/tasks/{task_id}/usage": [(f"/v1/telemetry/tasks/{t}/usage", {})],
        "/v1/telemetry/records": [("/v1/telemetry/records", {})],
        # Last: a receive records how far its session has read (a write, the same on both).
        "/api/agent/channels/{channel}/recv": [("/api/agent/channels/ops/recv?wait=false", identity(WORKER))],
    }


async def answers(
    http: httpx.AsyncClient, requests: dict[str, list[tuple[str, dict[str, str]]]]
) -> dict[str, tuple[int, Any]]:
    templates = {path for path, ops in ok(await http.get("/openapi.json"))["paths"].items() if "get" in ops}
    assert templates - NOT_COMPARED == set(requests), "a GET route without a request here, or one gone"
    out = {}
    for calls in requests.values():
        for path, headers in calls:
            resp = await http.get(path, headers=headers)
            out[path] = (resp.status_code, comparable(resp.text))
    return out


async def test_every_route_answers_the_same_after_export_and_import(
    urls: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = urls
    dump = tmp_path / "export.ndjson"
    async with running(source) as http:
        ids = await fill(http)
        # Exported while the server runs; its answers read after (a receive on a channel writes).
        summary = await asyncio.to_thread(agentplane, "export", "--database-url", source, "-o", str(dump))
        exported = table_counts(source)
        before = await answers(http, requests_for(ids))
    assert re.match(r"Exported \d+ entries and \d+ rows", summary), summary
    header, *_, end = dump.read_bytes().splitlines()
    assert b'"agentplane_export":1' in header and end.startswith(b'{"end":')
    # A deleted session's entries left the log: only its deletion is there to export.
    gone = [line for line in dump.read_bytes().splitlines() if b"rt-gone" in line]
    assert len(gone) == 1 and b'"type":"session.deleted"' in gone[0], gone

    code, _, summary = await run_here(capsys, "import", "--database-url", target, str(dump))
    assert code == 0, summary
    entries, rows = (int(n.replace(",", "")) for n in re.findall(r"([\d,]+) of \1 ", summary)[:2])
    assert entries > 40 and rows > 20, summary
    assert table_counts(target) == exported

    async with running(target) as http:
        after = await answers(http, requests_for(ids))
    assert before["/sessions/rt-gone"][0] == 404 and before["/sessions/rt-1"][0] == 200
    assert {p: a for p, a in after.items() if a != before[p]} == {}

    # A second import adds nothing.
    counts = table_counts(target)
    code, _, summary = await run_here(capsys, "import", "--database-url", target, str(dump))
    assert code == 0 and f"0 of {entries:,} entries and 0 of {rows:,} rows written" in summary, summary
    assert table_counts(target) == counts
