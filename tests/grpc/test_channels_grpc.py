"""Channel streams over gRPC, through the generated stubs: order, resume from
a cursor after forced disconnects (no gap, no duplicate, over 3,000 messages
read in 11 connections), many subscribers at once, the server-kept read
position, and the errors a stream opens with (unknown channel, bad cursor,
too many streams)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from agentplane.v1 import channels_pb2 as pb
from agentplane.v1 import channels_pb2_grpc as rpc
from agentplane.v1 import runtime_pb2, runtime_pb2_grpc

from service.base.config import Settings
from tests.conftest import Server
from tests.grpc.test_runtime_grpc import assert_reason, failure

CHANNEL = "ops"
STREAM_LIMIT = 120


def who(session: str) -> tuple[tuple[str, str], ...]:
    return (("x-agh-session-id", session), ("x-agh-agent", "coder"))


ALICE, BOB = who("alice"), who("bob")


@pytest.fixture
def settings(migrated_database_url: str) -> Settings:
    return Settings(
        grpc_port=0,
        http_port=0,
        database_url=migrated_database_url,
        heartbeat_seconds=0.5,
        shutdown_grace_seconds=2,
        max_streams_per_key=STREAM_LIMIT,
    )


@pytest.fixture
async def channel(server: Server) -> AsyncIterator[grpc.aio.Channel]:
    channel = server.channel()
    sessions = runtime_pb2_grpc.SessionServiceStub(channel)
    for sid in ("alice", "bob"):
        await sessions.CreateSession(
            runtime_pb2.CreateSessionRequest(session_id=sid, session_name=sid, agent_name="coder")
        )
    ops = rpc.ChannelServiceStub(channel)
    for cid in (CHANNEL, "other"):
        await ops.CreateChannel(pb.CreateChannelRequest(id=cid))
    try:
        yield channel
    finally:
        await channel.close()


def message(body: Any, channel: str = CHANNEL) -> pb.SendChannelMessageRequest:
    req = pb.SendChannelMessageRequest(channel=channel)
    req.body.string_value = str(body)
    md = req.metadata
    md.task_id, md.run_id, md.correlation_id, md.message_kind = "t", "r", "c", "status"
    md.coordination_channel_id = channel
    return req


async def send_all(agents: rpc.AghChannelServiceStub, count: int, senders: int = 16) -> list[tuple[int, str]]:
    """Send `count` messages from alice (`senders` at a time); returns (seq, body) in seq order."""
    sent: list[tuple[int, str]] = []

    async def sender(k: int) -> None:
        for i in range(k, count, senders):
            reply = await agents.SendChannelMessage(message(i), metadata=ALICE)
            sent.append((reply.message.seq, reply.message.body.string_value))

    await asyncio.gather(*(sender(k) for k in range(senders)))
    return sorted(sent)


async def receive(agents: rpc.AghChannelServiceStub, count: int, **request: Any) -> list[tuple[int, str]]:
    """The first `count` messages of a stream (heartbeats skipped)."""
    got: list[tuple[int, str]] = []
    call = agents.StreamChannelMessages(pb.StreamChannelMessagesRequest(**request), metadata=BOB)
    async for item in call:
        if item.HasField("message"):
            got.append((item.message.seq, item.message.body.string_value))
            if len(got) == count:
                break
    call.cancel()
    return got


async def test_stream_delivers_in_order_then_heartbeats(channel: grpc.aio.Channel) -> None:
    agents = rpc.AghChannelServiceStub(channel)
    call = agents.StreamChannelMessages(pb.StreamChannelMessagesRequest(channel=CHANNEL), metadata=BOB)
    sent = await send_all(agents, 50, senders=1)
    got = []
    async for item in call:
        if item.HasField("heartbeat"):
            # Idle: the heartbeat carries the cursor to resume from.
            assert item.heartbeat.cursor == sent[-1][0]
            break
        got.append((item.message.seq, item.message.body.string_value))
        assert item.message.from_session_id == "alice"
        assert item.message.metadata.message_kind == "status"
    call.cancel()
    assert got == sent


async def test_resume_after_forced_disconnects_has_no_gap_and_no_duplicate(channel: grpc.aio.Channel) -> None:
    # 3,000 messages in 11 reads of 1-600 (the seed's), two of them more than a
    # catch-up page (500): each read after the first resumes from a cursor
    # while the senders go on. (10,000 in 17 reads took 45-105 s on PostgreSQL.)
    total = 3_000
    agents = rpc.AghChannelServiceStub(channel)
    sending = asyncio.create_task(send_all(agents, total))
    got: list[tuple[int, str]] = []
    rng = random.Random(7)
    reconnects = 0
    while len(got) < total:
        cursor = got[-1][0] if got else 0
        take = min(rng.randint(1, 600), total - len(got))
        # Read `take` messages, then drop the connection without a word.
        got += await asyncio.wait_for(receive(agents, take, channel=CHANNEL, after_seq=cursor), 60)
        reconnects += 1
    sent = await sending
    assert reconnects > 5
    assert len(got) == total
    assert got == sent  # every message once, in seq order


async def test_many_subscribers_each_get_everything_in_order(channel: grpc.aio.Channel) -> None:
    agents = rpc.AghChannelServiceStub(channel)
    subscribers = 100
    readers = [asyncio.create_task(receive(agents, 300, channel=CHANNEL)) for _ in range(subscribers)]
    await asyncio.sleep(0.5)  # all open before the first send: none starts behind
    sent = await send_all(agents, 300, senders=4)
    results = await asyncio.wait_for(asyncio.gather(*readers), 60)
    assert all(r == sent for r in results)


async def test_stream_starts_after_the_server_kept_read_position(channel: grpc.aio.Channel) -> None:
    agents = rpc.AghChannelServiceStub(channel)
    sent = await send_all(agents, 10, senders=1)
    acked = await agents.AckChannelMessages(
        pb.AckChannelMessagesRequest(channel=CHANNEL, seq=sent[3][0]), metadata=BOB
    )
    assert acked.seq == sent[3][0]
    # A watcher that died comes back without a cursor and gets what it missed.
    assert await receive(agents, 6, channel=CHANNEL) == sent[4:]
    recv = await agents.RecvChannelMessages(pb.RecvChannelMessagesRequest(channel=CHANNEL), metadata=BOB)
    assert [(m.seq, m.body.string_value) for m in recv.messages] == sent[4:]


async def test_one_stream_follows_several_channels(channel: grpc.aio.Channel) -> None:
    agents = rpc.AghChannelServiceStub(channel)
    expected = []
    for i in range(6):
        reply = await agents.SendChannelMessage(message(i, (CHANNEL, "other")[i % 2]), metadata=ALICE)
        expected.append((reply.message.seq, str(i)))
    assert await receive(agents, 6, channel=CHANNEL, also_channels=["other"]) == expected
    assert await receive(agents, 3, channel="other") == expected[1::2]


async def first(call: Any) -> Any:
    async for item in call:
        return item


async def test_stream_errors(channel: grpc.aio.Channel) -> None:
    agents = rpc.AghChannelServiceStub(channel)
    f = await failure(
        first(agents.StreamChannelMessages(pb.StreamChannelMessagesRequest(channel="nope"), metadata=BOB))
    )
    assert_reason(f, grpc.StatusCode.NOT_FOUND, "CHANNEL_NOT_FOUND", 'channel "nope" not found')
    elsewhere = await agents.SendChannelMessage(message("x", "other"), metadata=ALICE)
    bad = pb.StreamChannelMessagesRequest(channel=CHANNEL, after_seq=elsewhere.message.seq)
    f = await failure(first(agents.StreamChannelMessages(bad, metadata=BOB)))
    assert_reason(f, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CURSOR")
    assert f.violations == [("after_seq", f"{elsewhere.message.seq} is not a message of channel ops")]
    future = pb.StreamChannelMessagesRequest(channel=CHANNEL, after_seq=elsewhere.message.seq + 100)
    f = await failure(first(agents.StreamChannelMessages(future, metadata=BOB)))
    assert_reason(f, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CURSOR")
    f = await failure(first(agents.StreamChannelMessages(pb.StreamChannelMessagesRequest(channel=CHANNEL))))
    assert_reason(f, grpc.StatusCode.UNAUTHENTICATED, "IDENTITY_REQUIRED")


async def test_open_streams_per_key_are_limited(channel: grpc.aio.Channel) -> None:
    agents = rpc.AghChannelServiceStub(channel)
    calls = [
        agents.StreamChannelMessages(pb.StreamChannelMessagesRequest(channel=CHANNEL), metadata=BOB)
        for _ in range(STREAM_LIMIT)
    ]
    # Each is open once it has sent its first heartbeat.
    await asyncio.gather(*(first(c) for c in calls))
    f = await failure(
        first(agents.StreamChannelMessages(pb.StreamChannelMessagesRequest(channel=CHANNEL), metadata=BOB))
    )
    assert_reason(f, grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_STREAMS")
    calls[0].cancel()
    await asyncio.sleep(0.2)
    again = agents.StreamChannelMessages(pb.StreamChannelMessagesRequest(channel=CHANNEL), metadata=BOB)
    assert (await first(again)).HasField("heartbeat")
    for c in [*calls, again]:
        c.cancel()
