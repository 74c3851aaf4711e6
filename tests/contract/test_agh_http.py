"""AGH (seed 003) over HTTP, against the real app: the operator task API,
claims and the lease operations, identity, spawn, context and souls.

Bodies are compared whole (ids, times and hashes by matchers); every refused
input is checked to write nothing (all AGH tables, the sessions and the
whole event log are compared before and after).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import httpx
import pytest

from tests.agh_support import (
    ABSENT,
    AGENT,
    ANY_HASH,
    ANY_TIME,
    ANY_UUID,
    IDENTITY_ERRORS,
    Clock,
    Holder,
    agh_error,
    assert_error,
    claim,
    claimed,
    create_task,
    created,
    identity,
    lease_body,
    lease_op,
    log_types,
    ok,
    run_body,
    run_channel_body,
    snapshot,
    start_session,
    stop_session,
    task_record,
    task_ref,
)
from tests.conftest import Server

W = "worker"


@pytest.fixture
async def agh(server: Server) -> AsyncIterator[Server]:
    """A server with running sessions `worker` and `other` (agent `coder`) and a finished one."""
    for sid in (W, "other", "finished"):
        await start_session(server.http, sid)
    await stop_session(server.http, "finished")
    yield server


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


async def refused(server: Server, request: Any, status: int, body: dict[str, Any]) -> None:
    """`request` (a coroutine function) is refused with `status`/`body` and writes nothing."""
    before = await snapshot(server)
    assert_error(await request(), status, body)
    assert await snapshot(server) == before


def validation(message: str, field: str, description: str) -> dict[str, Any]:
    return agh_error(
        "task_validation_failed",
        message,
        category="task",
        evidence={"field_violations": [{"field": field, "description": description}]},
    )


# ------------------------------------------------------------ operator API


async def test_create_task_queues_its_first_run(agh: Server) -> None:
    body = await create_task(agh.http, "Fix the build", description="CI is red", metadata={"ticket": 42})
    task_id = body["task"]["id"]
    assert body == {
        "task": task_record(task_id, description="CI is red", metadata={"ticket": 42}, identifier="TASK-1"),
        "run": run_body(task_id),
    }
    assert (await log_types(agh))[-2:] == ["task.created", "task_run.queued"]
    got = ok(await agh.http.get(f"/api/tasks/{task_id}"))
    assert got == {"task": body["task"], "runs": [body["run"]]}


async def test_create_task_with_every_field(agh: Server) -> None:
    body = await create_task(
        agh.http, "Ship", scope="workspace", workspace="default", priority="urgent", max_attempts=5
    )
    task_id = body["task"]["id"]
    expected = task_record(
        task_id, title="Ship", scope="workspace", workspace_id="default", priority="urgent"
    )
    assert body["task"] == {**expected, "max_attempts": 5}
    # A workspace-scoped task defaults to the caller's workspace.
    second = await create_task(agh.http, "Also", scope="workspace")
    assert second["task"]["workspace_id"] == "default"
    assert second["task"]["identifier"] == "TASK-2"


async def test_draft_task_has_no_run_until_one_is_queued(agh: Server) -> None:
    body = await create_task(agh.http, draft=True)
    task_id = body["task"]["id"]
    assert body == {"task": task_record(task_id, status="draft")}
    assert (await claim(agh.http, W)).status_code == 204
    queued = created(await agh.http.post(f"/api/tasks/{task_id}/runs", json={}))
    assert queued == {"task": task_record(task_id), "run": run_body(task_id)}
    assert (await claimed(agh.http, W))["run"]["id"] == queued["run"]["id"]


BAD_TASKS = [
    (
        {},
        422,
        agh_error(
            "missing_field",
            "missing required field: title",
            category="daemon",
            evidence={"field_violations": [{"field": "title", "description": "is required"}]},
        ),
    ),
    ({"title": "   "}, 422, validation("task: validation failed: title is required", "title", "is required")),
    (
        {"title": "t", "scope": "team"},
        422,
        validation(
            "task: validation failed: scope must be global or workspace",
            "scope",
            "must be global or workspace",
        ),
    ),
    (
        {"title": "t", "priority": "asap"},
        422,
        validation(
            "task: validation failed: priority must be low, medium, high or urgent",
            "priority",
            "must be low, medium, high or urgent",
        ),
    ),
    (
        {"title": "t", "max_attempts": 11},
        422,
        validation(
            "task: validation failed: max_attempts must be between 1 and 10",
            "max_attempts",
            "must be between 1 and 10",
        ),
    ),
    (
        {"title": "t", "max_attempts": -1},
        422,
        validation(
            "task: validation failed: max_attempts must be between 1 and 10",
            "max_attempts",
            "must be between 1 and 10",
        ),
    ),
    (
        {"title": "t", "workspace": "default"},
        422,
        validation(
            "task: validation failed: workspace must be empty for a global task",
            "workspace",
            "must be empty for a global task",
        ),
    ),
    (
        {"title": "t", "scope": "workspace", "workspace": "elsewhere"},
        403,
        agh_error(
            "workspace_mismatch",
            'task: workspace "elsewhere" is not the caller\'s workspace',
            category="daemon",
            evidence={"workspace": "elsewhere"},
        ),
    ),
    (
        {"title": "t\u0000"},
        422,
        agh_error(
            "invalid_argument",
            "title: must not contain the character U+0000",
            category="daemon",
            evidence={
                "field_violations": [
                    {"field": "title", "description": "must not contain the character U+0000"}
                ]
            },
        ),
    ),
    (
        {"title": "t", "metadata": {"blob": "x" * 70_000}},
        413,
        agh_error(
            "payload_too_large",
            "task: payload too large: metadata is 70011 bytes, more than 65536",
            category="task",
            evidence={"field": "metadata", "limit_bytes": "65536"},
        ),
    ),
]


@pytest.mark.parametrize(("body", "status", "error"), BAD_TASKS)
async def test_create_task_refuses_bad_input(
    agh: Server, body: Any, status: int, error: dict[str, Any]
) -> None:
    await refused(agh, lambda: agh.http.post("/api/tasks", json=body), status, error)


def _type_errors(*found: tuple[str, str]) -> dict[str, Any]:
    return {"field_violations": [{"field": f, "description": d} for f, d in found]}


@pytest.mark.parametrize(
    ("raw", "message", "evidence"),
    [
        (b"{", "malformed JSON: unexpected end of data: line 1 column 2 (char 1)", ABSENT),
        (b"[1]", "the request body must be a JSON object", ABSENT),
        (
            b'{"title": 5}',
            "title: expected a string, got 5",
            _type_errors(("title", "expected a string, got 5")),
        ),
        # every field of the wrong type is named, not only the first
        (
            b'{"title": 5, "metadata": [1]}',
            "title: expected a string, got 5",
            _type_errors(
                ("title", "expected a string, got 5"), ("metadata", "expected a JSON object, got [1]")
            ),
        ),
    ],
)
async def test_malformed_bodies_are_400(agh: Server, raw: bytes, message: str, evidence: Any) -> None:
    async def post() -> httpx.Response:
        return await agh.http.post("/api/tasks", content=raw, headers={"content-type": "application/json"})

    await refused(agh, post, 400, agh_error("invalid_json", message, category="daemon", evidence=evidence))


async def test_body_over_the_transport_limit_is_413(agh: Server) -> None:
    limit = agh.core.settings.max_body_bytes
    error = agh_error("body_too_large", f"request body is larger than {limit} bytes", category="daemon")
    await refused(agh, lambda: agh.http.post("/api/tasks", content=b"x" * (limit + 1)), 413, error)


async def test_list_tasks_filters_and_pages(agh: Server) -> None:
    ids = [
        (await create_task(agh.http, f"t{i}", priority=p))["task"]["id"]
        for i, p in enumerate(["low", "high", "low"])
    ]
    await create_task(agh.http, "draft", draft=True)
    page = ok(await agh.http.get("/api/tasks", params={"page_size": 2}))
    assert [t["title"] for t in page["tasks"]] == ["draft", "t2"]
    assert page["next_page_token"]
    rest = ok(
        await agh.http.get("/api/tasks", params={"page_size": 2, "page_token": page["next_page_token"]})
    )
    assert [t["id"] for t in rest["tasks"]] == [ids[1], ids[0]]
    assert rest["next_page_token"] == ""
    low = ok(await agh.http.get("/api/tasks", params={"priority": "low"}))
    assert [t["id"] for t in low["tasks"]] == [ids[2], ids[0]]
    drafts = ok(await agh.http.get("/api/tasks", params={"status": "draft", "scope": "global"}))
    assert [t["title"] for t in drafts["tasks"]] == ["draft"]
    assert ok(await agh.http.get("/api/tasks", params={"scope": "workspace"})) == {
        "tasks": [],
        "next_page_token": "",
    }


@pytest.mark.parametrize(
    ("params", "field", "description"),
    [
        ({"page_size": 501}, "page_size", "must be between 1 and 500"),
        ({"page_size": -1}, "page_size", "must be between 1 and 500"),
        ({"page_token": "abc"}, "page_token", "is not a token this server gave"),
    ],
)
async def test_list_tasks_refuses_bad_pages(
    agh: Server, params: dict[str, Any], field: str, description: str
) -> None:
    resp = await agh.http.get("/api/tasks", params=params)
    assert_error(resp, 422, validation(f"task: validation failed: {field} {description}", field, description))


async def test_unknown_task_is_404(agh: Server) -> None:
    error = agh_error(
        "task_not_found", 'task "nope" not found', category="task", evidence={"task_id": "nope"}
    )
    assert_error(await agh.http.get("/api/tasks/nope"), 404, error)
    for action in ("runs", "cancel", "pause", "resume"):
        await refused(agh, lambda a=action: agh.http.post(f"/api/tasks/nope/{a}", json={}), 404, error)


async def test_queue_another_run_after_the_first_ends(agh: Server) -> None:
    task = (await create_task(agh.http))["task"]
    first = (await agh.http.get(f"/api/tasks/{task['id']}")).json()["runs"][0]
    busy = agh_error(
        "task_run_still_active",
        f'task "{task["id"]}" already has run "{first["id"]}" queued',
        category="task",
        evidence={"run_id": first["id"], "task_id": task["id"]},
    )
    await refused(agh, lambda: agh.http.post(f"/api/tasks/{task['id']}/runs", json={}), 409, busy)
    got = await claimed(agh.http, W)
    assert (await lease_op(agh.http, W, got["run"]["id"], "complete")).status_code == 200
    again = created(await agh.http.post(f"/api/tasks/{task['id']}/runs", json={}))
    assert again == {"task": task_record(task["id"]), "run": run_body(task["id"], attempt=2)}


async def test_cancel_ends_every_unfinished_run(agh: Server) -> None:
    task_id = (await create_task(agh.http))["task"]["id"]
    held = await claimed(agh.http, W)
    run_id = held["run"]["id"]
    before = len(await log_types(agh))
    body = ok(await agh.http.post(f"/api/tasks/{task_id}/cancel", json={"reason": "not needed"}))
    assert body == {"task": task_record(task_id, status="canceled")}
    runs = ok(await agh.http.get(f"/api/tasks/{task_id}"))["runs"]
    assert runs == [
        run_body(task_id, run_id=run_id, status="canceled", holder=Holder(W, leased=False), ended=True)
    ]
    assert (await log_types(agh))[before:] == ["task.canceled"]
    # The holder hears that its run ended; canceling again changes nothing.
    terminal = agh_error(
        "task_run_already_terminal",
        "task: autonomy lease rejected: AUTONOMY_LEASE_EXPIRED: run is already canceled",
        category="task",
        evidence={"run_id": run_id, "status": "canceled"},
    )
    await refused(agh, lambda: lease_op(agh.http, W, run_id, "complete"), 409, terminal)
    snap = await snapshot(agh)
    assert ok(await agh.http.post(f"/api/tasks/{task_id}/cancel", json={})) == body
    assert await snapshot(agh) == snap
    canceled = agh_error(
        "task_canceled", f'task "{task_id}" is canceled', category="task", evidence={"task_id": task_id}
    )
    await refused(agh, lambda: agh.http.post(f"/api/tasks/{task_id}/runs", json={}), 409, canceled)


async def test_pause_keeps_runs_from_being_claimed(agh: Server) -> None:
    task_id = (await create_task(agh.http))["task"]["id"]
    paused = ok(await agh.http.post(f"/api/tasks/{task_id}/pause", json={}))
    assert paused == {"task": task_record(task_id, paused=True)}
    assert (await claim(agh.http, W)).status_code == 204
    snap = await snapshot(agh)
    assert ok(await agh.http.post(f"/api/tasks/{task_id}/pause", json={})) == paused  # no change
    assert await snapshot(agh) == snap
    assert ok(await agh.http.post(f"/api/tasks/{task_id}/resume", json={})) == {"task": task_record(task_id)}
    assert (await claimed(agh.http, W))["task"]["id"] == task_id


# ---------------------------------------------------------------- claims


async def test_claim_next_seed_shape(agh: Server) -> None:
    task_id = (await create_task(agh.http, priority="high"))["task"]["id"]
    resp = await claim(agh.http, W)
    holder = Holder(W)
    assert ok(resp) == {
        "claim": {
            "task": task_ref(task_id, priority="high", identifier="TASK-1"),
            "run": run_body(task_id, status="claimed", holder=holder),
            "lease": lease_body(task_id, ANY_UUID, "claimed", holder),
            "coordination_channel": run_channel_body(task_id),
        }
    }
    body = resp.json()["claim"]
    assert body["coordination_channel"]["id"] == f"run-{body['run']['id']}"
    assert body["lease"]["run_id"] == body["run"]["id"]
    assert body["lease"]["claim_token_hash"] == body["run"]["claim_token_hash"]
    assert "agh_claim_" not in resp.text


async def test_claims_go_by_priority_then_age(agh: Server) -> None:
    order = ["low", "urgent", "medium", "high", "urgent", "low"]
    ids = [(await create_task(agh.http, f"t{i}", priority=p))["task"]["id"] for i, p in enumerate(order)]
    got = []
    for _ in order:
        c = await claimed(agh.http, W)
        got.append(c["task"]["id"])
        assert (await lease_op(agh.http, W, c["run"]["id"], "complete")).status_code == 200
    assert got == [ids[1], ids[4], ids[3], ids[2], ids[0], ids[5]]


async def test_priority_min_skips_lower_priorities(agh: Server) -> None:
    await create_task(agh.http, "low", priority="low")
    high = (await create_task(agh.http, "high", priority="high"))["task"]["id"]
    assert (await claim(agh.http, W, priority_min=40)).status_code == 204
    assert (await claimed(agh.http, W, priority_min=30))["task"]["id"] == high


async def test_nothing_queued_is_204_without_a_body(agh: Server) -> None:
    resp = await claim(agh.http, W)
    assert resp.status_code == 204
    assert resp.content == b""


async def test_one_active_lease_per_session(agh: Server) -> None:
    await create_task(agh.http, "a")
    await create_task(agh.http, "b")
    held = await claimed(agh.http, W)
    error = agh_error(
        "task_run_still_active",
        f'task: active run lease exists: session "{W}" already owns an active task-run lease',
        category="task",
        evidence={"run_id": held["run"]["id"], "session_id": W},
    )
    await refused(agh, lambda: claim(agh.http, W), 409, error)
    # Another session takes the other task.
    assert (await claimed(agh.http, "other"))["task"]["title"] == "b"


WORKSPACE_UNAUTHORIZED = agh_error(
    "identity_unauthorized",
    "agent session does not belong to the requested workspace: "
    "use the session workspace or start a session in the requested workspace",
    category="session",
    evidence={"workspace_id": "elsewhere"},
    action="use the session workspace or start a session in the requested workspace",
)


async def test_claim_of_a_workspace_names_only_the_callers(agh: Server) -> None:
    await create_task(agh.http, "global")
    scoped = (await create_task(agh.http, "scoped", scope="workspace"))["task"]["id"]
    await refused(agh, lambda: claim(agh.http, W, workspace_id="elsewhere"), 403, WORKSPACE_UNAUTHORIZED)
    assert (await claimed(agh.http, W, workspace_id="default"))["task"]["id"] == scoped


@pytest.mark.parametrize(
    ("body", "field", "description"),
    [
        ({"lease_seconds": -1}, "lease_seconds", "must not be negative"),
        ({"lease_seconds": 86_401}, "lease_seconds", "exceeds 86400"),
        ({"priority_min": -1}, "priority_min", "must not be negative"),
        ({"wait": True, "wait_seconds": 301}, "wait_seconds", "must be between 0 and 300"),
    ],
)
async def test_claim_refuses_bad_input(
    agh: Server, body: dict[str, Any], field: str, description: str
) -> None:
    await create_task(agh.http)
    error = validation(f"task: validation failed: {field} {description}", field, description)
    await refused(agh, lambda: claim(agh.http, W, **body), 422, error)


async def test_lease_seconds_sets_the_lease(agh: Server) -> None:
    await create_task(agh.http)
    c = await claimed(agh.http, W, lease_seconds=86_400)
    from datetime import datetime

    claimed_at = datetime.fromisoformat(c["run"]["claimed_at"].replace("Z", "+00:00"))
    until = datetime.fromisoformat(c["lease"]["lease_until"].replace("Z", "+00:00"))
    assert (until - claimed_at).total_seconds() == 86_400


async def test_long_poll_wakes_when_work_is_queued(agh: Server) -> None:
    waiting = asyncio.create_task(claim(agh.http, W, wait=True, wait_seconds=30))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    task_id = (await create_task(agh.http))["task"]["id"]
    resp = await waiting
    assert ok(resp)["claim"]["task"]["id"] == task_id


async def test_long_poll_wakes_on_resume_and_release(agh: Server) -> None:
    task_id = (await create_task(agh.http))["task"]["id"]
    await agh.http.post(f"/api/tasks/{task_id}/pause", json={})
    waiting = asyncio.create_task(claim(agh.http, W, wait=True))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await agh.http.post(f"/api/tasks/{task_id}/resume", json={})
    first = ok(await waiting)["claim"]
    waiting = asyncio.create_task(claim(agh.http, "other", wait=True))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    assert (await lease_op(agh.http, W, first["run"]["id"], "release")).status_code == 200
    assert ok(await waiting)["claim"]["run"]["id"] == first["run"]["id"]


async def test_long_poll_ends_empty_when_its_wait_ends(agh: Server) -> None:
    resp = await claim(agh.http, W, wait=True, wait_seconds=1)
    assert resp.status_code == 204


# --------------------------------------------------------- lease operations


async def held_run(agh: Server, session: str = W, **claim_body: Any) -> tuple[str, str, str]:
    """(task id, run id, token hash) of a run `session` holds."""
    task_id = (await create_task(agh.http))["task"]["id"]
    c = await claimed(agh.http, session, **claim_body)
    assert c["task"]["id"] == task_id
    return task_id, c["run"]["id"], c["run"]["claim_token_hash"]


async def test_heartbeat_extends_the_lease(agh: Server, clock: Clock) -> None:
    task_id, run_id, token = await held_run(agh, lease_seconds=60)
    clock.advance(50)
    body = ok(await lease_op(agh.http, W, run_id, "heartbeat", {"lease_seconds": 120}))
    assert body == {"lease": lease_body(task_id, run_id, "claimed", Holder(W, token))}
    clock.advance(100)  # past the first lease's end, within the new one
    assert (await lease_op(agh.http, W, run_id, "heartbeat")).status_code == 200


async def test_complete_stores_the_result(agh: Server) -> None:
    task_id, run_id, token = await held_run(agh)
    result = {"files": ["a.py"], "ok": True, "count": 3, "note": None}
    body = ok(await lease_op(agh.http, W, run_id, "complete", {"result": result}))
    assert body == {"lease": lease_body(task_id, run_id, "completed", Holder(W, token, leased=False))}
    got = ok(await agh.http.get(f"/api/tasks/{task_id}"))
    assert got == {
        "task": task_record(task_id, status="completed"),
        "runs": [
            run_body(
                task_id,
                run_id=run_id,
                status="completed",
                holder=Holder(W, token, leased=False),
                ended=True,
                result=result,
            )
        ],
    }


async def test_complete_takes_any_json_result_up_to_64_kib(agh: Server) -> None:
    _, run_id, _ = await held_run(agh)
    result = "x" * (64 * 1024 - 2)  # 65,536 bytes as JSON
    assert (await lease_op(agh.http, W, run_id, "complete", {"result": result})).status_code == 200


async def test_fail_queues_a_retry_until_attempts_run_out(agh: Server) -> None:
    task_id = (await create_task(agh.http, max_attempts=2))["task"]["id"]
    first = await claimed(agh.http, W)
    body = ok(
        await lease_op(
            agh.http, W, first["run"]["id"], "fail", {"error": " tests fail ", "metadata": {"n": 1}}
        )
    )
    token = first["run"]["claim_token_hash"]
    assert body == {
        "lease": lease_body(task_id, first["run"]["id"], "failed", Holder(W, token, leased=False))
    }
    second = await claimed(agh.http, W)
    assert second["run"] == run_body(
        task_id,
        run_id=ANY_UUID,
        status="claimed",
        attempt=2,
        previous_run_id=first["run"]["id"],
        holder=Holder(W),
        origin=("daemon", "retry"),
    )
    assert second["task"]["status"] == "ready"
    assert (await lease_op(agh.http, W, second["run"]["id"], "fail", {"error": "again"})).status_code == 200
    got = ok(await agh.http.get(f"/api/tasks/{task_id}"))
    assert got["task"] == task_record(task_id, status="failed", max_attempts=2)
    assert [r["status"] for r in got["runs"]] == ["failed", "failed"]
    assert got["runs"][0] == run_body(
        task_id,
        run_id=first["run"]["id"],
        status="failed",
        holder=Holder(W, token, leased=False),
        ended=True,
        error="tests fail",
        failure_kind="error",
        metadata={"n": 1},
    )
    assert (await claim(agh.http, W)).status_code == 204


async def test_release_puts_the_same_run_back(agh: Server) -> None:
    task_id, run_id, _ = await held_run(agh)
    body = ok(await lease_op(agh.http, W, run_id, "release", {"reason": "switching"}))
    assert body == {"lease": lease_body(task_id, run_id, "queued", None)}
    again = await claimed(agh.http, "other")
    assert again["run"] == run_body(task_id, run_id=run_id, status="claimed", holder=Holder("other"))


@pytest.mark.parametrize(
    ("op", "body", "status", "error"),
    [
        (
            "fail",
            {"error": "  "},
            422,
            validation("task: validation failed: error is required", "error", "is required"),
        ),
        (
            "fail",
            {},
            422,
            agh_error(
                "missing_field",
                "missing required field: error",
                category="daemon",
                evidence={"field_violations": [{"field": "error", "description": "is required"}]},
            ),
        ),
        (
            "heartbeat",
            {"lease_seconds": 86_401},
            422,
            validation(
                "task: validation failed: lease_seconds exceeds 86400", "lease_seconds", "exceeds 86400"
            ),
        ),
        (
            "heartbeat",
            {"lease_seconds": -5},
            422,
            validation(
                "task: validation failed: lease_seconds must not be negative",
                "lease_seconds",
                "must not be negative",
            ),
        ),
        (
            "complete",
            {"result": {"claim_token": "x"}},
            422,
            validation(
                "task: validation failed: result.claim_token must not contain a claim_token field",
                "result.claim_token",
                "must not contain a claim_token field",
            ),
        ),
        (
            "complete",
            {"result": "x" * (64 * 1024)},
            413,
            agh_error(
                "payload_too_large",
                "task: payload too large: result is 65538 bytes, more than 65536",
                category="task",
                evidence={"field": "result", "limit_bytes": "65536"},
            ),
        ),
        (
            "fail",
            {"error": "e", "metadata": ["x" * (64 * 1024)]},
            413,
            agh_error(
                "payload_too_large",
                "task: payload too large: metadata is 65540 bytes, more than 65536",
                category="task",
                evidence={"field": "metadata", "limit_bytes": "65536"},
            ),
        ),
    ],
)
async def test_lease_operations_refuse_bad_input(
    agh: Server, op: str, body: dict[str, Any], status: int, error: dict[str, Any]
) -> None:
    _, run_id, _ = await held_run(agh)
    await refused(agh, lambda: lease_op(agh.http, W, run_id, op, body), status, error)


OPS = ["heartbeat", "complete", "fail", "release"]
OP_BODY = {"fail": {"error": "e"}}


def no_lease(run_id: str, op: str) -> dict[str, Any]:
    code = "task_run_not_releasable" if op == "release" else "task_run_stale_lease"
    return agh_error(
        code,
        "task: autonomy lease rejected: AUTONOMY_NO_ACTIVE_LEASE: invalid claim token",
        category="task",
        evidence={"run_id": run_id},
    )


def expired(run_id: str, op: str, detail: str = "lease expired") -> dict[str, Any]:
    code = "task_run_not_releasable" if op == "release" else "task_run_stale_lease"
    return agh_error(
        code,
        f"task: autonomy lease rejected: AUTONOMY_LEASE_EXPIRED: {detail}",
        category="task",
        evidence={"run_id": run_id},
    )


@pytest.mark.parametrize("op", OPS)
async def test_unknown_run_is_refused(agh: Server, op: str) -> None:
    await refused(
        agh,
        lambda: lease_op(agh.http, W, "no-such-run", op, OP_BODY.get(op)),
        409,
        no_lease("no-such-run", op),
    )


@pytest.mark.parametrize("op", OPS)
async def test_someone_elses_run_is_refused(agh: Server, op: str) -> None:
    _, run_id, _ = await held_run(agh, "other")
    await refused(agh, lambda: lease_op(agh.http, W, run_id, op, OP_BODY.get(op)), 409, no_lease(run_id, op))
    # While the caller holds a run of its own, naming another is 403.
    await held_run(agh, W)
    foreign = agh_error(
        "task_run_not_owned",
        f'task: autonomy lease rejected: AUTONOMY_FOREIGN_RUN: run "{run_id}" is not owned by session "{W}"',
        category="task",
        evidence={"run_id": run_id, "session_id": W},
    )
    await refused(agh, lambda: lease_op(agh.http, W, run_id, op, OP_BODY.get(op)), 403, foreign)


@pytest.mark.parametrize("op", OPS)
async def test_expired_lease_is_refused_at_once(agh: Server, clock: Clock, op: str) -> None:
    _, run_id, _ = await held_run(agh, lease_seconds=30)
    clock.advance(31)  # no sweep has run: the run is still `claimed` in the table
    await refused(agh, lambda: lease_op(agh.http, W, run_id, op, OP_BODY.get(op)), 409, expired(run_id, op))


@pytest.mark.parametrize("op", OPS)
async def test_stale_fencing_token_is_refused(agh: Server, op: str) -> None:
    _, run_id, token = await held_run(agh)
    stale = "sha256:" + "0" * 64
    body = {**OP_BODY.get(op, {}), "claim_token_hash": stale}
    await refused(
        agh, lambda: lease_op(agh.http, W, run_id, op, body), 409, expired(run_id, op, "invalid claim token")
    )
    body["claim_token_hash"] = token
    assert (await lease_op(agh.http, W, run_id, op, body)).status_code == 200


@pytest.mark.parametrize("name", sorted(IDENTITY_ERRORS))
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/agent/tasks/claim-next", {}),
        ("POST", "/api/agent/tasks/RUN/heartbeat", {}),
        ("POST", "/api/agent/tasks/RUN/complete", {}),
        ("POST", "/api/agent/tasks/RUN/fail", {"error": "e"}),
        ("POST", "/api/agent/tasks/RUN/release", {}),
        ("GET", "/api/agent/me", None),
        ("GET", "/api/agent/context", None),
        ("GET", "/api/agent/coordinator/config", None),
        ("GET", "/api/agent/soul", None),
        ("POST", "/api/agent/soul/validate", {}),
        ("POST", "/api/agent/spawn", {"agent_name": "helper", "ttl_seconds": 60}),
    ],
)
async def test_identity_is_required_everywhere(
    agh: Server, name: str, method: str, path: str, body: Any
) -> None:
    _, run_id, _ = await held_run(agh)
    headers, error = IDENTITY_ERRORS[name]
    url = path.replace("RUN", run_id)
    await refused(agh, lambda: agh.http.request(method, url, json=body, headers=headers), 401, error)


@pytest.mark.parametrize("name", ["no session", "unknown session"])
@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/api/agent/spawn", b"{"),  # malformed JSON
        ("/api/agent/spawn", b'{"agent_name": "helper", "ttl_seconds": "soon"}'),  # a wrong type
        ("/api/agent/spawn", b"{}"),  # a required field missing
        ("/api/agent/spawn", b'{"agent_name": "helper", "ttl_seconds": 0}'),  # an invalid value
        ("/api/agent/tasks/RUN/fail", b"{}"),
        ("/api/agent/channels/reply", b'{"reply_to_message_id": 5}'),
        ("/api/agent/soul/validate", b"[1]"),
    ],
)
async def test_identity_comes_before_the_body(agh: Server, name: str, path: str, raw: bytes) -> None:
    """The caller is resolved before the body is read: 401, never a complaint about the body."""
    _, run_id, _ = await held_run(agh)
    headers, error = IDENTITY_ERRORS[name]
    url = path.replace("RUN", run_id)
    post = partial(agh.http.post, url, content=raw, headers={**headers, "content-type": "application/json"})
    await refused(agh, post, 401, error)


async def test_workspace_header_must_name_the_sessions_workspace(agh: Server) -> None:
    elsewhere = {**identity(W), "X-AGH-Workspace-ID": "elsewhere"}
    for method, path, body in [
        ("GET", "/api/agent/me", None),
        ("GET", "/api/agent/context", None),
        ("GET", "/api/agent/channels", None),
        ("POST", "/api/agent/spawn", SPAWN),
        ("POST", "/api/agent/tasks/claim-next", {}),
    ]:
        request = partial(agh.http.request, method, path, json=body, headers=elsewhere)
        await refused(agh, request, 403, WORKSPACE_UNAUTHORIZED)
    # the session's own workspace (trimmed) is fine
    same = {**identity(W), "X-AGH-Workspace-ID": " default "}
    assert ok(await agh.http.get("/api/agent/me", headers=same))["me"]["session"]["id"] == W


async def test_paused_holder_is_refused_after_another_worker_took_over(agh: Server, clock: Clock) -> None:
    _, run_id, token = await held_run(agh, lease_seconds=30)
    clock.advance(31)
    requeued, _ = await agh.core.lease_sweeper.run_once()
    assert requeued == 1
    taken = await claimed(agh.http, "other")
    assert taken["run"]["id"] == run_id and taken["run"]["attempt"] == 1
    assert taken["run"]["claim_token_hash"] != token
    await refused(
        agh,
        lambda: lease_op(agh.http, W, run_id, "complete", {"result": "late"}),
        409,
        no_lease(run_id, "complete"),
    )
    assert (
        ok(await lease_op(agh.http, "other", run_id, "complete", {"result": "done"}))["lease"]["status"]
        == "completed"
    )
    assert (await log_types(agh))[-3:] == ["task_run.lease_expired", "task_run.claimed", "task_run.completed"]


async def test_same_session_reclaiming_after_expiry_fences_its_old_claim(agh: Server, clock: Clock) -> None:
    _, run_id, token = await held_run(agh, lease_seconds=30)
    clock.advance(31)
    await agh.core.lease_sweeper.run_once()
    again = await claimed(agh.http, W)
    assert again["run"]["id"] == run_id
    stale = {"result": "old", "claim_token_hash": token}
    await refused(
        agh,
        lambda: lease_op(agh.http, W, run_id, "complete", stale),
        409,
        expired(run_id, "complete", "invalid claim token"),
    )


# ---------------------------------------------------- me, context, config


async def test_me(agh: Server) -> None:
    body = ok(await agh.http.get("/api/agent/me", headers=identity(W)))
    assert body == {
        "me": {
            "self": {"session_id": W, "agent_name": AGENT, "provider": ""},
            "workspace": {"id": "default", "name": "default"},
            "session": {
                "id": W,
                "name": f"session {W}",
                "type": "user",
                "state": "active",
                "created_at": ANY_TIME,
                "updated_at": ANY_TIME,
            },
            "capabilities": [],
            "channels": [],
            "active_task_leases": [],
            "coordinator": COORDINATOR,
            "limits": LIMITS,
        }
    }
    task_id, run_id, token = await held_run(agh)
    body = ok(await agh.http.get("/api/agent/me", headers=identity(W)))
    assert body["me"]["active_task_leases"] == [lease_body(task_id, run_id, "claimed", Holder(W, token))]


COORDINATOR = {
    "enabled": False,
    "agent_name": "coordinator",
    "default_ttl_seconds": 7200,
    "max_children": 5,
    "max_active_sessions_per_workspace": 5,
    "source": "workspace",
    "workspace_id": "default",
}
LIMITS = {"max_children": 5, "max_spawn_depth": 1, "max_active_task_leases": 1, "context_section_limit": 8}
EMPTY_SECTION = {"limit": 8, "returned": 0, "truncated": False}


async def test_coordinator_config(agh: Server) -> None:
    resp = await agh.http.get(
        "/api/agent/coordinator/config", params={"workspace": "ignored"}, headers=identity(W)
    )
    assert ok(resp) == {"coordinator": COORDINATOR}


async def test_context_without_a_task(agh: Server) -> None:
    body = ok(await agh.http.get("/api/agent/context", headers=identity(W)))
    assert body == {
        "context": {
            "self": {"session_id": W, "agent_name": AGENT, "provider": ""},
            "workspace": {"id": "default", "name": "default"},
            "session": {
                "id": W,
                "name": f"session {W}",
                "type": "user",
                "state": "active",
                "created_at": ANY_TIME,
                "updated_at": ANY_TIME,
            },
            "soul": {
                "enabled": True,
                "present": False,
                "active": False,
                "valid": True,
                "validation_status": "missing",
                "config_digest": ANY_HASH,
                "tone": [],
                "principles": [],
                "max_bytes": 2048,
                "max_body_bytes": 32768,
            },
            "task": {"available": False},
            "coordination_channel": {"available": False},
            "inbox_summary": {"section": EMPTY_SECTION, "unread_count": 0, "items": []},
            "peer_roster": {"section": EMPTY_SECTION, "peers": []},
            "capabilities": {"section": EMPTY_SECTION, "capabilities": []},
            "limits": LIMITS,
            "provenance": {"generated_at": ANY_TIME, "source": "daemon.situation"},
        }
    }


async def test_context_with_the_current_task(agh: Server) -> None:
    task_id = (await create_task(agh.http, max_attempts=3))["task"]["id"]
    first = await claimed(agh.http, W)
    await lease_op(agh.http, W, first["run"]["id"], "fail", {"error": "flaky"})
    second = await claimed(agh.http, W)
    body = ok(await agh.http.get("/api/agent/context", headers=identity(W)))["context"]
    section = body["task"]
    holder = Holder(W, second["run"]["claim_token_hash"])
    summary_holder = holder.fields()
    assert section["available"] is True
    assert section["task"] == task_ref(task_id)
    assert section["lease"] == lease_body(task_id, second["run"]["id"], "claimed", holder)
    bundle = section["bundle"]
    assert bundle["current_run"] == {
        "id": second["run"]["id"],
        "task_id": task_id,
        "status": "claimed",
        "attempt": 2,
        "max_attempts": 3,
        "previous_run_id": first["run"]["id"],
        **summary_holder,
        "coordination_channel_id": f"run-{second['run']['id']}",
        "queued_at": ANY_TIME,
        "claimed_at": ANY_TIME,
    }
    assert [r["id"] for r in bundle["prior_attempts"]] == [first["run"]["id"]]
    assert bundle["prior_attempts"][0]["status"] == "failed"
    assert bundle["prior_attempts"][0]["error"] == "flaky"
    assert [e["event_type"] for e in bundle["recent_events"]] == [
        "task_run.claimed",
        "task_run.queued",
        "task_run.failed",
        "task_run.claimed",
        "task_run.queued",
        "task.created",
    ]
    newest = bundle["recent_events"][0]
    assert newest == {
        "event_id": newest["event_id"],
        "event_type": "task_run.claimed",
        "sequence": bundle["latest_event_seq"],
        "timestamp": ANY_TIME,
        "actor": {"kind": "agent_session", "ref": W},
        "origin": {"kind": "daemon", "ref": "agentplane"},
        "run": bundle["current_run"],
        "task": {**task_ref(task_id), "latest_event_seq": bundle["latest_event_seq"]},
    }
    assert bundle["limits"] == {
        "context_body_max_bytes": 32768,
        "max_runtime_seconds": 0,
        "summary_max_bytes": 4096,
    }
    assert bundle["handoff_summary"] == ""


# ------------------------------------------------------------------ spawn


SPAWN = {"agent_name": "helper", "ttl_seconds": 600}
EMPTY_POLICY = {
    c: []
    for c in ("tools", "skills", "mcp_servers", "workspace_paths", "network_channels", "sandbox_profiles")
}


def lineage(
    parent: str,
    *,
    permissions: dict[str, list[str]] | None = None,
    max_children: int = 5,
    max_depth: int = 1,
    ttl: int = 600,
) -> dict[str, Any]:
    return {
        "parent_session_id": parent,
        "root_session_id": parent,
        "spawn_depth": 1,
        "spawn_role": "worker",
        "ttl_expires_at": ANY_TIME,
        "auto_stop_on_parent": True,
        "spawn_budget": {"max_children": max_children, "max_depth": max_depth, "ttl_seconds": ttl},
        "permission_policy": permissions or EMPTY_POLICY,
    }


async def spawn(agh: Server, parent: str = W, **body: Any) -> httpx.Response:
    return await agh.http.post("/api/agent/spawn", json={**SPAWN, **body}, headers=identity(parent))


async def test_spawn_creates_a_child_session(agh: Server) -> None:
    body = created(await spawn(agh, name="Helper one"))
    child = body["spawn"]["session"]["id"]
    assert body == {
        "spawn": {
            "session": {
                "id": ANY_UUID,
                "name": "Helper one",
                "type": "spawned",
                "state": "active",
                "lineage": lineage(W),
                "created_at": ANY_TIME,
                "updated_at": ANY_TIME,
                "agent_name": "helper",
                "provider": "",
                "workspace_id": "default",
                "badge": "worker",
                "attachable": False,
            },
            "lineage": lineage(W),
            "permissions": EMPTY_POLICY,
        }
    }
    # Every family sees the child; it can act as an identity itself.
    assert ok(await agh.http.get(f"/sessions/{child}"))["session"]["status"] == "running"
    me = ok(await agh.http.get("/api/agent/me", headers=identity(child, "helper")))["me"]
    assert me["session"]["lineage"] == lineage(W)
    assert me["session"]["type"] == "spawned"


async def test_spawn_limits(agh: Server) -> None:
    child = created(await spawn(agh))["spawn"]["session"]["id"]
    depth = agh_error(
        "spawn_depth_exceeded",
        "child depth 2 exceeds max_depth 1",
        category="session",
        evidence={"max_depth": "1", "spawn_depth": "2"},
    )
    await refused(
        agh,
        lambda: agh.http.post("/api/agent/spawn", json=SPAWN, headers=identity(child, "helper")),
        409,
        depth,
    )
    policy = {"permissions": {"tools": ["bash", "edit"]}, "max_children": 2}
    assert ok(await agh.http.put("/api/agent-sessions/other/spawn-policy", json=policy))["lineage"][
        "spawn_budget"
    ] == {
        "max_children": 2,
        "max_depth": 1,
        "ttl_seconds": 0,
    }
    assert (await spawn(agh, "other", permissions={"tools": ["bash"]})).status_code == 201
    assert (await spawn(agh, "other")).status_code == 201
    children = agh_error(
        "spawn_children_exceeded",
        "session has 2 live children, max_children is 2",
        category="session",
        evidence={"live_children": "2", "max_children": "2"},
    )
    await refused(agh, lambda: spawn(agh, "other"), 409, children)


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (
            {"permissions": {"tools": ["bash"]}},
            403,
            agh_error(
                "spawn_permission_denied",
                'child tools permission atom "bash" widens parent permissions',
                category="session",
                evidence={"atom": "bash", "category": "tools"},
            ),
        ),
        (
            {"ttl_seconds": 0},
            422,
            agh_error(
                "spawn_validation_failed",
                "spawn: validation failed: ttl_seconds must be greater than 0",
                category="session",
                evidence={
                    "field_violations": [{"field": "ttl_seconds", "description": "must be greater than 0"}]
                },
            ),
        ),
        (
            {"spawn_role": "coordinator"},
            422,
            agh_error(
                "spawn_validation_failed",
                "spawn: validation failed: spawn_role coordinator is not supported in MVP",
                category="session",
                evidence={
                    "field_violations": [
                        {"field": "spawn_role", "description": "coordinator is not supported in MVP"}
                    ]
                },
            ),
        ),
        # a blank atom is granted by no parent: a permission denial, as upstream's atom check
        (
            {"permissions": {"skills": ["  "]}},
            403,
            agh_error(
                "spawn_permission_denied",
                'child skills permission atom "" widens parent permissions',
                category="session",
                evidence={"atom": "", "category": "skills"},
            ),
        ),
        (
            {"agent_name": ""},
            422,
            agh_error(
                "missing_field",
                "missing required field: agent_name",
                category="daemon",
                evidence={"field_violations": [{"field": "agent_name", "description": "is required"}]},
            ),
        ),
    ],
)
async def test_spawn_refuses(agh: Server, body: dict[str, Any], status: int, error: dict[str, Any]) -> None:
    await refused(agh, lambda: spawn(agh, **body), status, error)


async def test_spawn_permissions_must_be_a_subset(agh: Server) -> None:
    await agh.http.put(
        "/api/agent-sessions/worker/spawn-policy",
        json={"permissions": {"tools": ["bash"], "skills": ["git"]}},
    )
    body = created(await spawn(agh, permissions={"skills": ["git"]}))
    assert body["spawn"]["permissions"] == {**EMPTY_POLICY, "skills": ["git"]}
    error = agh_error(
        "spawn_permission_denied",
        'child skills permission atom "docker" widens parent permissions',
        category="session",
        evidence={"atom": "docker", "category": "skills"},
    )
    await refused(agh, lambda: spawn(agh, permissions={"skills": ["git", "docker"]}), 403, error)


async def test_children_stop_with_their_ttl_and_their_parent(agh: Server, clock: Clock) -> None:
    short = created(await spawn(agh, ttl_seconds=30))["spawn"]["session"]["id"]
    follower = created(await spawn(agh, "other"))["spawn"]["session"]["id"]
    detached = created(await spawn(agh, "other", auto_stop_on_parent=False))["spawn"]["session"]["id"]
    clock.advance(31)
    await stop_session(agh.http, "other")
    _, stopped = await agh.core.lease_sweeper.run_once()
    assert stopped == 2
    status = {
        s: ok(await agh.http.get(f"/sessions/{s}/status"))["status"] for s in (short, follower, detached)
    }
    assert status == {short: "finished", follower: "finished", detached: "running"}
    stale = IDENTITY_ERRORS["finished session"][1]
    assert_error(await agh.http.get("/api/agent/me", headers=identity(short, "helper")), 401, stale)


async def test_spawn_policy_refusals(agh: Server) -> None:
    missing = agh_error(
        "session_not_found", 'session "ghost" not found', category="session", evidence={"session_id": "ghost"}
    )
    await refused(agh, lambda: agh.http.put("/api/agent-sessions/ghost/spawn-policy", json={}), 404, missing)
    child = created(await spawn(agh))["spawn"]["session"]["id"]
    resp = await agh.http.put(f"/api/agent-sessions/{child}/spawn-policy", json={})
    assert resp.status_code == 409
    assert resp.json()["diagnostic"]["code"] == "session_is_spawned"


# ------------------------------------------------------------------- souls


SOUL = "---\nversion: 1\nrole: reviewer\ntone: calm\nprinciples:\n  - be kind\n  - be brief\n---\n\nReview carefully.\n"
# sha256("agh.soul.v1\n" + Go JSON of the frontmatter + "\n" + body), as upstream.
SOUL_DIGEST = (
    "sha256:"
    + __import__("hashlib")
    .sha256(
        b'agh.soul.v1\n{"Version":"1","Role":"reviewer","Tone":["calm"],"Principles":["be kind","be brief"],'
        b'"Constraints":null,"Collaboration":null,"MemoryPolicy":null,"Tags":null}\nReview carefully.'
    )
    .hexdigest()
)
SOUL_LIMITS = {"max_body_bytes": 32768, "context_projection_bytes": 2048}
PROVENANCE = {
    "digest": ANY_HASH,
    "source": "default",
    "enabled": True,
    "max_body_bytes": 32768,
    "context_projection_bytes": 2048,
}
FRONTMATTER = {
    "version": "1",
    "role": "reviewer",
    "tone": ["calm"],
    "principles": ["be kind", "be brief"],
    "constraints": [],
    "collaboration": [],
    "memory_policy": [],
    "tags": [],
}


def soul_body(**over: Any) -> dict[str, Any]:
    out = {
        "agent_name": AGENT,
        "enabled": True,
        "present": True,
        "active": True,
        "valid": True,
        "validation_status": "valid",
        "snapshot_id": ANY_UUID,
        "revision_id": ANY_UUID,
        "digest": SOUL_DIGEST,
        "frontmatter": FRONTMATTER,
        "body": "Review carefully.",
        "limits": SOUL_LIMITS,
        "config_provenance": PROVENANCE,
        "diagnostics": [],
        "created_at": ANY_TIME,
    }
    out.update(over)
    return {k: v for k, v in out.items() if v is not ABSENT}


async def test_soul_missing(agh: Server) -> None:
    body = ok(await agh.http.get("/api/agent/soul", headers=identity(W)))
    empty = {k: [] for k in ("tone", "principles", "constraints", "collaboration", "memory_policy", "tags")}
    assert body == soul_body(
        present=False,
        active=False,
        validation_status="missing",
        snapshot_id=ABSENT,
        revision_id=ABSENT,
        digest=ABSENT,
        body=ABSENT,
        created_at=ABSENT,
        frontmatter=empty,
    )


async def test_soul_set_get_and_context(agh: Server) -> None:
    stored = ok(await agh.http.put(f"/api/agents/{AGENT}/soul", json={"body": SOUL}))
    assert stored == soul_body()
    assert ok(await agh.http.get("/api/agent/soul", headers=identity(W))) == stored
    context = ok(await agh.http.get("/api/agent/context", headers=identity(W)))["context"]
    assert context["soul"] == {
        "enabled": True,
        "present": True,
        "active": True,
        "valid": True,
        "validation_status": "valid",
        "snapshot_id": stored["snapshot_id"],
        "digest": SOUL_DIGEST,
        "config_digest": ANY_HASH,
        "role": "reviewer",
        "tone": ["calm"],
        "principles": ["be kind", "be brief"],
        "max_bytes": 2048,
        "max_body_bytes": 32768,
    }
    # A blank body removes it.
    assert ok(await agh.http.put(f"/api/agents/{AGENT}/soul", json={"body": ""}))["present"] is False


INVALID_SOUL = "---\nrole: reviewer\nmodel: gpt\ncolour: blue\ntags: [1]\n---\n# Memory\ntext\n"


def invalid_soul_body() -> dict[str, Any]:
    return soul_body(
        active=False,
        valid=False,
        validation_status="invalid",
        snapshot_id=ABSENT,
        revision_id=ABSENT,
        created_at=ABSENT,
        digest=ANY_HASH,
        body="# Memory\ntext",
        frontmatter={
            "role": "reviewer",
            "tone": [],
            "principles": [],
            "constraints": [],
            "collaboration": [],
            "memory_policy": [],
            "tags": [],
        },
        diagnostics=[
            {
                "code": "unsupported_field",
                "severity": "error",
                "message": 'SOUL.md frontmatter field "colour" is not supported',
                "field": "colour",
            },
            {
                "code": "forbidden_field",
                "severity": "error",
                "message": 'SOUL.md frontmatter field "model" belongs to AGENT.md',
                "field": "model",
                "owner_surface": "AGENT.md",
            },
            {
                "code": "invalid_field_type",
                "severity": "error",
                "message": 'SOUL.md frontmatter field "tags" must be a string or a list of strings',
                "field": "tags",
            },
            {
                "code": "reserved_section",
                "severity": "error",
                "message": 'SOUL.md section "Memory" belongs to memory runtime',
                "section": "memory",
                "line": 7,
                "owner_surface": "memory runtime",
            },
        ],
    )


async def test_invalid_soul_is_422_with_the_soul_payload(agh: Server) -> None:
    expected = invalid_soul_body()
    await refused(
        agh, lambda: agh.http.put(f"/api/agents/{AGENT}/soul", json={"body": INVALID_SOUL}), 422, expected
    )
    resp = await agh.http.post("/api/agent/soul/validate", json={"body": INVALID_SOUL}, headers=identity(W))
    assert_error(resp, 422, expected)


async def test_validate_soul(agh: Server) -> None:
    resp = await agh.http.post("/api/agent/soul/validate", json={"body": SOUL}, headers=identity(W))
    assert ok(resp) == soul_body(snapshot_id=ABSENT, revision_id=ABSENT, created_at=ABSENT)
    # A blank body validates the current soul (none yet).
    current = ok(await agh.http.post("/api/agent/soul/validate", json={}, headers=identity(W)))
    assert current["validation_status"] == "missing"
    resp = await agh.http.post(
        "/api/agent/soul/validate", json={"workspace_id": "elsewhere"}, headers=identity(W)
    )
    assert_error(resp, 403, WORKSPACE_UNAUTHORIZED)


async def test_openapi_documents_the_agh_routes(agh: Server) -> None:
    doc = ok(await agh.http.get("/openapi.json"))
    claim_op = doc["paths"]["/api/agent/tasks/claim-next"]["post"]
    assert set(claim_op["responses"]) >= {"200", "204", "default"}
    assert set(doc["paths"]["/api/agent/spawn"]["post"]["responses"]) >= {"201", "default"}
    error = claim_op["responses"]["default"]["content"]["application/json"]["schema"]
    assert error["required"] == ["error"]
    assert json.dumps(doc)  # serialisable
