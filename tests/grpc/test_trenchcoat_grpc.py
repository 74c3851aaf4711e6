"""TrenchcoatService over gRPC: the same batch rules as the JSON route, with
the violations as google.rpc.BadRequest and a stable ErrorInfo reason."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from agentplane.v1 import log_pb2, log_pb2_grpc, trenchcoat_pb2, trenchcoat_pb2_grpc

from tests.conftest import Server
from tests.grpc.test_runtime_grpc import assert_reason, failure

SID = "550e8400-e29b-41d4-a716-446655440000"


@pytest.fixture
async def channel(server: Server) -> AsyncIterator[grpc.aio.Channel]:
    channel = server.channel()
    try:
        yield channel
    finally:
        await channel.close()


def event(
    kind: str = "tool_use", sid: str = SID, ts: str = "2024-01-15T10:30:00Z"
) -> trenchcoat_pb2.TrenchcoatEvent:
    msg = trenchcoat_pb2.TrenchcoatEvent(event_type=kind, session_id=sid, timestamp=ts)
    msg.data.update({"tool_name": "Read"})
    return msg


async def log_types(channel: grpc.aio.Channel) -> list[str]:
    stream = log_pb2_grpc.LogServiceStub(channel).WatchLog(
        log_pb2.WatchLogRequest(after_seq=0, stop_at_end=True)
    )
    return [m.entry.type async for m in stream]


async def test_ingest(channel: grpc.aio.Channel) -> None:
    stub = trenchcoat_pb2_grpc.TrenchcoatServiceStub(channel)
    plugin = trenchcoat_pb2.TrenchcoatEvent(
        event="assistant_stop", session_id="local", ts="2024-01-15T10:30:01Z", seq=4
    )
    reply = await stub.IngestTrenchcoatEvents(
        trenchcoat_pb2.IngestTrenchcoatEventsRequest(events=[event("session_start"), event(), plugin])
    )
    assert reply == trenchcoat_pb2.IngestTrenchcoatEventsResponse(accepted=3, rejected=0)
    assert await log_types(channel) == [
        "session.created",
        "session.created",
        "trenchcoat.event",
        "trenchcoat.event",
        "trenchcoat.event",
    ]


async def test_invalid_batches(channel: grpc.aio.Channel) -> None:
    stub = trenchcoat_pb2_grpc.TrenchcoatServiceStub(channel)
    bad = trenchcoat_pb2.IngestTrenchcoatEventsRequest(
        events=[event(sid="nope"), event(), event(kind="page_view")]
    )
    f = await failure(stub.IngestTrenchcoatEvents(bad))
    assert_reason(f, grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_ERROR", "Request body is invalid.")
    assert f.violations == [
        ("events[0].session_id", "Invalid UUID format"),
        (
            "events[2].event_type",
            "Invalid enum value. Expected one of: session_start, session_end, tool_use, tool_result, "
            "subagent_stop, assistant_stop",
        ),
    ]
    f = await failure(stub.IngestTrenchcoatEvents(trenchcoat_pb2.IngestTrenchcoatEventsRequest()))
    assert_reason(f, grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_ERROR", "Request body is invalid.")
    assert f.violations == [("events", "Array must contain at least 1 element(s)")]
    too_many = trenchcoat_pb2.IngestTrenchcoatEventsRequest(events=[event()] * 1001)
    f = await failure(stub.IngestTrenchcoatEvents(too_many))
    assert_reason(
        f,
        grpc.StatusCode.INVALID_ARGUMENT,
        "BATCH_TOO_LARGE",
        "Batch size exceeds limit of 1000 events per request.",
    )
    assert f.violations == []
    assert await log_types(channel) == []
