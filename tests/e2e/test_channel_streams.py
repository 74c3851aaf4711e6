"""Channel streams over real sockets and real processes: newline-delimited
JSON over HTTP, a stalled reader that must not grow the server's memory, and
(on PostgreSQL) two `agentplane serve` replicas, a sender on one and a
stream on the other, surviving a restart of the stream's replica."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from agentplane.v1 import channels_pb2 as pb
from agentplane.v1 import channels_pb2_grpc as rpc

from tests.agh_support import identity
from tests.channels_support import ALICE, BOB, CHANNEL, metadata, setup_channel
from tests.conftest import POSTGRES_URL, LiveServer, free_port, reset_postgres
from tests.e2e.test_serve_process import serve

BOB_MD = (("x-agh-session-id", BOB), ("x-agh-agent", "coder"))


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as client:
        await setup_channel(client)
        yield client


async def post(http: httpx.AsyncClient, body: Any) -> dict[str, Any]:
    resp = await http.post(
        f"/api/agent/channels/{CHANNEL}/send",
        json={"body": body, "metadata": metadata()},
        headers=identity(ALICE),
    )
    assert resp.status_code == 202, resp.text
    return dict(resp.json()["message"])


async def test_ndjson_stream_over_http(http: httpx.AsyncClient) -> None:
    first = await post(http, "before")
    async with http.stream(
        "GET", f"/api/agent/channels/{CHANNEL}/stream", params={"after_seq": 0}, headers=identity(BOB)
    ) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"] == "application/x-ndjson"
        lines = stream.aiter_lines()
        assert json.loads(await anext(lines)) == {"result": {"message": first}}
        later = [await post(http, i) for i in range(5)]
        for message in later:
            assert json.loads(await anext(lines)) == {"result": {"message": message}}
        beat = json.loads(await anext(lines))["result"]["heartbeat"]
        assert beat["cursor"] == later[-1]["seq"]
    # Resume from the last cursor: nothing again, then only what is new.
    newer = await post(http, "after")
    async with http.stream(
        "GET",
        f"/api/agent/channels/{CHANNEL}/stream",
        params={"after_seq": later[-1]["seq"]},
        headers=identity(BOB),
    ) as stream:
        assert json.loads(await anext(stream.aiter_lines())) == {"result": {"message": newer}}


async def test_ndjson_stream_errors_come_before_the_stream(http: httpx.AsyncClient) -> None:
    resp = await http.get("/api/agent/channels/nope/stream", headers=identity(BOB))
    assert resp.status_code == 404
    assert resp.json()["diagnostic"]["code"] == "channel_not_found"
    resp = await http.get(
        f"/api/agent/channels/{CHANNEL}/stream", params={"after_seq": 999999}, headers=identity(BOB)
    )
    assert resp.status_code == 400
    assert resp.json()["diagnostic"]["code"] == "invalid_cursor"


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@contextlib.contextmanager
def server(tmp_path: Path, url: str, name: str = "server") -> Iterator[tuple[str, str, Any]]:
    port, grpc_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    workdir = tmp_path / name
    workdir.mkdir(exist_ok=True)
    args = ("--http-port", str(port), "--grpc-port", str(grpc_port))
    with serve(workdir, url, *args, health=f"{base}/healthz") as proc:
        yield base, f"127.0.0.1:{grpc_port}", proc


async def test_a_stalled_reader_does_not_grow_the_server(tmp_path: Path) -> None:
    """A stream whose reader stops reading while 96 MB of messages pass: the
    server reads ahead of it by a bounded window only; when the reader
    resumes it gets every message, in order."""
    count, size = (
        1600,
        60 * 1024,
    )  # 96,000 KiB in messages near the 64 KiB limit: half the sends of 32 KiB ones
    with server(tmp_path, f"sqlite:///{tmp_path / 'slow.db'}") as (base, target, proc):
        async with (
            httpx.AsyncClient(base_url=base, timeout=30) as client,
            grpc.aio.insecure_channel(
                target, options=[("grpc.max_receive_message_length", 1 << 20)]
            ) as channel,
        ):
            await setup_channel(client)
            agents = rpc.AghChannelServiceStub(channel)
            stream = agents.StreamChannelMessages(
                pb.StreamChannelMessagesRequest(channel=CHANNEL), metadata=BOB_MD
            )
            first = await post(client, "x" * size)
            item = await anext(aiter(stream))
            assert item.message.seq == first["seq"]
            before = rss_bytes(proc.pid)
            sent = [first["seq"]]
            for start in range(1, count, 16):
                batch = [post(client, f"{i:06d}" + "x" * size) for i in range(start, min(count, start + 16))]
                sent += [m["seq"] for m in await asyncio.gather(*batch)]
            sent.sort()
            grown = rss_bytes(proc.pid) - before
            # 96 MB went through; the server holds its 8 MiB window, gRPC's
            # flow-control buffers and its caches, not the backlog.
            assert grown < 48 * 1024 * 1024, f"server grew by {grown / 2**20:.0f} MiB"
            got = [first["seq"]]
            async for item in stream:
                if item.HasField("message"):
                    got.append(item.message.seq)
                    if len(got) == count:
                        break
            stream.cancel()
            assert got == sent


if POSTGRES_URL:

    @pytest.fixture
    def pg_url(postgres_url: str) -> str:
        reset_postgres(postgres_url)
        return postgres_url

    async def follow(target: str, cursor: int, into: list[tuple[int, float]], stop: asyncio.Event) -> None:
        """Stream from `cursor` into `into` ((seq, arrival time)) until `stop` or a broken connection."""
        async with grpc.aio.insecure_channel(target) as channel:
            agents = rpc.AghChannelServiceStub(channel)
            request = pb.StreamChannelMessagesRequest(channel=CHANNEL, after_seq=cursor)
            call = agents.StreamChannelMessages(request, metadata=BOB_MD)
            try:
                async for item in call:
                    if item.HasField("message"):
                        into.append((item.message.seq, time.monotonic()))
                    if stop.is_set():
                        return
            except grpc.aio.AioRpcError:
                return  # the replica went away
            finally:
                call.cancel()

    async def test_two_replicas_a_sender_on_one_a_stream_on_the_other(tmp_path: Path, pg_url: str) -> None:
        with (
            server(tmp_path, pg_url, "a") as (base_a, _, _a),
            server(tmp_path, pg_url, "b") as (_, target_b, _b),
        ):
            async with httpx.AsyncClient(base_url=base_a, timeout=30) as sender:
                await setup_channel(sender)
                got: list[tuple[int, float]] = []
                stop = asyncio.Event()
                reader = asyncio.create_task(follow(target_b, 0, got, stop))
                await asyncio.sleep(0.5)
                sent_at: dict[int, float] = {}
                for i in range(200):
                    t0 = time.monotonic()
                    sent_at[(await post(sender, i))["seq"]] = t0
                    await asyncio.sleep(0.005)
                deadline = time.monotonic() + 10
                while len(got) < 200 and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                stop.set()
                reader.cancel()
                assert [s for s, _ in got] == sorted(sent_at)
                delays = sorted(t - sent_at[s] for s, t in got)
                # Across replicas: NOTIFY wakes the other replica's feed.
                assert delays[int(len(delays) * 0.99)] < 0.5, delays[-5:]

    async def test_no_message_is_lost_when_the_streams_replica_restarts(tmp_path: Path, pg_url: str) -> None:
        with server(tmp_path, pg_url, "a") as (base_a, _, _a):
            async with httpx.AsyncClient(base_url=base_a, timeout=30) as sender:
                await setup_channel(sender)
                sent: list[int] = []
                got: list[tuple[int, float]] = []
                sending = True

                async def keep_sending() -> None:
                    i = 0
                    while sending:
                        sent.append((await post(sender, i))["seq"])
                        i += 1
                        await asyncio.sleep(0.01)

                producer = asyncio.create_task(keep_sending())
                for round_ in range(2):
                    with server(tmp_path, pg_url, f"b{round_}") as (_, target_b, proc_b):
                        stop = asyncio.Event()
                        reader = asyncio.create_task(follow(target_b, got[-1][0] if got else 0, got, stop))
                        await asyncio.sleep(1.5)
                        proc_b.kill()  # no goodbye: the stream breaks mid-flight
                        await asyncio.wait_for(reader, 10)
                sending = False
                await producer
                # A last replica catches the reader up from its cursor.
                with server(tmp_path, pg_url, "b-last") as (_, target_b, _b):
                    stop = asyncio.Event()
                    reader = asyncio.create_task(follow(target_b, got[-1][0], got, stop))
                    deadline = time.monotonic() + 10
                    while (not got or got[-1][0] < sent[-1]) and time.monotonic() < deadline:  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
                    stop.set()
                    reader.cancel()
                assert [s for s, _ in got] == sent
