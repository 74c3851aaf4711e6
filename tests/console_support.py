"""Seeding for the console's tests and benchmarks: one of everything the
console shows, written through each family's public routes (so the rows are
exactly what real clients leave behind)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

TRACER_SOURCE = "claude-code"
RULE = {
    "name": "run tests",
    "trigger": {"phrases": ["run the tests"]},
    "expect": {"tool": "command", "commandMatches": ["pytest"]},
    "scope": "global",
}


def _ok(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json()


@dataclass
class Seeded:
    runtime_session: str
    tracer_task: str
    tracer_session: str
    child_task: str
    execution: str
    agent: str
    tool_call: str
    agh_task: str
    agh_run: str
    channel: str
    rule: str


async def runtime_session(http: httpx.AsyncClient, session_id: str, name: str, events: int = 2) -> None:
    _ok(
        await http.post(
            "/sessions", json={"session_id": session_id, "session_name": name, "agent_name": "claude"}
        )
    )
    for i in range(events):
        event = {
            "event_type": "tool_use" if i % 2 else "user_prompt",
            "session_id": session_id,
            "session_name": name,
            "timestamp": f"2026-01-01T00:00:{i % 60:02d}Z",
            "tool_name": "Bash",
        }
        _ok(await http.post(f"/sessions/{session_id}/events", json=event))


async def tracer_task(
    http: httpx.AsyncClient, runtime_session_id: str, title: str, **fields: Any
) -> tuple[str, str]:
    """A tracer task with a monitor session; (task id, session id)."""
    body = {"runtimeSource": TRACER_SOURCE, "runtimeSessionId": runtime_session_id, "title": title, **fields}
    out = _ok(await http.post("/ingest/v1/sessions/ensure", json=body))["data"]
    return out["taskId"], out["sessionId"]


def tracer_event(
    kind: str, task_id: str, session_id: str, lane: str, title: str, **fields: Any
) -> dict[str, Any]:
    return {"kind": kind, "taskId": task_id, "sessionId": session_id, "lane": lane, "title": title, **fields}


async def ingest(http: httpx.AsyncClient, endpoint: str, *events: dict[str, Any]) -> None:
    _ok(await http.post(f"/ingest/v1/{endpoint}", json={"events": list(events)}))


async def tracer_turn(http: httpx.AsyncClient, task_id: str, session_id: str, ask: str, command: str) -> None:
    """One closed turn: a request, a shell command, the answer."""
    await ingest(
        http, "conversation", tracer_event("user.message", task_id, session_id, "user", ask[:20], body=ask)
    )
    shell = tracer_event(
        "terminal.command", task_id, session_id, "implementation", command, metadata={"command": command}
    )
    await ingest(http, "events", shell)
    answer = tracer_event("assistant.response", task_id, session_id, "planning", "Done.", body="Done.")
    await ingest(http, "conversation", answer)


async def seed_everything(http: httpx.AsyncClient, tag: str = "") -> Seeded:
    """One item of every kind, a closed turn judged by a rule, a leased AGH
    run and a channel with messages; ids get `tag` appended."""
    rs = f"rs-{tag}" if tag else "rs-1"
    await runtime_session(http, rs, f"fix the build {tag}".strip(), events=3)

    rule = _ok(await http.post("/api/v1/rules", json={**RULE, "name": f"run tests {tag}".strip()}), 201)
    task_id, session_id = await tracer_task(http, f"claude-{tag}", f"Fix the flaky test {tag}".strip())
    await tracer_turn(http, task_id, session_id, "Please run the tests", "pytest -x")
    await tracer_turn(http, task_id, session_id, "Now run the tests again", "ls")
    child, _ = await tracer_task(http, f"claude-child-{tag}", "child task", parentTaskId=task_id)

    execution = _ok(await http.post("/api/v1/executions", json={"name": f"nightly {tag}".strip()}))[
        "execution"
    ]
    agent = _ok(
        await http.post(
            f"/api/v1/executions/{execution['id']}/agents", json={"prompt": "refactor", "model": "opus"}
        )
    )["agent"]
    tool = _ok(
        await http.post(
            f"/api/v1/agents/{agent['id']}/tool-calls", json={"tool_name": "Edit", "input": {"path": "a.py"}}
        )
    )["tool_call"]

    worker = f"worker-{tag}" if tag else "worker"
    _ok(
        await http.post(
            "/sessions", json={"session_id": worker, "session_name": "worker", "agent_name": "coder"}
        )
    )
    agh_task = _ok(await http.post("/api/tasks", json={"title": f"Port the parser {tag}".strip()}), 201)
    headers = {"X-AGH-Session-ID": worker, "X-AGH-Agent": "coder"}
    claim = _ok(await http.post("/api/agent/tasks/claim-next", json={}, headers=headers))["claim"]

    channel = f"ops-{tag}" if tag else "ops"
    _ok(await http.post("/v1/channels", json={"id": channel}), 201)
    for i in range(3):
        meta = {
            "task_id": "task-1",
            "run_id": "run-1",
            "coordination_channel_id": channel,
            "correlation_id": f"corr-{i}",
            "message_kind": "status",
        }
        body = {"body": {"text": f"hello {i}"}, "metadata": meta}
        _ok(await http.post(f"/api/agent/channels/{channel}/send", json=body, headers=headers), 202)

    return Seeded(
        runtime_session=rs,
        tracer_task=task_id,
        tracer_session=session_id,
        child_task=child,
        execution=execution["id"],
        agent=agent["id"],
        tool_call=tool["id"],
        agh_task=agh_task["task"]["id"] if "task" in agh_task else agh_task["id"],
        agh_run=claim["run_id"] if "run_id" in claim else claim["run"]["id"],
        channel=channel,
        rule=rule["data"]["rule"]["id"],
    )
