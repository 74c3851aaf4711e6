"""Log followers over real sockets (both backends): many NDJSON, gRPC and
WebSocket followers share one reader of the log and each gets every entry,
in order; resuming from a cursor (through catch-up, gaps and filters) gives
no gap and no duplicate; a follower too slow for the shared window is ended
with the cursor to resume from."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import httpx
import pytest
import websockets
from agentplane.v1 import log_pb2, log_pb2_grpc

from service.domain import log_feed
from tests.conftest import LiveServer

WAIT = 10.0


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as client:
        yield client


async def create(http: httpx.AsyncClient, sid: str) -> None:
    resp = await http.post("/sessions", json={"session_id": sid, "session_name": "S"})
    assert resp.status_code in (200, 201), resp.text


async def post_event(http: httpx.AsyncClient, sid: str, i: int, size: int = 10) -> None:
    body = {
        "event_type": "post_tool",
        "session_id": sid,
        "session_name": "S",
        "timestamp": f"2026-01-01T00:00:00.{i:06d}Z",
        "tool_name": "Read",
        "tool_input": {"i": i},
        "tool_output": "x" * size,
    }
    resp = await http.post(f"/sessions/{sid}/events", json=body)
    assert resp.status_code in (200, 201), resp.text


async def truth(http: httpx.AsyncClient, after: int = 0, **params: Any) -> list[int]:
    """The seqs the log holds after `after` (a catch-up read that ends)."""
    resp = await http.get("/v1/log:watch", params={"after_seq": after, "stop_at_end": "true", **params})
    assert resp.status_code == 200, resp.text
    return [json.loads(line)["result"]["entry"]["seq"] for line in resp.text.splitlines()]


class NdjsonFollower:
    """A `/v1/log:watch` stream read into `seqs` (entries) and `last` (the final line)."""

    def __init__(self, http: httpx.AsyncClient, **params: Any) -> None:
        self.seqs: list[int] = []
        self.last: dict[str, Any] = {}
        self.opened = asyncio.Event()
        self._task = asyncio.create_task(self._run(http, params))

    async def _run(self, http: httpx.AsyncClient, params: dict[str, Any]) -> None:
        async with http.stream("GET", "/v1/log:watch", params=params) as resp:
            assert resp.status_code == 200
            async for line in resp.aiter_lines():
                self.opened.set()
                self.last = json.loads(line)
                entry = self.last.get("result", {}).get("entry")
                if entry:
                    self.seqs.append(entry["seq"])

    async def until(self, done: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not done():
                if self._task.done():
                    self._task.result()
                    return
                await asyncio.sleep(0.01)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def test_followers_share_one_reader_and_each_gets_every_entry_in_order(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    core = live_server.app.state.core
    reads = 0
    real_read = core.store.read

    async def counting_read(fn: Any) -> Any:
        nonlocal reads
        reads += 1
        return await real_read(fn)

    await create(http, "f")
    ndjson = [NdjsonFollower(http, after_seq=-1) for _ in range(10)]
    for f in ndjson:
        await asyncio.wait_for(f.opened.wait(), WAIT)  # the opening heartbeat
    grpc_seqs: list[int] = []
    ws_seqs: list[int] = []
    async with (
        grpc.aio.insecure_channel(live_server.grpc_target) as channel,
        websockets.connect(f"{live_server.ws_url}/ws", open_timeout=WAIT) as ws,
    ):
        stream = log_pb2_grpc.LogServiceStub(channel).WatchLog(log_pb2.WatchLogRequest(after_seq=-1))
        first = await anext(aiter(stream))
        assert first.HasField("heartbeat")
        start = first.heartbeat.cursor
        assert json.loads(await ws.recv())["type"] == "init"

        core.store.read = counting_read
        try:
            for i in range(40):
                await post_event(http, "f", i)
        finally:
            core.store.read = real_read
        expected = await truth(http, start)
        assert len(expected) == 40

        async def grpc_follow() -> None:
            async for m in stream:
                if m.HasField("entry"):
                    grpc_seqs.append(m.entry.seq)
                    if len(grpc_seqs) == len(expected):
                        return

        async def ws_follow() -> None:
            while len(ws_seqs) < len(expected):
                ws_seqs.append(json.loads(await ws.recv())["seq"])

        async with asyncio.timeout(WAIT):
            await asyncio.gather(grpc_follow(), ws_follow())
        stream.cancel()
    for f in ndjson:
        await f.until(lambda f=f: len(f.seqs) >= len(expected))  # type: ignore[misc]
        await f.close()
        assert f.seqs == expected
    assert grpc_seqs == expected and ws_seqs == expected
    # One read per commit for the whole process (each of the 12 followers
    # reading on its own made 40 or more each).
    assert reads <= 40 + 5, reads


async def test_resume_from_any_cursor_has_no_gap_and_no_duplicate(
    live_server: LiveServer, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through catch-up and into the live window, across gaps (a deleted
    session's entries leave the log) and with filters that rarely match
    (pages bounded by seq ranges)."""
    monkeypatch.setattr(log_feed, "SPAN", 7)
    await create(http, "a")
    await create(http, "gone")
    for i in range(30):
        await post_event(http, "a", i)
        await post_event(http, "gone", i)
    assert (await http.delete("/sessions/gone")).status_code in (200, 204)
    await create(http, "b")
    for i in range(30):
        await post_event(http, "a", 100 + i)
        if i % 10 == 0:
            await post_event(http, "b", i)
    everything = await truth(http)
    assert len(everything) == len(set(everything)) and everything == sorted(everything)
    only_b = await truth(http, session_id="b")
    assert len(only_b) == 4  # created, and three events, found through 7-seq pages

    # Followers from cursors in the past (catch-up) while writes go on (live).
    cursors = [0, everything[5], everything[len(everything) // 2], everything[-1]]
    followers = [NdjsonFollower(http, after_seq=c) for c in cursors]
    filtered = NdjsonFollower(http, after_seq=0, session_id="b")
    for i in range(20):
        await post_event(http, "b", 1000 + i)
    final = await truth(http)
    for cursor, f in zip(cursors, followers, strict=True):
        want = [s for s in final if s > cursor]
        await f.until(lambda f=f, want=want: len(f.seqs) >= len(want))  # type: ignore[misc]
        await f.close()
        assert f.seqs == want
    want_b = await truth(http, session_id="b")
    await filtered.until(lambda: len(filtered.seqs) >= len(want_b))
    await filtered.close()
    assert filtered.seqs == want_b


async def test_workspaces_stay_apart_for_followers(live_server: LiveServer, http: httpx.AsyncClient) -> None:
    """With keys off every call is the default workspace; entries of another
    workspace in the shared window are not delivered."""
    core = live_server.app.state.core
    follower = NdjsonFollower(http, after_seq=-1)
    await asyncio.wait_for(follower.opened.wait(), WAIT)
    await core.store.write(lambda tx: tx.append("test.other", "elsewhere", {"secret": 1}))
    await create(http, "mine")
    mine = await truth(http, after=0)
    await follower.until(lambda: len(follower.seqs) >= 1)
    await follower.close()
    assert follower.seqs == mine[-1:]


async def test_a_slow_consumer_is_ended_with_its_cursor(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    """A follower that stops reading while more than the window passes is
    ended with a final `{"error":…}` line carrying `resume_after_seq` (a
    WebSocket: close 1013 naming the cursor); resuming from it gives the
    rest, with no gap and no duplicate."""
    feed = live_server.app.state.core.log_feed
    feed._max_items = 16  # a small window, so that the kernel's socket buffers overflow it
    await create(http, "slow")
    start = (await truth(http))[-1]
    port = int(live_server.base_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection(sock=small_socket(port))
    writer.write(f"GET /v1/log:watch?after_seq={start} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    ws_reader, ws_writer = await asyncio.open_connection(sock=small_socket(port))
    ws_writer.write(
        f"GET /ws?cursor={start} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    await ws_writer.drain()
    assert b" 101 " in await ws_reader.readuntil(b"\r\n\r\n")
    for i in range(400):  # ~13 MB: far more than the sockets' buffers and the window hold
        await post_event(http, "slow", i, size=32 * 1024)
    sent = await truth(http, start)
    # Now read what the stalled NDJSON stream has.
    raw = b""
    async with asyncio.timeout(WAIT * 3):
        while b'{"error"' not in raw or not raw.endswith(b"\n0\r\n\r\n"):
            chunk = await reader.read(1 << 20)
            if not chunk:
                break
            raw += chunk
    writer.close()
    lines = [json.loads(x) for x in _dechunk(raw).splitlines()]
    got = [x["result"]["entry"]["seq"] for x in lines if "result" in x]
    error = lines[-1]["error"]
    assert error["code"] == 8  # RESOURCE_EXHAUSTED
    info = next(d for d in error["details"] if d["@type"].endswith("ErrorInfo"))
    assert info["reason"] == "SLOW_CONSUMER"
    cursor = int(info["metadata"]["resume_after_seq"])
    assert got == [s for s in sent if s <= cursor] and len(got) < len(sent)
    rest = await truth(http, cursor)
    assert got + rest == sent
    # The WebSocket: `init`, the messages it had, then a close naming the cursor.
    frames = await ws_frames(ws_reader)
    ws_writer.close()
    assert json.loads(frames[0][1])["type"] == "init"
    ws_seqs = [json.loads(payload)["seq"] for opcode, payload in frames[1:] if opcode == 1]
    opcode, payload = frames[-1]
    assert opcode == 8 and int.from_bytes(payload[:2]) == 1013
    ws_cursor = int(payload[2:].decode().rsplit("cursor=", 1)[1])
    assert ws_seqs == [s for s in sent if s <= ws_cursor] and len(ws_seqs) < len(sent)
    assert ws_seqs + await truth(http, ws_cursor) == sent


async def ws_frames(reader: asyncio.StreamReader) -> list[tuple[int, bytes]]:
    """A server's (unmasked) WebSocket frames up to its close frame."""
    frames: list[tuple[int, bytes]] = []
    async with asyncio.timeout(WAIT * 3):
        while not frames or frames[-1][0] != 8:
            head = await reader.readexactly(2)
            size = head[1] & 0x7F
            if size >= 126:
                size = int.from_bytes(await reader.readexactly(2 if size == 126 else 8))
            frames.append((head[0] & 0x0F, await reader.readexactly(size)))
    return frames


def small_socket(port: int) -> socket.socket:
    """A client socket with a small fixed receive buffer (loopback's autotuned
    buffers would otherwise hold tens of megabytes for a reader that stalls)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


def _dechunk(raw: bytes) -> bytes:
    """The body of an HTTP/1.1 chunked response."""
    body = raw.split(b"\r\n\r\n", 1)[1]
    out = b""
    while body:
        size_line, body = body.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            break
        out, body = out + body[:size], body[size + 2 :]
    return out
