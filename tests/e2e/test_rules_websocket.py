"""Verification rules on the Agent Tracer live feed (/api/v1/ws) over a real
socket: `rules.changed`, `rule_enforcement.added` and `verdict.updated`, in
log order, with their `seq`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import LiveServer
from tests.contract.tracer_contract import Tracer, event
from tests.e2e.test_tracer_websocket import connect
from tests.e2e.test_websocket import drain, recv, without_seq

RULE_TYPES = ("rules.changed", "rule_enforcement.added", "verdict.updated")


@pytest.fixture
async def tracer(live_server: LiveServer) -> AsyncIterator[Tracer]:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as client:
        yield Tracer(client)


async def test_rule_messages(live_server: LiveServer, tracer: Tracer) -> None:
    ensured = await tracer.ensure("rs", "Live rules")
    task_id, session_id = ensured["taskId"], ensured["sessionId"]
    async with connect(live_server) as ws:
        assert (await recv(ws))["type"] == "snapshot"
        body = {
            "name": "run tests",
            "trigger": {"phrases": ["run the tests"]},
            "expect": {"commandMatches": ["pytest"]},
            "scope": "task",
            "taskId": task_id,
        }
        resp = await tracer.http.post("/api/v1/rules", json=body)
        assert resp.status_code == 201, resp.text
        rule_id = resp.json()["data"]["rule"]["id"]
        [ask] = await tracer.accepted_ids(
            "conversation", event("user.message", task_id, "user", session_id, body="run the tests")
        )
        [command] = await tracer.accepted_ids(
            "tool-activity",
            event(
                "terminal.command", task_id, "implementation", session_id, metadata={"command": "pytest -x"}
            ),
        )
        await tracer.accepted_ids("conversation", event("assistant.response", task_id, "user", session_id))
        turn_id = (await tracer.task(task_id))["turns"][0]["id"]
        resp = await tracer.http.delete(f"/api/v1/rules/{rule_id}")
        assert resp.status_code == 200, resp.text

        messages = without_seq([m for m in await drain(ws) if m["type"] in RULE_TYPES])
    changed = {"ruleId": rule_id, "scope": "task", "taskId": task_id}
    enforcement = {"ruleId": rule_id, "taskId": task_id, "sessionId": session_id}
    assert messages == [
        {"type": "rules.changed", "payload": {**changed, "change": "created"}},
        {
            "type": "rule_enforcement.added",
            "payload": {"eventId": ask, "matchKind": "trigger", **enforcement},
        },
        {
            "type": "rule_enforcement.added",
            "payload": {"eventId": command, "matchKind": "expect-fulfilled", **enforcement},
        },
        {
            "type": "verdict.updated",
            "payload": {
                "turnId": turn_id,
                "sessionId": session_id,
                "taskId": task_id,
                "aggregateVerdict": "verified",
                "rulesEvaluatedCount": 1,
            },
        },
        {"type": "rules.changed", "payload": {**changed, "change": "deleted"}},
    ]
