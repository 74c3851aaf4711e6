"""Retention, cursors past the horizon and quotas, over real sockets (HTTP,
gRPC, WebSockets) with a clock the test moves: nothing here sleeps for days.

Retention removes exactly the entries older than the policy and the rows
they produced, and keeps sessions, tasks, executions and their totals; every
kind of stream resuming from a cursor it removed is told so, naming the
oldest retained seq; a write that would cross a quota is refused whole, and
reads keep working."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
import httpx
import pytest
import websockets
from agentplane.v1 import (
    channels_pb2,
    channels_pb2_grpc,
    log_pb2,
    log_pb2_grpc,
    runtime_pb2,
    runtime_pb2_grpc,
)
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from sqlalchemy import func, select

from service.app.assembly import Core
from service.base.clock import ManualClock
from service.store.tables import log_entries
from service.store.transfer.database_facts import database_facts
from tests.agh_support import identity
from tests.channels_support import BOB, CHANNEL, sent, setup_channel
from tests.conftest import LiveServer
from tests.contract.tracer_contract import Tracer, event

START = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
DAY = 86400
BOB_MD = (("x-agh-session-id", BOB), ("x-agh-agent", "coder"))


@pytest.fixture
def clock(live_server: LiveServer) -> ManualClock:
    manual = ManualClock(START)
    core(live_server).store.use_clock(manual)
    return manual


@pytest.fixture
async def http(live_server: LiveServer, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as client:
        yield client


def core(live_server: LiveServer) -> Core:
    found: Core = live_server.app.state.core
    return found


def runtime_event(session_id: str, text: str) -> dict[str, Any]:
    return {
        "event_type": "message",
        "session_id": session_id,
        "session_name": "S",
        "timestamp": "2026-01-10T12:00:00Z",
        "role": "assistant",
        "content": [{"type": "text", "text": text}],
    }


def trenchcoat(n: int, size: int = 0) -> dict[str, Any]:
    return {
        "events": [
            {
                "event_type": "session_start",
                "session_id": "550e8400-e29b-41d4-a716-446655440000",
                "timestamp": "2026-01-10T12:00:00Z",
                "data": {"i": i, "pad": "x" * size},
            }
            for i in range(n)
        ]
    }


async def ok(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json()


async def retention(http: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = await ok(await http.get("/v1/retention"))
    return dict(body["retention"])


async def set_policy(http: httpx.AsyncClient, **policy: int) -> dict[str, Any]:
    body: dict[str, Any] = await ok(await http.put("/v1/retention", json=policy))
    return dict(body["retention"])


async def log(http: httpx.AsyncClient, after: int = 0) -> list[dict[str, Any]]:
    resp = await http.get("/v1/log:watch", params={"after_seq": after, "stop_at_end": "true"})
    assert resp.status_code == 200, resp.text
    lines = [json.loads(line) for line in resp.text.splitlines() if line]
    return [line["result"]["entry"] for line in lines if "entry" in line.get("result", {})]


async def stored_entries(live_server: LiveServer) -> list[int]:
    def read(conn: Any) -> list[int]:
        return list(conn.execute(select(log_entries.c.seq).order_by(log_entries.c.seq)).scalars())

    return await core(live_server).store.read(read)


async def fill_old_day(http: httpx.AsyncClient) -> dict[str, Any]:
    """Writes of every family; returns the ids to look for."""
    await ok(await http.post("/sessions", json={"session_id": "s1", "session_name": "S"}))
    for i in range(3):
        await ok(await http.post("/sessions/s1/events", json=runtime_event("s1", f"old {i}")))
    tracer = Tracer(http)
    bound = await tracer.ensure("rt-1", title="Old task")
    await tracer.accepted_ids(
        "events", event("tool.used", bound["taskId"], "exploration", bound["sessionId"])
    )
    execution = (await ok(await http.post("/api/v1/executions", json={"name": "E"})))["execution"]["id"]
    agent = (await ok(await http.post(f"/api/v1/executions/{execution}/agents", json={"prompt": "p"})))[
        "agent"
    ]["id"]
    tool = (
        await ok(
            await http.post(
                f"/api/v1/agents/{agent}/tool-calls", json={"tool_name": "Edit", "input": {"f": 1}}
            )
        )
    )["tool_call"]["id"]
    await ok(await http.post(f"/api/v1/tool-calls/{tool}/complete", json={"output": "done", "summary": "s"}))
    await ok(
        await http.post(
            f"/api/v1/agents/{agent}/complete", json={"result": "r", "tokens": {"input": 1000, "output": 500}}
        )
    )
    await setup_channel(http)
    old_message = await sent(http, {"text": "old"})
    return {"task": bound["taskId"], "execution": execution, "agent": agent, "tool": tool, "msg": old_message}


async def purge(live_server: LiveServer) -> dict[str, int]:
    return await core(live_server).retention.run_once()


async def test_retention_removes_exactly_what_is_old_and_keeps_sessions_tasks_and_totals(
    live_server: LiveServer, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    ids = await fill_old_day(http)
    old = await log(http)
    before = await retention(http)
    assert before["usage"]["horizon_seq"] == 0 and int(before["usage"]["stored_bytes"]) > 0

    clock.advance(days=2)
    await ok(await http.post("/sessions/s1/events", json=runtime_event("s1", "new")))
    new_message = await sent(http, {"text": "new"})
    policy = await set_policy(http, retention_seconds=DAY)
    assert policy["effective"]["retention_seconds"] == DAY
    new = await log(http, old[-1]["seq"])

    removed = await purge(live_server)

    assert removed == {"default": len(old)}
    usage = (await retention(http))["usage"]
    assert usage["horizon_seq"] == old[-1]["seq"]
    # `agentplane db status` reports the same horizon.
    (facts,) = (await core(live_server).store.read(database_facts)).workspaces
    assert (facts.workspace, facts.horizon_seq) == ("default", old[-1]["seq"])
    assert usage["oldest_seq"] == old[-1]["seq"] + 1
    assert usage["purged_at"] == "2026-01-12T12:00:00Z"
    assert 0 < int(usage["stored_bytes"]) < int(before["usage"]["stored_bytes"])
    assert await stored_entries(live_server) == [e["seq"] for e in new]
    assert await log(http, old[-1]["seq"]) == new
    # The rows the old entries produced are gone...
    events = (await ok(await http.get("/sessions/s1/events")))["events"]
    assert [e["content"][0]["text"] for e in events] == ["new"]
    assert (await http.get(f"/api/v1/tool-calls/{ids['tool']}")).status_code == 404
    assert await Tracer(http).timeline(ids["task"]) == []
    messages = await ok(await http.get(f"/v1/channels/{CHANNEL}/messages", params={"after_seq": 0}))
    assert [m["message_id"] for m in messages["messages"]] == [new_message["message_id"]]
    # ...and what users still need stays: sessions, tasks, executions and their totals.
    assert (await ok(await http.get("/sessions/s1")))["session"]["session_id"] == "s1"
    task = await Tracer(http).task(ids["task"])
    assert task["task"]["title"] == "Old task"
    execution = (await ok(await http.get(f"/api/v1/executions/{ids['execution']}")))["execution"]
    assert execution["total_tokens_used"] == 1500
    agent = (await ok(await http.get(f"/api/v1/agents/{ids['agent']}")))["agent"]
    assert (agent["tokens_input"], agent["tokens_output"], agent["status"]) == (1000, 500, "completed")
    assert await purge(live_server) == {}  # nothing else is old

    # By size: the oldest go first while the workspace holds more than allowed.
    await set_policy(http, retention_bytes=1)
    await purge(live_server)
    assert await stored_entries(live_server) == []
    assert (await retention(http))["usage"]["stored_bytes"] == 0


async def test_a_cursor_before_the_horizon_is_refused_on_every_stream(
    live_server: LiveServer, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    await setup_channel(http)
    await sent(http, {"text": "old"})
    clock.advance(days=2)
    kept = await sent(http, {"text": "kept"})
    await set_policy(http, retention_seconds=DAY)
    await purge(live_server)
    horizon = int((await retention(http))["usage"]["horizon_seq"])
    assert 0 < horizon < kept["seq"]

    def refused(status: status_pb2.Status) -> None:
        (info,) = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
        unpacked = error_details_pb2.ErrorInfo()
        info.Unpack(unpacked)
        assert unpacked.reason == "CURSOR_BEFORE_HORIZON"
        assert dict(unpacked.metadata) == {"oldest_seq": str(horizon + 1), "resume_after_seq": str(horizon)}

    # gRPC WatchLog, following and catching up.
    async with grpc.aio.insecure_channel(live_server.grpc_target) as channel:
        logs = log_pb2_grpc.LogServiceStub(channel)
        for stop_at_end in (True, False):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async for _ in logs.WatchLog(
                    log_pb2.WatchLogRequest(after_seq=horizon - 1, stop_at_end=stop_at_end)
                ):
                    pass
            assert caught.value.code() == grpc.StatusCode.OUT_OF_RANGE
            refused(rpc_status.from_call(caught.value))  # type: ignore[arg-type]
        resumed = [
            r async for r in logs.WatchLog(log_pb2.WatchLogRequest(after_seq=horizon, stop_at_end=True))
        ]
        assert resumed[0].entry.seq > horizon
        # The channel stream over gRPC.
        streams = channels_pb2_grpc.AghChannelServiceStub(channel)
        call = streams.StreamChannelMessages(
            channels_pb2.StreamChannelMessagesRequest(channel=CHANNEL, after_seq=0), metadata=BOB_MD
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.read()
        assert caught.value.code() == grpc.StatusCode.OUT_OF_RANGE
        refused(rpc_status.from_call(caught.value))  # type: ignore[arg-type]
        call = streams.StreamChannelMessages(
            channels_pb2.StreamChannelMessagesRequest(channel=CHANNEL, after_seq=horizon), metadata=BOB_MD
        )
        first = await asyncio.wait_for(call.read(), 5)
        assert first.message.message_id == kept["message_id"]
        call.cancel()

    # NDJSON over HTTP: the route's error body (google.rpc.Status), before any line.
    resp = await http.get("/v1/log:watch", params={"after_seq": 0})
    assert resp.status_code == 400
    body = resp.json()
    assert body["code"] == 11 and str(horizon + 1) in body["message"]
    (info,) = [d for d in body["details"] if d["@type"].endswith("ErrorInfo")]
    assert info["reason"] == "CURSOR_BEFORE_HORIZON" and info["metadata"]["oldest_seq"] == str(horizon + 1)
    # The channel stream over HTTP: AGH's error body.
    resp = await http.get(
        f"/api/agent/channels/{CHANNEL}/stream", params={"after_seq": 0}, headers=identity(BOB)
    )
    assert resp.status_code == 400
    diagnostic = resp.json()["diagnostic"]
    assert diagnostic["code"] == "cursor_before_horizon"
    assert diagnostic["evidence"] == {"oldest_seq": str(horizon + 1), "resume_after_seq": str(horizon)}

    # Both WebSockets: the opening message, then close 4416 naming where to resume.
    for path in ("/ws", "/api/v1/ws"):
        async with websockets.connect(f"{live_server.ws_url}{path}?cursor=0", open_timeout=5) as ws:
            opening = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert opening["type"] in ("init", "snapshot")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4416
        assert closed.value.rcvd.reason == f"CURSOR_BEFORE_HORIZON; reconnect with cursor={horizon}"


async def test_quotas_refuse_the_write_that_crosses_them_whole_and_reads_keep_working(
    live_server: LiveServer, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    await ok(await http.post("/sessions", json={"session_id": "s1", "session_name": "S"}))
    # Bad input is refused and writes nothing.
    head = len(await stored_entries(live_server))
    resp = await http.put("/v1/retention", json={"quota_events_per_day": -1})
    assert resp.status_code == 400
    (bad,) = [d for d in resp.json()["details"] if d["@type"].endswith("BadRequest")]
    assert [v["field"] for v in bad["field_violations"]] == ["policy.quota_events_per_day"]
    assert len(await stored_entries(live_server)) == head

    # How many log entries a batch of five events of a known session makes.
    await ok(await http.post("/api/v1/events", json=trenchcoat(1)))
    today = int((await set_policy(http, quota_events_per_day=1000))["usage"]["events_today"])
    await ok(await http.post("/api/v1/events", json=trenchcoat(5)))
    per_batch = int((await retention(http))["usage"]["events_today"]) - today
    today += per_batch
    # Room for exactly one more such batch (this change is counted, never refused).
    quota = today + 1 + per_batch
    assert int((await set_policy(http, quota_events_per_day=quota))["usage"]["events_today"]) == today + 1
    stored = await stored_entries(live_server)

    refused = await http.post("/api/v1/events", json=trenchcoat(6))
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "QUOTA_EXCEEDED"
    assert "resets at 2026-01-11T00:00:00Z" in error["message"]
    assert refused.headers["Retry-After"] == str(12 * 3600)
    assert await stored_entries(live_server) == stored  # the batch that would cross it: nothing of it

    assert (await ok(await http.post("/api/v1/events", json=trenchcoat(5))))["data"]["accepted"] == 5
    assert int((await retention(http))["usage"]["events_today"]) == quota
    resp = await http.post("/sessions/s1/events", json=runtime_event("s1", "one too many"))
    assert resp.status_code == 429 and "quota exceeded" in resp.json()["detail"]
    async with grpc.aio.insecure_channel(live_server.grpc_target) as channel:
        sessions = runtime_pb2_grpc.SessionServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await sessions.CreateSession(runtime_pb2.CreateSessionRequest(session_id="s2", session_name="S"))
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "quota exceeded" in (caught.value.details() or "")
    # Reads keep working.
    assert (await ok(await http.get("/sessions")))["sessions"]
    assert len(await log(http)) == len(stored) + per_batch

    clock.advance(hours=12)  # a new UTC day
    await ok(await http.post("/sessions/s1/events", json=runtime_event("s1", "next day")))

    # Stored bytes: a write that would take the workspace past its size is refused whole.
    await set_policy(http, quota_stored_bytes=10**9)
    held = int((await retention(http))["usage"]["stored_bytes"])
    await set_policy(http, quota_events_per_day=0, quota_stored_bytes=held + 2000)
    refused = await http.post("/api/v1/events", json=trenchcoat(2, size=1500))
    assert refused.status_code == 429 and "may store" in refused.json()["error"]["message"]
    assert (await ok(await http.post("/api/v1/events", json=trenchcoat(1, size=500))))["data"][
        "accepted"
    ] == 1


async def test_count_of_log_entries_matches_the_usage_counter(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    """The counter is kept in the writer's transaction: it equals what a COUNT(*) finds."""
    await ok(await http.post("/api/v1/events", json=trenchcoat(7)))
    await ok(await http.post("/sessions", json={"session_id": "s1", "session_name": "S"}))

    def count(conn: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(log_entries)).scalar_one())

    assert int((await retention(http))["usage"]["events_today"]) == await core(live_server).store.read(count)
