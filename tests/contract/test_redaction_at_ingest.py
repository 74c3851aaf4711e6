"""Secrets redacted at ingest (AGENTPLANE_REDACT, on by default) for clients
that do not redact: tracer events, runtime events' tool input and output,
tool calls' input and output; stored as sent when it is off."""

from __future__ import annotations

from typing import Any

import pytest

from service.base.config import Settings
from tests.conftest import Server

GITHUB = "ghp_" + "16C7e42F292c6912E7710c838347Ae178B4a"
TOOL_INPUT = {"command": "deploy", "env": {"API_KEY": "abc123", "REGION": "eu-west-1"}}
TOOL_OUTPUT = f"pushed with {GITHUB}\ndone"
REDACTED_INPUT = {"command": "deploy", "env": {"API_KEY": "[REDACTED]", "REGION": "eu-west-1"}}
REDACTED_OUTPUT = "pushed with [REDACTED]\ndone"


async def _post(server: Server, path: str, body: Any) -> Any:
    resp = await server.http.post(path, json=body)
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


async def tracer_event(server: Server) -> dict[str, Any]:
    ensured = await _post(
        server,
        "/ingest/v1/sessions/ensure",
        {"runtimeSource": "claude-plugin", "runtimeSessionId": "cc-1", "title": "Deploy"},
    )
    ids = {"taskId": ensured["data"]["taskId"], "sessionId": ensured["data"]["sessionId"]}
    item = {
        **ids,
        "kind": "terminal.command",
        "lane": "implementation",
        "title": "export TOKEN=abcdef123456",
        "body": TOOL_OUTPUT,
        "metadata": {"toolInput": TOOL_INPUT, "stdout": TOOL_OUTPUT, "exitCode": 0},
    }
    await _post(server, "/ingest/v1/tool-activity", {"events": [item]})
    timeline = (await server.http.get(f"/api/v1/tasks/{ids['taskId']}/timeline")).json()["data"]["events"]
    event: dict[str, Any] = timeline[-1]
    return event


async def runtime_event(server: Server) -> dict[str, Any]:
    await _post(server, "/sessions", {"session_id": "rt-1", "session_name": "Deploy"})
    event = {
        "event_type": "post_tool",
        "session_id": "rt-1",
        "session_name": "Deploy",
        "timestamp": "2026-01-01T00:00:00Z",
        "tool_name": "Bash",
        "tool_input": TOOL_INPUT,
        "tool_output": TOOL_OUTPUT,
    }
    await _post(server, "/sessions/rt-1/events", event)
    [stored] = (await server.http.get("/sessions/rt-1/events")).json()["events"]
    return dict(stored)


async def tool_call(server: Server) -> dict[str, Any]:
    execution = (await _post(server, "/api/v1/executions", {"name": "Deploy"}))["execution"]["id"]
    agent = (
        await _post(server, f"/api/v1/executions/{execution}/agents", {"prompt": "Deploy", "model": "m"})
    )["agent"]["id"]
    call = (
        await _post(server, f"/api/v1/agents/{agent}/tool-calls", {"tool_name": "Bash", "input": TOOL_INPUT})
    )["tool_call"]["id"]
    await _post(server, f"/api/v1/tool-calls/{call}/complete", {"output": TOOL_OUTPUT})
    stored: dict[str, Any] = (await server.http.get(f"/api/v1/tool-calls/{call}")).json()["tool_call"]
    return stored


async def test_secrets_are_redacted_at_ingest(server: Server) -> None:
    event = await tracer_event(server)
    assert (event["title"], event["body"]) == ("export TOKEN=[REDACTED]", REDACTED_OUTPUT)
    assert event["metadata"]["toolInput"] == REDACTED_INPUT and event["metadata"]["exitCode"] == 0
    assert event["metadata"]["stdout"] == REDACTED_OUTPUT

    stored = await runtime_event(server)
    assert (stored["tool_input"], stored["tool_output"]) == (REDACTED_INPUT, REDACTED_OUTPUT)

    call = await tool_call(server)
    assert (call["input"], call["output_inline"]) == (REDACTED_INPUT, REDACTED_OUTPUT)


class TestRedactionOff:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        settings.redact = False
        return settings

    async def test_secrets_are_stored_as_sent(self, server: Server) -> None:
        event = await tracer_event(server)
        assert (event["title"], event["body"]) == ("export TOKEN=abcdef123456", TOOL_OUTPUT)
        stored = await runtime_event(server)
        assert (stored["tool_input"], stored["tool_output"]) == (TOOL_INPUT, TOOL_OUTPUT)
        call = await tool_call(server)
        assert (call["input"], call["output_inline"]) == (TOOL_INPUT, TOOL_OUTPUT)
