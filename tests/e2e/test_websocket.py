"""Seed 004's WebSocket feed (/ws) and the NDJSON log stream, over a real socket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.conftest import LiveServer
from tests.contract.runtime_contract import (
    DM_EVENTS,
    ISO_8601_WITH_TZ,
    broadcast,
    event,
)

WAIT = 3.0  # a message that should come comes well within this
QUIET = 0.25  # how long we listen to be sure nothing else comes

LOG_ENTRY_KEYS = {"seq", "id", "type", "workspace", "session_id", "recorded_at", "occurred_at", "data"}


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as client:
        yield client


def connect(live_server: LiveServer, cursor: int | None = None) -> Any:
    query = "" if cursor is None else f"?cursor={cursor}"
    return websockets.connect(f"{live_server.ws_url}/ws{query}", open_timeout=WAIT, close_timeout=1)


async def recv(ws: ClientConnection) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), WAIT)
    message = json.loads(raw)
    assert isinstance(message, dict)
    return message


async def recv_many(ws: ClientConnection, n: int) -> list[dict[str, Any]]:
    return [await recv(ws) for _ in range(n)]


async def assert_silent(ws: ClientConnection) -> None:
    with pytest.raises(TimeoutError):
        raw = await asyncio.wait_for(ws.recv(), QUIET)
        pytest.fail(f"unexpected message: {raw!r}")


async def drain(ws: ClientConnection) -> list[dict[str, Any]]:
    """Every message until the feed has been quiet for QUIET seconds."""
    out = []
    while True:
        try:
            raw = await asyncio.wait_for(ws.recv(), QUIET)
        except TimeoutError:
            return out
        out.append(json.loads(raw))


def without_seq(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages minus `seq`, after checking every one has an increasing integer seq."""
    seqs = [m.get("seq") for m in messages]
    assert all(isinstance(s, int) and not isinstance(s, bool) for s in seqs), messages
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    return [{k: v for k, v in m.items() if k != "seq"} for m in messages]


async def ok(resp: Any) -> Any:
    r = await resp
    assert r.status_code == 200, r.text
    return r.json()


async def create(http: httpx.AsyncClient, session_id: str, name: str = "S", **extra: Any) -> dict[str, Any]:
    body = await ok(http.post("/sessions", json={"session_id": session_id, "session_name": name, **extra}))
    return dict(body["session"])


# ------------------------------------------------------------------- init


async def test_init_on_an_empty_server(live_server: LiveServer) -> None:
    async with connect(live_server) as ws:
        assert await recv(ws) == {"type": "init", "sessions": []}
        await assert_silent(ws)


async def test_init_lists_every_session_like_get_sessions(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    await create(http, "a", "A", project_dir="/p")
    await ok(
        http.post("/events", json=event("session_start", "legacy", "2099-01-01T00:00:00Z", session_name="L"))
    )
    await create(http, "b", "B", agent_name="agent")
    listed = (await ok(http.get("/sessions")))["sessions"]
    assert [s["session_id"] for s in listed] == ["legacy", "b", "a"]
    async with connect(live_server) as ws:
        assert await recv(ws) == {"type": "init", "sessions": listed}


# -------------------------------------------------------------- broadcasts


async def test_each_change_is_broadcast_in_order(live_server: LiveServer, http: httpx.AsyncClient) -> None:
    async with connect(live_server) as ws:
        assert await recv(ws) == {"type": "init", "sessions": []}

        created = await create(http, "s", "Session", project_dir="/p")
        tool = event("pre_tool", "s", "2025-01-01T00:00:01Z", tool_name="Read", tool_input={"f": "x"})
        await ok(http.post("/sessions/s/events", json=tool))
        stop = event("session_stop", "s", "2025-01-01T00:00:02Z", exit_code=0, reason="completed")
        await ok(http.post("/sessions/s/events", json=stop))
        patched = (await ok(http.patch("/sessions/s/metadata", json={"agent_name": "new"})))["session"]
        await ok(http.patch("/sessions/s/metadata", json={}))
        deleted = await ok(http.delete("/sessions/s"))
        assert deleted["deleted"]["events_count"] == 2

        finished = {**created, "status": "finished"}
        assert without_seq(await recv_many(ws, 7)) == [
            {"type": "session_created", "session": created},
            {"type": "event", "data": broadcast(tool)},
            # session_stop: session_updated first, then the event
            {"type": "session_updated", "session": finished},
            {"type": "event", "data": broadcast(stop)},
            {"type": "session_updated", "session": patched},
            # an empty PATCH is still announced
            {"type": "session_updated", "session": patched},
            {"type": "session_deleted", "session_id": "s"},
        ]
        assert patched == {**finished, "agent_name": "new"}
        await assert_silent(ws)


async def test_rejected_requests_broadcast_nothing(live_server: LiveServer, http: httpx.AsyncClient) -> None:
    await create(http, "s")
    async with connect(live_server) as ws:
        await recv(ws)
        assert (
            await http.post("/sessions", json={"session_id": "s", "session_name": "again"})
        ).status_code == 409
        bad = event("pre_tool", "other", "2025-01-01T00:00:00Z")
        assert (await http.post("/sessions/s/events", json=bad)).status_code == 400
        assert (await http.post("/sessions/nope/events", json=bad)).status_code == 404
        assert (await http.post("/events", json={**bad, "content": [1]})).status_code == 400
        assert (await http.patch("/sessions/nope/metadata", json={})).status_code == 404
        assert (await http.delete("/sessions/nope")).status_code == 404
        assert (
            await http.post("/sessions", content=b"{", headers={"content-type": "application/json"})
        ).status_code == 400
        await assert_silent(ws)


async def test_legacy_route_broadcasts_only_events(live_server: LiveServer, http: httpx.AsyncClient) -> None:
    async with connect(live_server) as ws:
        await recv(ws)
        sent = [
            event("session_start", "leg", "2025-01-01T00:00:00Z", session_name="Legacy"),
            event("pre_tool", "leg", "2025-01-01T00:00:01Z", tool_name="Bash"),
            event("session_stop", "leg", "2025-01-01T00:00:02Z"),
            event("session_start", "leg", "2025-01-01T00:00:03Z"),
            event("message", "ghost", "2025-01-01T00:00:04Z", role="user"),
        ]
        for body in sent:
            await ok(http.post("/events", json=body))
        got = without_seq(await recv_many(ws, len(sent)))
        # the session was created, finished and resumed, yet only events are sent
        assert got == [{"type": "event", "data": broadcast(b)} for b in sent]
        await assert_silent(ws)
    assert (await ok(http.get("/sessions/leg")))["session"]["status"] == "running"


async def test_event_broadcast_is_the_request_model(live_server: LiveServer, http: httpx.AsyncClient) -> None:
    await create(http, "abc-123-def", "my-agent")
    raw_falsy = event(
        "post_tool", "abc-123-def", "2025-11-16T10:40:00Z", tool_input={}, tool_output=0, content=[], error=""
    )
    sent = [*DM_EVENTS.values(), raw_falsy, {**raw_falsy, "tool_output": False, "extra": "dropped"}]
    async with connect(live_server) as ws:
        await recv(ws)
        for body in sent:
            await ok(http.post("/sessions/abc-123-def/events", json=body))
        got = [m for m in without_seq(await recv_many(ws, len(sent) + 1)) if m["type"] == "event"]
    # session_name included, every optional key present (null when missing), no id;
    # falsy values echoed raw (GET reads them back as null)
    expected = [broadcast(b) for b in sent]
    assert [m["data"] for m in got] == expected
    for m in got:
        assert "id" not in m["data"] and m["data"]["session_name"] == "my-agent"
        assert set(m) == {"type", "data"}


async def test_every_client_gets_every_message(live_server: LiveServer, http: httpx.AsyncClient) -> None:
    async with connect(live_server) as one, connect(live_server) as two:
        await recv(one)
        await recv(two)
        await create(http, "s")
        await ok(http.post("/events", json=event("pre_tool", "s", "2025-01-01T00:00:00Z")))
        first = await recv_many(one, 2)
        assert await recv_many(two, 2) == first
        assert [m["type"] for m in first] == ["session_created", "event"]


# ---------------------------------------------------------------- reconnect


async def test_reconnect_with_cursor_misses_nothing_and_repeats_nothing(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    async with connect(live_server) as ws:
        await recv(ws)
        a = await create(http, "a", "A")
        b = await create(http, "b", "B")
        seen = await recv_many(ws, 2)
        assert without_seq(seen) == [
            {"type": "session_created", "session": a},
            {"type": "session_created", "session": b},
        ]
    cursor = seen[-1]["seq"]

    # while the client is away
    c = await create(http, "c", "C")
    tool = event("pre_tool", "c", "2025-01-01T00:00:00Z", tool_name="Read")
    await ok(http.post("/sessions/c/events", json=tool))
    a2 = (await ok(http.patch("/sessions/a/metadata", json={"session_name": "A2"})))["session"]
    await ok(http.delete("/sessions/b"))
    legacy = event("pre_tool", "ghost", "2025-01-01T00:00:01Z")
    await ok(http.post("/events", json=legacy))

    async with connect(live_server, cursor) as ws:
        init = await recv(ws)
        assert init == {"type": "init", "sessions": (await ok(http.get("/sessions")))["sessions"]}
        missed = await recv_many(ws, 5)
        assert missed[0]["seq"] > cursor
        assert without_seq(missed) == [
            {"type": "session_created", "session": c},
            {"type": "event", "data": broadcast(tool)},
            {"type": "session_updated", "session": a2},
            {"type": "session_deleted", "session_id": "b"},
            {"type": "event", "data": broadcast(legacy)},
        ]
        # then it follows live, with nothing repeated
        d = await create(http, "d", "D")
        live = await recv(ws)
        assert live["seq"] > missed[-1]["seq"]
        assert without_seq([live]) == [{"type": "session_created", "session": d}]
        await assert_silent(ws)

    # reconnecting at the last seq seen gives nothing old
    async with connect(live_server, live["seq"]) as ws:
        await recv(ws)
        await assert_silent(ws)


async def test_replay_from_a_cursor_equals_what_live_clients_saw(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    async with connect(live_server) as ws:
        await recv(ws)
        await create(http, "keep")
        await create(http, "gone")
        await ok(http.post("/sessions/gone/events", json=event("pre_tool", "gone", "2025-01-01T00:00:00Z")))
        await ok(http.patch("/sessions/gone/metadata", json={"agent_name": "x"}))
        await ok(http.post("/sessions/keep/events", json=event("pre_tool", "keep", "2025-01-01T00:00:01Z")))
        await ok(http.delete("/sessions/gone"))
        live = await recv_many(ws, 6)
    assert [m["type"] for m in live] == [
        "session_created",
        "session_created",
        "event",
        "session_updated",
        "event",
        "session_deleted",
    ]
    # A client that saw only the first message and reconnects gets the rest
    # exactly as broadcast, except what DELETE erased: deletion is permanent
    # (seed 004), so the deleted session's entries are gone from the log and
    # only its `session_deleted` marker remains.
    async with connect(live_server, live[0]["seq"]) as ws:
        await recv(ws)
        replay = await drain(ws)
    erased = [m for m in live[1:] if m["type"] != "session_deleted" and _session_of(m) == "gone"]
    assert replay == [m for m in live[1:] if m not in erased]
    assert [m["type"] for m in erased] == ["session_created", "event", "session_updated"]


def _session_of(message: dict[str, Any]) -> str:
    if message["type"] == "event":
        return str(message["data"]["session_id"])
    if message["type"] == "session_deleted":
        return str(message["session_id"])
    return str(message["session"]["session_id"])


# ---------------------------------------------------------- NDJSON log stream


async def ndjson(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    async with client.stream("GET", "/v1/log:watch", params=params) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/x-ndjson")
        lines = [line async for line in resp.aiter_lines() if line.strip()]
    return [json.loads(line) for line in lines]


WS_TYPE = {
    "session.created": "session_created",
    "session.updated": "session_updated",
    "session.deleted": "session_deleted",
    "runtime.event": "event",
}


def as_ws_message(entry: dict[str, Any]) -> dict[str, Any]:
    """The /ws message a log entry becomes."""
    kind = WS_TYPE[entry["type"]]
    if kind == "event":
        return {"type": kind, "data": entry["data"], "seq": entry["seq"]}
    if kind == "session_deleted":
        return {"type": kind, "session_id": entry["data"]["session_id"], "seq": entry["seq"]}
    return {"type": kind, "session": entry["data"]["session"], "seq": entry["seq"]}


async def test_ndjson_log_stream_over_the_wire(live_server: LiveServer, http: httpx.AsyncClient) -> None:
    async with connect(live_server) as ws:
        await recv(ws)
        created = await create(http, "s", "S")
        tool = event("post_tool", "s", "2025-01-01T00:00:00Z", tool_output={"k": [1, 2]})
        await ok(http.post("/sessions/s/events", json=tool))
        stop = event("session_stop", "s", "2025-01-01T00:00:01Z")
        await ok(http.post("/sessions/s/events", json=stop))
        patched = (await ok(http.patch("/sessions/s/metadata", json={"project_dir": "/d"})))["session"]
        ghost = event("pre_tool", "ghost", "2025-01-01T00:00:02Z")
        await ok(http.post("/events", json=ghost))
        ws_messages = await recv_many(ws, 6)

    lines = await ndjson(http, after_seq=0, stop_at_end="true")
    assert all(set(line) == {"result"} and set(line["result"]) == {"entry"} for line in lines)
    entries = [line["result"]["entry"] for line in lines]
    for e in entries:
        assert set(e) == LOG_ENTRY_KEYS
        assert isinstance(e["seq"], int) and isinstance(e["id"], str) and e["id"]
        assert e["workspace"] == "default"
        assert ISO_8601_WITH_TZ.match(e["recorded_at"]), e["recorded_at"]
    finished = {**created, "status": "finished"}
    assert [(e["type"], e["session_id"], e["occurred_at"], e["data"]) for e in entries] == [
        ("session.created", "s", "", {"session": created}),
        ("runtime.event", "s", "2025-01-01T00:00:00Z", broadcast(tool)),
        ("session.updated", "s", "", {"session": finished}),
        ("runtime.event", "s", "2025-01-01T00:00:01Z", broadcast(stop)),
        ("session.updated", "s", "", {"session": patched}),
        ("runtime.event", "ghost", "2025-01-01T00:00:02Z", broadcast(ghost)),
    ]
    seqs = [e["seq"] for e in entries]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # the WebSocket feed is a view of this log, message for message, seq for seq
    assert ws_messages == [as_ws_message(e) for e in entries]

    after = await ndjson(http, after_seq=seqs[3], stop_at_end="true")
    assert [line["result"]["entry"]["seq"] for line in after] == seqs[4:]
    typed = await ndjson(http, after_seq=0, stop_at_end="true", types="session.updated", session_id="s")
    assert [line["result"]["entry"]["seq"] for line in typed] == [seqs[2], seqs[4]]
    assert await ndjson(http, after_seq=seqs[-1], stop_at_end="true") == []


async def test_ndjson_log_stream_records_deletions(live_server: LiveServer, http: httpx.AsyncClient) -> None:
    await create(http, "s", "S")
    await ok(http.post("/sessions/s/events", json=event("pre_tool", "s", "2025-01-01T00:00:00Z")))
    await ok(http.delete("/sessions/s"))
    entries = [line["result"]["entry"] for line in await ndjson(http, after_seq=0, stop_at_end="true")]
    last = entries[-1]
    assert set(last) == LOG_ENTRY_KEYS
    assert (last["type"], last["session_id"], last["data"]) == ("session.deleted", "s", {"session_id": "s"})


async def test_ndjson_log_stream_follows_new_entries(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    before = await create(http, "before")
    start = [line["result"]["entry"]["seq"] for line in await ndjson(http, after_seq=0, stop_at_end="true")]
    async with http.stream("GET", "/v1/log:watch", params={"after_seq": start[-1]}) as resp:
        assert resp.status_code == 200
        lines = resp.aiter_lines()

        async def next_message() -> dict[str, Any]:
            while True:
                line = await asyncio.wait_for(anext(lines), WAIT)
                if line.strip():
                    return dict(json.loads(line)["result"])

        after = await create(http, "after")
        first = await next_message()
        while "heartbeat" in first:  # idle before the write: the position is unchanged
            assert first["heartbeat"]["cursor"] == start[-1]
            first = await next_message()
        assert set(first) == {"entry"}
        assert first["entry"]["type"] == "session.created"
        assert first["entry"]["data"] == {"session": after}
        assert first["entry"]["seq"] > start[-1]
        assert before["session_id"] not in json.dumps(first)
        # idle again: heartbeats carry the position reached
        beat = await next_message()
        assert set(beat) == {"heartbeat"}
        assert set(beat["heartbeat"]) == {"cursor", "time"}
        assert beat["heartbeat"]["cursor"] == first["entry"]["seq"]
        assert ISO_8601_WITH_TZ.match(beat["heartbeat"]["time"])
