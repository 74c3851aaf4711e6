"""The Agent Tracer live feed (/api/v1/ws) over a real socket: the opening
snapshot, then upstream's message types as the log commits them, resumable
with ?cursor=."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import LiveServer
from tests.contract.tracer_contract import Tracer, event
from tests.e2e.test_websocket import WAIT, assert_silent, recv, recv_many, without_seq

EMPTY_STATS = {
    "totalTasks": 0,
    "runningTasks": 0,
    "waitingTasks": 0,
    "completedTasks": 0,
    "erroredTasks": 0,
    "totalEvents": 0,
}


@pytest.fixture
async def tracer(live_server: LiveServer) -> AsyncIterator[Tracer]:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as client:
        yield Tracer(client)


def connect(live_server: LiveServer, cursor: int | None = None) -> Any:
    query = "" if cursor is None else f"?cursor={cursor}"
    return websockets.connect(f"{live_server.ws_url}/api/v1/ws{query}", open_timeout=WAIT, close_timeout=1)


async def test_snapshot_then_every_change(live_server: LiveServer, tracer: Tracer) -> None:
    async with connect(live_server) as ws:
        assert await recv(ws) == {"type": "snapshot", "payload": {"stats": EMPTY_STATS, "tasks": []}}

        ensured = await tracer.ensure("rs", "Live task")
        task_id, session_id = ensured["taskId"], ensured["sessionId"]
        [read_id] = await tracer.accepted_ids(
            "tool-activity", event("tool.used", task_id, "exploration", session_id)
        )
        await tracer.end("rs", completionReason="idle")
        await tracer.post("/ingest/v1/tasks/complete", {"taskId": task_id, "summary": "done"})

        detail = await tracer.task(task_id)
        timeline = await tracer.timeline(task_id)
        task = detail["task"]
        started_task = {**task, "status": "running", "updatedAt": task["createdAt"]}
        waiting_task = {**task, "status": "waiting"}
        ended_session = {k: v for k, v in detail["sessions"][0].items() if k != "tokenUsage"}
        messages = without_seq(await recv_many(ws, 8))
        assert messages[:4] == [
            {"type": "task.started", "payload": started_task},
            {
                "type": "session.started",
                "payload": {
                    "id": session_id,
                    "taskId": task_id,
                    "status": "running",
                    "startedAt": task["createdAt"],
                },
            },
            {"type": "event.logged", "payload": timeline[0]},
            {"type": "event.logged", "payload": timeline[1]},
        ]
        assert timeline[1]["id"] == read_id
        assert messages[4] == {"type": "session.ended", "payload": ended_session}
        assert messages[5]["type"] == "task.updated"
        assert {**messages[5]["payload"], "updatedAt": None} == {**waiting_task, "updatedAt": None}
        assert messages[6] == {"type": "task.completed", "payload": task}
        assert messages[7] == {"type": "event.logged", "payload": timeline[2]}
        await assert_silent(ws)

    async with connect(live_server) as ws:
        snapshot = await recv(ws)
        assert snapshot == {
            "type": "snapshot",
            "payload": {
                "stats": {**EMPTY_STATS, "totalTasks": 1, "completedTasks": 1, "totalEvents": 3},
                "tasks": [task],
            },
        }


async def test_a_cursor_resumes_after_the_last_message_seen(live_server: LiveServer, tracer: Tracer) -> None:
    async with connect(live_server) as ws:
        await recv(ws)
        ensured = await tracer.ensure("rs", "Resumable")
        first = await recv_many(ws, 3)  # task.started, session.started, event.logged
    await tracer.ingest("workflow", event("plan.logged", ensured["taskId"], "planning", title="missed"))
    async with connect(live_server, cursor=first[1]["seq"]) as ws:
        assert (await recv(ws))["type"] == "snapshot"
        replayed = await recv_many(ws, 2)
        assert [m["type"] for m in replayed] == ["event.logged", "event.logged"]
        assert replayed[0] == first[2]
        assert replayed[1]["payload"]["title"] == "missed"
        await assert_silent(ws)


async def test_a_cross_check_merge_is_an_event_update(live_server: LiveServer, tracer: Tracer) -> None:
    ensured = await tracer.ensure("rs", "Merges")
    task_id, session_id = ensured["taskId"], ensured["sessionId"]
    async with connect(live_server) as ws:
        await recv(ws)
        for source in ("hook", "rollout"):
            check = {"crossCheck": {"source": source, "dedupeKey": "k"}, source: True}
            await tracer.ingest(
                "events", event("terminal.command", task_id, "implementation", session_id, metadata=check)
            )
        logged, updated = without_seq(await recv_many(ws, 2))
        [stored] = (await tracer.timeline(task_id))[1:]
        assert logged["type"] == "event.logged" and logged["payload"]["id"] == stored["id"]
        assert updated == {"type": "event.updated", "payload": stored}
        assert stored["metadata"] == {
            "crossCheck": {"source": "hook", "dedupeKey": "k", "mergedFrom": "rollout", "merged": True},
            "hook": True,
            "rollout": True,
        }
        await assert_silent(ws)
