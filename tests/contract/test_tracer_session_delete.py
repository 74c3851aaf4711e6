"""`DELETE /sessions/{id}` (agent-runtime family, seed 004) on an Agent Tracer
monitor session: the session is deleted with its log entries, and the
tracer's projections of it go in the same transaction (its timeline events,
turns and token counts; its bindings become historical), while the task and
its other sessions stay as they were."""

from __future__ import annotations

from typing import Any

from tests.conftest import Server
from tests.contract.tracer_contract import UUID, Tracer, event


def tokens(inp: int, out: int, n: int) -> dict[str, Any]:
    return {
        "inputTokens": inp,
        "outputTokens": out,
        "cacheReadTokens": 0,
        "cacheCreateTokens": 0,
        "costUsd": 0,
        "events": n,
    }


async def test_deleting_a_monitor_session_deletes_its_tracer_rows(server: Server) -> None:
    tracer = Tracer(server.http)
    first = await tracer.ensure("rs-1")
    task_id, gone = first["taskId"], first["sessionId"]
    kept = (await tracer.ensure("rs-2", taskId=task_id))["sessionId"]

    def turn_of(session_id: str, n: int) -> list[dict[str, Any]]:
        return [
            event("user.message", task_id, "user", session_id, body=f"ask {n}"),
            event("tool.used", task_id, "implementation", session_id, filePaths=[f"/src/{n}.py"]),
            event(
                "token.usage",
                task_id,
                "telemetry",
                session_id,
                metadata={"inputTokens": n, "outputTokens": 1},
            ),
            event("assistant.response", task_id, "user", session_id, body=f"done {n}"),
        ]

    await tracer.accepted_ids("events", *turn_of(gone, 10), *turn_of(kept, 5))
    await tracer.accepted_ids("events", event("thought.logged", task_id, "planning", title="no session"))
    before = await tracer.task(task_id)
    assert before["tokenUsage"] == tokens(15, 2, 2)
    assert [t["sessionId"] for t in before["turns"]] == [gone, kept]

    resp = await server.http.delete(f"/sessions/{gone}")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "ok": True,
        "session_id": gone,
        "deleted": {"session": True, "events_count": 0},
    }

    after = await tracer.task(task_id)
    assert after["task"] == before["task"]
    assert [s["id"] for s in after["sessions"]] == [kept]
    assert after["turns"] == before["turns"][1:]
    assert after["turns"][0]["eventCount"] == 5  # 4 events and the derived file.changed
    assert after["tokenUsage"] == tokens(5, 1, 1)
    timeline = await tracer.timeline(task_id)
    assert {e.get("sessionId") for e in timeline} == {kept, None}
    assert [e["kind"] for e in timeline if e.get("sessionId") == kept] == [
        "user.message",
        "tool.used",
        "file.changed",
        "token.usage",
        "assistant.response",
    ]
    assert (await server.http.get(f"/sessions/{gone}")).status_code == 404

    # The runtime session's binding is historical now: its next ensure opens
    # a new monitor session on the same task, whose turns start again.
    again = await tracer.ensure("rs-1")
    assert again == {"taskId": task_id, "sessionId": UUID, "taskCreated": False, "sessionCreated": True}
    assert again["sessionId"] not in (gone, kept)
    await tracer.accepted_ids("events", *turn_of(again["sessionId"], 1))
    detail = await tracer.task(task_id)
    assert [(t["sessionId"], t["turnIndex"]) for t in detail["turns"]] == [(kept, 0), (again["sessionId"], 0)]
    assert detail["tokenUsage"] == tokens(6, 2, 2)


async def test_deleting_a_monitor_session_that_others_reference_by_id_only(server: Server) -> None:
    """Events of another task that name the session go with it, and their
    tokens come off that task; a second DELETE is a 404 that writes nothing."""
    tracer = Tracer(server.http)
    first = await tracer.ensure("rs-1")
    task_id, session_id = first["taskId"], first["sessionId"]
    other_task = (await tracer.ensure("rs-2"))["taskId"]
    await tracer.accepted_ids(
        "telemetry",
        {"taskId": other_task, "sessionId": session_id, "inputTokens": 7, "outputTokens": 3},
        {"taskId": other_task, "inputTokens": 1, "outputTokens": 1},
    )
    assert (await tracer.task(other_task))["tokenUsage"] == tokens(8, 4, 2)

    assert (await server.http.delete(f"/sessions/{session_id}")).status_code == 200
    assert (await tracer.task(other_task))["tokenUsage"] == tokens(1, 1, 1)
    assert [e["kind"] for e in await tracer.timeline(other_task)] == ["task.start", "token.usage"]
    assert (await tracer.task(task_id))["sessions"] == []

    log = await tracer.log()
    assert (await server.http.delete(f"/sessions/{session_id}")).status_code == 404
    assert await tracer.log() == log
