"""The log's streams in a real `agentplane serve` process (both backends): a
reader from seq 0 on a large log does not stop the server answering other
routes, and SIGTERM ends every stream (each told the cursor to resume from)
and the process exits within the grace period, whatever the streams are
doing (following, catching up behind a stalled reader, or abandoned)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import orjson
import pytest
from agentplane.v1 import log_pb2, log_pb2_grpc
from sqlalchemy import create_engine
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from service.store.database import migrate, normalize_url
from service.store.log import Tx
from tests.conftest import POSTGRES_URL, free_port, reset_postgres
from tests.e2e.test_follower_process import children, metric, wait_until
from tests.e2e.test_log_followers import small_socket
from tests.e2e.test_serve_process import serve

ENTRIES = 60_000
GRACE = 4.0


def fill(url: str, n: int) -> None:
    """`n` runtime events written the way the server appends them, before it starts."""
    migrate(url)
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as conn:
            tx = Tx(conn)
            for start in range(0, n, 5000):
                tx.append_many(
                    "runtime.event",
                    "default",
                    [
                        (f"s{i % 10}", "2026-01-01T00:00:00Z", "post_tool", orjson.dumps({"i": i}).decode())
                        for i in range(start, min(n, start + 5000))
                    ],
                )
    finally:
        engine.dispose()


@contextlib.contextmanager
def server(tmp_path: Path, url: str) -> Iterator[tuple[str, str, int, object]]:
    port, grpc_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    args = ("--http-port", str(port), "--grpc-port", str(grpc_port))
    with serve(tmp_path, url, *args, health=f"{base}/healthz") as proc:
        # Live NDJSON followers go to the follower process once it is up: wait, so they do.
        wait_until(lambda: metric(base, "agentplane_follower_process_up") == 1, "the follower process is up")
        yield base, f"127.0.0.1:{grpc_port}", port, proc


@pytest.fixture
def big_log(tmp_path: Path, database_url: str) -> str:
    fill(database_url, ENTRIES)
    return database_url


async def test_a_reader_from_zero_does_not_stop_the_server_answering(tmp_path: Path, big_log: str) -> None:
    with server(tmp_path, big_log) as (base, _, _, _):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            done = asyncio.Event()
            probes: list[float] = []

            async def probe() -> None:
                while not done.is_set():
                    for path in ("/healthz", "/sessions"):
                        started = time.monotonic()
                        resp = await http.get(path)
                        probes.append(time.monotonic() - started)
                        assert resp.status_code == 200
                    await asyncio.sleep(0.02)

            async def read() -> list[int]:
                seqs: list[int] = []
                params = {"after_seq": 0, "stop_at_end": "true"}
                async with http.stream("GET", "/v1/log:watch", params=params) as resp:
                    async for line in resp.aiter_lines():
                        seqs.append(json.loads(line)["result"]["entry"]["seq"])
                done.set()
                return seqs

            prober = asyncio.create_task(probe())
            seqs = await read()
            await prober
    assert len(seqs) == ENTRIES and seqs == sorted(set(seqs))
    assert len(probes) >= 4
    # Each catch-up page runs in a thread and the loop turns between pages:
    # probes are answered throughout (before: seconds-long stalls, timeouts).
    assert max(probes) < 2.0, f"probe max {max(probes):.3f}s, median {statistics.median(probes):.3f}s"


async def test_sigterm_ends_every_stream_with_its_cursor_within_the_grace_period(
    tmp_path: Path, big_log: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTPLANE_SHUTDOWN_GRACE_SECONDS", str(GRACE))
    with server(tmp_path, big_log) as (base, target, port, proc):
        async with (
            httpx.AsyncClient(base_url=base, timeout=30) as http,
            grpc.aio.insecure_channel(target) as channel,
        ):
            # A follower over NDJSON, one over gRPC, one WebSocket.
            lines: list[dict[str, object]] = []
            ndjson_open = asyncio.Event()

            async def follow_ndjson() -> None:
                async with http.stream("GET", "/v1/log:watch", params={"after_seq": -1}) as resp:
                    async for line in resp.aiter_lines():
                        lines.append(json.loads(line))
                        ndjson_open.set()

            ndjson = asyncio.create_task(follow_ndjson())
            await asyncio.wait_for(ndjson_open.wait(), 10)
            stream = log_pb2_grpc.LogServiceStub(channel).WatchLog(log_pb2.WatchLogRequest(after_seq=-1))
            assert (await anext(aiter(stream))).HasField("heartbeat")
            ws = await ws_connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10)
            assert json.loads(await ws.recv())["type"] == "init"
            # A reader from 0 that stalls (its socket full), and one that vanished.
            stalled_r, stalled_w = await asyncio.open_connection(sock=small_socket(port))
            vanished_r, vanished_w = await asyncio.open_connection("127.0.0.1", port)
            for w in (stalled_w, vanished_w):
                w.write(b"GET /v1/log:watch?after_seq=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                await w.drain()
            await stalled_r.read(1024)
            await vanished_r.read(1024)
            vanished_w.transport.abort()
            await asyncio.sleep(0.3)

            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
            code = await asyncio.to_thread(proc.wait, GRACE + 10)  # type: ignore[attr-defined]
            took = time.monotonic() - started

            await asyncio.wait_for(ndjson, 5)
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                async for _ in stream:
                    pass
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await ws.recv()
            stalled_w.close()
    assert code == 0
    assert took < GRACE + 3, f"exit took {took:.1f}s (grace {GRACE}s)"
    error = lines[-1]["error"]
    assert isinstance(error, dict) and error["code"] == 14  # UNAVAILABLE
    info = next(d for d in error["details"] if d["@type"].endswith("ErrorInfo"))
    assert info["reason"] == "SERVER_SHUTTING_DOWN" and int(info["metadata"]["resume_after_seq"]) >= ENTRIES
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "resume after seq" in (ended.value.details() or "")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert "cursor=" in closed.value.rcvd.reason


async def test_a_long_read_to_the_end_goes_to_the_follower_process_and_a_short_one_stays(
    tmp_path: Path, database_url: str
) -> None:
    """A read from far behind the head would take the server's loop from
    the writes: the follower process serves it (and closes the connection
    after it, saying so); a short one is answered on its keep-alive connection."""
    fill(database_url, 12_000)
    with server(tmp_path, database_url) as (base, _, _, _):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            whole = await http.get("/v1/log:watch", params={"after_seq": 0, "stop_at_end": "true"})
            seqs = [json.loads(line)["result"]["entry"]["seq"] for line in whole.text.splitlines()]
            tail = await http.get("/v1/log:watch", params={"after_seq": seqs[-101], "stop_at_end": "true"})
    assert whole.status_code == 200 and whole.headers["connection"] == "close"
    assert len(seqs) == 12_000 and seqs == sorted(set(seqs))
    assert tail.status_code == 200 and "connection" not in tail.headers
    assert [json.loads(line)["result"]["entry"]["seq"] for line in tail.text.splitlines()] == seqs[-100:]


def rss_bytes(pid: int) -> int:
    """The resident memory of the server and of its follower process."""
    total = 0
    for each in (pid, *children(pid)):
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


async def test_a_stalled_follower_does_not_grow_the_server(tmp_path: Path, database_url: str) -> None:
    """A follower whose reader stops reading while 96 MB of entries pass:
    the server holds its bounded window, not the backlog; the follower is
    ended with the cursor to resume from, and resuming gives the rest."""
    count, size = 1500, 64 * 1024
    with server(tmp_path, database_url) as (base, _, port, proc):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            resp = await http.post("/sessions", json={"session_id": "big", "session_name": "S"})
            assert resp.status_code in (200, 201)
            reader, writer = await asyncio.open_connection(sock=small_socket(port))
            writer.write(b"GET /v1/log:watch?after_seq=-1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            await writer.drain()
            head = await reader.readuntil(b'"cursor":')
            start = int((await reader.readuntil(b","))[:-1])
            assert b" 200 " in head
            before = rss_bytes(proc.pid)  # type: ignore[attr-defined]

            async def post(i: int) -> None:
                body = {
                    "event_type": "post_tool",
                    "session_id": "big",
                    "session_name": "S",
                    "timestamp": "2026-01-01T00:00:00Z",
                    "tool_name": "Read",
                    "tool_output": f"{i:06d}" + "x" * size,
                }
                r = await http.post("/sessions/big/events", json=body)
                assert r.status_code in (200, 201), r.text

            for first in range(0, count, 8):
                await asyncio.gather(*(post(i) for i in range(first, min(count, first + 8))))
            grown = rss_bytes(proc.pid) - before  # type: ignore[attr-defined]
            # 96 MB went through; the follower process holds its 8 MiB window
            # (and what it rendered of it), the sockets' buffers and its caches.
            assert grown < 64 * 1024 * 1024, f"server grew by {grown / 2**20:.0f} MiB"
            raw = b""
            async with asyncio.timeout(60):
                while not raw.endswith(b"\r\n0\r\n\r\n"):
                    chunk = await reader.read(1 << 20)
                    if not chunk:
                        break
                    raw += chunk
            writer.close()
            lines = [json.loads(x) for x in raw.split(b"\n") if x.startswith(b"{")]
            got = [x["result"]["entry"]["seq"] for x in lines if "entry" in x.get("result", {})]
            info = next(d for d in lines[-1]["error"]["details"] if d["@type"].endswith("ErrorInfo"))
            assert info["reason"] == "SLOW_CONSUMER"
            cursor = int(info["metadata"]["resume_after_seq"])
            params = {"after_seq": start, "stop_at_end": "true"}
            sent = [
                json.loads(x)["result"]["entry"]["seq"]
                for x in (await http.get("/v1/log:watch", params=params)).text.splitlines()
            ]
            assert len(sent) == count and got == [s for s in sent if s <= cursor] and len(got) < count


if POSTGRES_URL:

    async def test_a_follower_on_one_replica_gets_what_another_commits(
        tmp_path: Path, postgres_url: str
    ) -> None:
        """Two `agentplane serve` on one PostgreSQL database: the follower's
        replica reads the log once per NOTIFY it hears from the writer's."""
        reset_postgres(postgres_url)
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        with (
            server(tmp_path / "a", postgres_url) as (writer_base, _, _, _),
            server(tmp_path / "b", postgres_url) as (follower_base, _, _, _),
        ):
            async with (
                httpx.AsyncClient(base_url=writer_base, timeout=30) as writer,
                httpx.AsyncClient(base_url=follower_base, timeout=30) as follower,
            ):
                seqs: list[int] = []
                opened = asyncio.Event()

                async def follow() -> None:
                    async with follower.stream("GET", "/v1/log:watch", params={"after_seq": -1}) as resp:
                        async for line in resp.aiter_lines():
                            opened.set()
                            entry = json.loads(line).get("result", {}).get("entry")
                            if entry:
                                seqs.append(entry["seq"])
                                if len(seqs) == 31:
                                    return

                task = asyncio.create_task(follow())
                await asyncio.wait_for(opened.wait(), 10)
                resp = await writer.post("/sessions", json={"session_id": "r", "session_name": "S"})
                assert resp.status_code in (200, 201)
                for i in range(30):
                    body = {
                        "event_type": "pre_tool",
                        "session_id": "r",
                        "session_name": "S",
                        "timestamp": f"2026-01-01T00:00:{i:02d}Z",
                        "tool_name": "Read",
                    }
                    posted = await writer.post("/sessions/r/events", json=body)
                    assert posted.status_code in (200, 201), posted.text
                await asyncio.wait_for(task, 15)
                params = {"after_seq": 0, "stop_at_end": "true"}
                lines = (await writer.get("/v1/log:watch", params=params)).text.splitlines()
                assert seqs == [json.loads(x)["result"]["entry"]["seq"] for x in lines]
