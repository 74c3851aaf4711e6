"""Data for the console, written through the public routes as runtimes write
it: runtime sessions, tracer tasks with turns, tools, tokens and rule
verdicts, an execution with agents and tool calls, queue tasks with a held
lease and finished runs, and a channel with messages and read positions.

Also the bulk writers of the console benchmark (many sessions, one long
timeline), through the batch routes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

CLAUDE = "claude-code"


def ok(resp: httpx.Response) -> Any:
    assert resp.status_code < 300, f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text}"
    return resp.json() if resp.content else None


@dataclass
class Seeded:
    runtime_sessions: list[str] = field(default_factory=list)
    task_id: str = ""  # the tracer task with turns and verdicts
    monitor_session_id: str = ""
    child_task_id: str = ""
    execution_id: str = ""
    queue_task_ids: list[str] = field(default_factory=list)
    held_run_id: str = ""
    channel: str = "ops"
    rules: dict[str, str] = field(default_factory=dict)  # name -> id


def at(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


def runtime_session(http: httpx.Client, sid: str, name: str, agent: str, events: int = 3) -> None:
    ok(http.post("/sessions", json={"session_id": sid, "session_name": name, "agent_name": agent}))
    base = {"session_id": sid, "session_name": name}
    for i in range(events):
        if i % 2:
            item = {
                "event_type": "message",
                "role": "assistant",
                "content": [{"type": "text", "text": f"Step {i} done."}],
            }
        else:
            item = {
                "event_type": "tool_use",
                "tool_name": "Bash",
                "tool_input": {"command": f"make step-{i}"},
            }
        ok(http.post(f"/sessions/{sid}/events", json={**base, **item, "timestamp": at(events - i)}))


def tracer_event(kind: str, task: str, session: str, lane: str, title: str, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "taskId": task, "sessionId": session, "lane": lane, "title": title, **fields}


def seed_demo(http: httpx.Client) -> Seeded:
    s = Seeded()
    # Rules first, so that the turns below are judged as they close.
    for rule in (
        {
            "name": "run the tests",
            "scope": "global",
            "severity": "block",
            "rationale": "a fix is not done until the tests ran",
            "trigger": {"phrases": ["run the tests"]},
            "expect": {"tool": "command", "commandMatches": ["pytest", "npm (run )?test"]},
        },
        {
            "name": "update the changelog",
            "scope": "global",
            "severity": "warn",
            "trigger": {"phrases": ["fix"]},
            "expect": {"tool": "file-write", "pattern": "CHANGELOG"},
        },
    ):
        s.rules[rule["name"]] = ok(http.post("/api/v1/rules", json=rule))["data"]["rule"]["id"]

    # A tracer task: two turns with tools, tokens and verdicts.
    ensured = ok(
        http.post(
            "/ingest/v1/sessions/ensure",
            json={
                "runtimeSource": CLAUDE,
                "runtimeSessionId": "cc-demo",
                "title": "Fix the parser",
                "workspacePath": "/src/app",
            },
        )
    )["data"]
    t, m = ensured["taskId"], ensured["sessionId"]
    s.task_id, s.monitor_session_id = t, m
    turn1 = [
        tracer_event(
            "user.message",
            t,
            m,
            "user",
            "Fix the parser and run the tests",
            body="Fix the parser and run the tests: it fails on empty input.",
        ),
        tracer_event(
            "tool.used",
            t,
            m,
            "exploration",
            "Read src/parser.py",
            metadata={"toolName": "Read", "filePath": "src/parser.py"},
        ),
        tracer_event("plan.logged", t, m, "planning", "Guard the empty input before tokenising"),
        tracer_event(
            "tool.used",
            t,
            m,
            "implementation",
            "Edit src/parser.py",
            metadata={"toolName": "Edit", "filePath": "src/parser.py"},
        ),
        tracer_event(
            "terminal.command",
            t,
            m,
            "implementation",
            "pytest -x tests/test_parser.py",
            body="$ pytest -x tests/test_parser.py\n12 passed in 0.84s",
            metadata={
                "toolName": "Bash",
                "command": "pytest -x tests/test_parser.py",
                "exitCode": 0,
                "durationMs": 840,
            },
        ),
        tracer_event(
            "token.usage",
            t,
            m,
            "telemetry",
            "claude-sonnet usage",
            metadata={"inputTokens": 18230, "outputTokens": 2140, "cacheReadTokens": 9100, "costUsd": 0.087},
        ),
        tracer_event(
            "assistant.response", t, m, "user", "Fixed: empty input now returns an empty tree; 12 tests pass."
        ),
    ]
    turn2 = [
        tracer_event(
            "user.message",
            t,
            m,
            "user",
            "Now fix the error message too",
            body="Now fix the error message too.",
        ),
        tracer_event(
            "tool.used", t, m, "exploration", "Grep 'unexpected token'", metadata={"toolName": "Grep"}
        ),
        tracer_event("question.logged", t, m, "questions", "Should the message name the column?"),
        tracer_event(
            "tool.used",
            t,
            m,
            "implementation",
            "Edit src/errors.py",
            metadata={"toolName": "Edit", "filePath": "src/errors.py"},
        ),
        tracer_event(
            "token.usage",
            t,
            m,
            "telemetry",
            "claude-sonnet usage",
            metadata={"inputTokens": 9400, "outputTokens": 1210, "costUsd": 0.041},
        ),
        tracer_event("assistant.response", t, m, "user", "The message now names line and column."),
    ]
    for batch in (turn1, turn2):
        ok(http.post("/ingest/v1/events", json={"events": batch}))
    child = ok(
        http.post(
            "/ingest/v1/tasks/start",
            json={
                "title": "Add fuzz tests for the parser",
                "taskKind": "background",
                "parentTaskId": t,
                "runtimeSource": CLAUDE,
            },
        )
    )["data"]
    s.child_task_id = child["task"]["id"]
    ok(
        http.post(
            "/ingest/v1/sessions/ensure",
            json={
                "runtimeSource": "codex",
                "runtimeSessionId": "cx-1",
                "title": "Review the release notes",
                "workspacePath": "/src/docs",
            },
        )
    )

    # Runtime sessions (seed 004).
    for sid, name, agent in (
        ("sess-build", "Fix the build", "coder"),
        ("sess-docs", "Write the docs", "writer"),
        ("sess-review", "Review PR 42", "reviewer"),
    ):
        runtime_session(http, sid, name, agent)
        s.runtime_sessions.append(sid)
    stop = {
        "event_type": "session_stop",
        "session_id": "sess-docs",
        "session_name": "Write the docs",
        "timestamp": at(0),
    }
    ok(http.post("/sessions/sess-docs/events", json=stop))

    # An execution with agents and tool calls (seed 001), one of them failed.
    e = ok(http.post("/api/v1/executions", json={"name": "Build the feature"}))["execution"]["id"]
    s.execution_id = e
    a = ok(
        http.post(
            f"/api/v1/executions/{e}/agents", json={"prompt": "Implement the feature", "model": "sonnet"}
        )
    )["agent"]["id"]
    for tool, inp, out in (
        ("Read", {"file": "src/main.ts"}, "…"),
        ("Edit", {"file": "src/main.ts", "changes": "+15"}, "File edited"),
    ):
        tc = ok(http.post(f"/api/v1/agents/{a}/tool-calls", json={"tool_name": tool, "input": inp}))[
            "tool_call"
        ]["id"]
        ok(http.post(f"/api/v1/tool-calls/{tc}/complete", json={"output": out, "summary": out}))
    tc = ok(
        http.post(
            f"/api/v1/agents/{a}/tool-calls", json={"tool_name": "Bash", "input": {"command": "npm test"}}
        )
    )["tool_call"]["id"]
    ok(http.post(f"/api/v1/tool-calls/{tc}/fail", json={"error": "2 tests failed"}))
    ok(
        http.post(
            f"/api/v1/agents/{a}/complete",
            json={"result": "Feature implemented", "tokens": {"input": 1000, "output": 500}},
        )
    )

    # The queue (seed 003): a held lease, a finished run, a failed attempt, waiting work.
    for title, priority in (
        ("Port the tokenizer", "urgent"),
        ("Fix the flaky login test", "high"),
        ("Update dependencies", "medium"),
        ("Tidy the README", "low"),
    ):
        s.queue_task_ids.append(
            ok(http.post("/api/tasks", json={"title": title, "priority": priority}))["task"]["id"]
        )
    ok(http.post("/sessions", json={"session_id": "w1", "session_name": "worker one", "agent_name": "coder"}))
    ok(http.post("/sessions", json={"session_id": "w2", "session_name": "worker two", "agent_name": "coder"}))
    w1 = {"X-AGH-Session-ID": "w1", "X-AGH-Agent": "coder"}
    w2 = {"X-AGH-Session-ID": "w2", "X-AGH-Agent": "coder"}
    first = ok(http.post("/api/agent/tasks/claim-next", headers=w1, json={"lease_seconds": 60}))["claim"][
        "run"
    ]["id"]
    ok(http.post(f"/api/agent/tasks/{first}/complete", headers=w1, json={"result": {"files": 3}}))
    second = ok(http.post("/api/agent/tasks/claim-next", headers=w2, json={"lease_seconds": 60}))["claim"][
        "run"
    ]["id"]
    ok(http.post(f"/api/agent/tasks/{second}/fail", headers=w2, json={"error": "tests failed"}))
    s.held_run_id = ok(http.post("/api/agent/tasks/claim-next", headers=w1, json={"lease_seconds": 900}))[
        "claim"
    ]["run"]["id"]

    # A channel with messages and read positions.
    ok(http.post("/v1/channels", json={"id": s.channel}))
    for who, kind, text in (
        (w1, "status", "tokenizer port started"),
        (w2, "request", "can someone review PR 42?"),
        (w1, "result", "tokenizer ported: 48 tests pass"),
    ):
        ok(
            http.post(
                f"/api/agent/channels/{s.channel}/send",
                headers=who,
                json={
                    "body": {"text": text},
                    "metadata": {
                        "task_id": "t",
                        "run_id": "r",
                        "coordination_channel_id": s.channel,
                        "correlation_id": uuid.uuid4().hex,
                        "message_kind": kind,
                    },
                },
            )
        )
    got = ok(http.get(f"/api/agent/channels/{s.channel}/recv", headers=w2))
    newest = max(int(m["seq"]) for m in got["messages"])
    ok(http.post(f"/api/agent/channels/{s.channel}/ack", headers=w2, json={"seq": newest}))
    return s


def many_sessions(http: httpx.Client, count: int) -> None:
    """`count` sessions in the shared session list, 1,000 per Trenchcoat batch."""
    for start in range(0, count, 1000):
        events = [
            {
                "event_type": "session_start",
                "session_id": str(uuid.uuid4()),
                "timestamp": at(count - i),
                "data": {"cwd": f"/src/repo-{i % 97}"},
            }
            for i in range(start, min(count, start + 1000))
        ]
        ok(http.post("/api/v1/events", json={"events": events}))


def long_timeline(http: httpx.Client, events: int, title: str = "A long task") -> str:
    """A tracer task with `events` events (100 per batch); its id."""
    ensured = ok(
        http.post(
            "/ingest/v1/sessions/ensure",
            json={"runtimeSource": CLAUDE, "runtimeSessionId": f"long-{uuid.uuid4().hex}", "title": title},
        )
    )["data"]
    t, m = ensured["taskId"], ensured["sessionId"]
    for start in range(0, events, 100):
        batch = [
            tracer_event(
                "tool.used",
                t,
                m,
                "exploration" if i % 3 else "implementation",
                f"Read file {i}.py",
                metadata={"toolName": "Read"},
            )
            for i in range(start, min(events, start + 100))
        ]
        ok(http.post("/ingest/v1/events", json={"events": batch}))
    return str(t)
