"""Admission control over real sockets: past the bytes-in-flight bound or a
full writer queue, writes are refused at once with 503 + Retry-After in
each family's error body (gRPC UNAVAILABLE with a RetryInfo) and write
nothing, while the requests already admitted finish."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import httpx
import pytest
from agentplane.v1 import runtime_pb2, runtime_pb2_grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from service.base.config import Settings
from tests.conftest import LiveServer, Server

BUDGET = 4096

# One write route per family, and what its 503 body looks like.
FAMILY_WRITES: list[tuple[str, str, dict[str, Any], Callable[[Any], bool]]] = [
    (
        "agent-runtime",
        "/sessions",
        {"session_id": "refused", "session_name": "refused"},
        lambda b: "busy" in b["detail"],
    ),
    (
        "native",
        "/api/v1/executions",
        {"name": "refused"},
        lambda b: b["code"] == 14 and "busy" in b["message"],
    ),
    (
        "agent-tracer",
        "/ingest/v1/sessions/ensure",
        {"runtimeSource": "claude-plugin", "runtimeSessionId": "refused", "title": "refused"},
        lambda b: b["ok"] is False and b["error"]["code"] == "service_unavailable",
    ),
    (
        "trenchcoat",
        "/api/v1/events",
        {
            "events": [
                {
                    "event_type": "session_start",
                    "session_id": "550e8400-e29b-41d4-a716-446655440000",
                    "timestamp": "2024-01-15T10:30:00Z",
                }
            ]
        },
        lambda b: b["error"]["code"] == "SERVICE_UNAVAILABLE",
    ),
    ("agh", "/api/tasks", {"title": "refused"}, lambda b: b["diagnostic"]["code"] == "server_busy"),
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.max_inflight_bytes = BUDGET
    settings.max_write_queue = 4
    return settings


async def log_entries(http: httpx.AsyncClient) -> list[Any]:
    resp = await http.get("/v1/log:watch", params={"after_seq": 0, "stop_at_end": "true"})
    assert resp.status_code == 200, resp.text
    return [json.loads(line) for line in resp.text.splitlines()]


async def wait_until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in 5 s")


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as client:
        yield client


async def test_past_the_byte_bound_every_family_is_refused_and_nothing_is_written(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    budget = live_server.app.state.core.budget
    # A slow client: its Content-Length is admitted now, its body comes later.
    body = json.dumps({"session_id": "slow", "session_name": "slow"}).encode()
    body += b" " * (BUDGET - 8 - len(body))  # no write below fits beside it
    host, port = live_server.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body[:10])
    )
    await writer.drain()
    await wait_until(lambda: budget.in_flight == len(body))

    for family, path, payload, shaped in FAMILY_WRITES:
        resp = await http.post(path, json=payload, headers={"X-AGH-Session-ID": "w", "X-AGH-Agent": "a"})
        assert resp.status_code == 503, (family, resp.text)
        assert resp.headers["retry-after"] == "1", family
        assert shaped(resp.json()), (family, resp.json())

    chunked = await http.post("/sessions", content=chunks(b'{"session_id": "chunked", "session_name": "c"}'))
    assert chunked.status_code == 503, chunked.text
    assert chunked.json()["detail"].startswith("the server is busy")

    async with grpc.aio.insecure_channel(live_server.grpc_target) as channel:
        sessions = runtime_pb2_grpc.SessionServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await sessions.CreateSession(
                runtime_pb2.CreateSessionRequest(session_id="grpc", session_name="x" * 200)
            )
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert_retry_info(caught.value)
    assert await log_entries(http) == []

    # The admitted request finishes; then the budget is free again.
    writer.write(body[10:])
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    writer.close()
    await wait_until(lambda: budget.in_flight == 0)
    resp = await http.post("/sessions", json={"session_id": "after", "session_name": "after"})
    assert resp.status_code == 200, resp.text
    # A chunked body larger than the whole budget is served while it is alone.
    big = json.dumps({"session_id": "big", "session_name": "b" * 2 * BUDGET}).encode()
    resp = await http.post("/sessions", content=chunks(big, 1000))
    assert resp.status_code == 200, resp.text
    ids = {s["session_id"] for s in (await http.get("/sessions")).json()["sessions"]}
    assert ids == {"slow", "after", "big"}


async def chunks(body: bytes, size: int = 1 << 20) -> AsyncIterator[bytes]:
    """`body` sent chunked (no Content-Length), `size` bytes at a time."""
    for start in range(0, len(body), size):
        yield body[start : start + size]
        await asyncio.sleep(0.01)


def assert_retry_info(err: grpc.aio.AioRpcError) -> None:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    infos = [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
    assert len(infos) == 1
    info = error_details_pb2.RetryInfo()
    infos[0].Unpack(info)
    assert info.retry_delay.seconds == 1


async def test_a_full_write_queue_refuses_writes_at_once_and_finishes_the_admitted(server: Server) -> None:
    writer = server.core.store.writer
    # Hold the writer's commit thread: the batch in progress cannot commit,
    # so the operations that follow wait in the queue.
    gate = threading.Event()
    writer._thread.submit(gate.wait)
    try:

        def create(sid: str) -> asyncio.Task[httpx.Response]:
            return asyncio.create_task(
                server.http.post("/sessions", json={"session_id": sid, "session_name": sid})
            )

        first = create("in-batch")
        await wait_until(lambda: writer.depth() == 0 and not first.done())
        await asyncio.sleep(0.1)  # it is in the batch the thread cannot commit
        queued = [create(f"queued-{i}") for i in range(4)]
        await wait_until(lambda: writer.depth() == 4)

        refused = await asyncio.wait_for(
            server.http.post("/sessions", json={"session_id": "refused", "session_name": "r"}), 5
        )
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert "write queue is full" in refused.json()["detail"]
        async with server.channel() as channel:
            sessions = runtime_pb2_grpc.SessionServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await asyncio.wait_for(
                    sessions.CreateSession(
                        runtime_pb2.CreateSessionRequest(session_id="g", session_name="g")
                    ),
                    5,
                )
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert_retry_info(caught.value)
        # Reads do not wait for the writer.
        assert (await asyncio.wait_for(server.http.get("/sessions"), 5)).json() == {"sessions": []}
        assert not first.done() and not any(t.done() for t in queued)
    finally:
        gate.set()
    for task in [first, *queued]:
        resp = await task
        assert resp.status_code == 200, resp.text
    ids = {s["session_id"] for s in (await server.http.get("/sessions")).json()["sessions"]}
    assert ids == {"in-batch", *(f"queued-{i}" for i in range(4))}
