"""Seed 004 through the generated gRPC stubs: SessionService, EventService and
LogService, their error codes with google.rpc details, health and reflection."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from agentplane.v1 import log_pb2, log_pb2_grpc, runtime_pb2, runtime_pb2_grpc
from google.protobuf import descriptor_pb2, json_format
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from tests.conftest import Server
from tests.contract.runtime_contract import (
    DM_EVENTS,
    DM_READ_ORDER,
    DM_RESULT_TEXT,
    DM_SESSION_ID,
    DM_SESSION_NAME,
    SEED_CREATE,
    SEED_DELETED_EVENTS,
    SEED_PATCH,
    SERVER_TIME,
    event,
    stored,
)

DOMAIN = "agentplane.dev"
AGENTPLANE_SERVICES = (
    "agentplane.v1.SessionService",
    "agentplane.v1.EventService",
    "agentplane.v1.LogService",
)


@dataclass
class Stubs:
    sessions: runtime_pb2_grpc.SessionServiceStub
    events: runtime_pb2_grpc.EventServiceStub
    log: log_pb2_grpc.LogServiceStub
    channel: grpc.aio.Channel


@pytest.fixture
async def api(server: Server) -> AsyncIterator[Stubs]:
    channel = server.channel()
    try:
        yield Stubs(
            runtime_pb2_grpc.SessionServiceStub(channel),
            runtime_pb2_grpc.EventServiceStub(channel),
            log_pb2_grpc.LogServiceStub(channel),
            channel,
        )
    finally:
        await channel.close()


# ---------------------------------------------------------------- helpers


def ev(body: dict[str, Any]) -> runtime_pb2.Event:
    return json_format.ParseDict(body, runtime_pb2.Event())


def as_dict(msg: Any) -> dict[str, Any]:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def session_dict(msg: runtime_pb2.Session) -> dict[str, Any]:
    """A Session with the JSON view's nulls for unset optional fields."""
    out: dict[str, Any] = {"session_id": msg.session_id, "session_name": msg.session_name}
    out["status"] = msg.status
    out["created_at"] = msg.created_at
    for name in ("project_dir", "agent_name", "last_resumed_at"):
        out[name] = getattr(msg, name) if msg.HasField(name) else None
    return out


def stored_grpc(sent: dict[str, Any]) -> dict[str, Any]:
    """The StoredEvent for `sent` as MessageToDict renders it: null means unset."""
    out = {k: v for k, v in stored(sent).items() if v is not None and k != "id"}
    if "exit_code" in out:
        out["exit_code"] = int(out["exit_code"])
    return out


def stored_event_dicts(events: Any) -> list[dict[str, Any]]:
    out = []
    for e in events:
        assert isinstance(e.id, int) and e.id > 0
        d = as_dict(e)
        d.pop("id")
        out.append(d)
    return out


@dataclass
class Failure:
    code: grpc.StatusCode
    message: str
    info: error_details_pb2.ErrorInfo | None
    violations: list[tuple[str, str]]


async def failure(call: Awaitable[Any]) -> Failure:
    """The status a call fails with, its details read from the trailer."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    err = caught.value
    raw = dict(err.trailing_metadata() or ()).get("grpc-status-details-bin")
    assert raw is not None, "the error carries no google.rpc.Status details"
    status = status_pb2.Status.FromString(raw)
    assert status == rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status.code == err.code().value[0]
    assert status.message == err.details()
    info = None
    violations: list[tuple[str, str]] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            assert info is None, "more than one ErrorInfo"
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations += [(v.field, v.description) for v in bad.field_violations]
    return Failure(err.code(), err.details() or "", info, violations)


def assert_reason(f: Failure, code: grpc.StatusCode, reason: str, message: str | None = None) -> None:
    assert f.code == code, f
    assert f.info is not None, f
    assert f.info.reason == reason
    assert f.info.domain == DOMAIN
    if message is not None:
        assert f.message == message
    else:
        assert f.message


async def snapshot(api: Stubs) -> tuple[Any, ...]:
    sessions = await api.sessions.ListSessions(runtime_pb2.ListSessionsRequest())
    log = [m async for m in api.log.WatchLog(log_pb2.WatchLogRequest(after_seq=0, stop_at_end=True))]
    return (sessions.SerializeToString(deterministic=True), *(m.SerializeToString() for m in log))


async def create(api: Stubs, session_id: str, name: str = "S", **extra: Any) -> runtime_pb2.Session:
    reply = await api.sessions.CreateSession(
        runtime_pb2.CreateSessionRequest(session_id=session_id, session_name=name, **extra)
    )
    assert reply.ok
    return reply.session


async def add(api: Stubs, session_id: str, body: dict[str, Any]) -> None:
    reply = await api.events.AddSessionEvent(
        runtime_pb2.AddSessionEventRequest(session_id=session_id, event=ev(body))
    )
    assert reply == runtime_pb2.AddSessionEventResponse(ok=True)


async def record(api: Stubs, body: dict[str, Any]) -> None:
    reply = await api.events.RecordEvent(runtime_pb2.RecordEventRequest(event=ev(body)))
    assert reply == runtime_pb2.RecordEventResponse(ok=True)


async def status_of(api: Stubs, session_id: str) -> str:
    reply = await api.sessions.GetSessionStatus(runtime_pb2.GetSessionStatusRequest(session_id=session_id))
    return reply.status


# ---------------------------------------------------------------- sessions


async def test_create_get_and_list_sessions(api: Stubs) -> None:
    assert list((await api.sessions.ListSessions(runtime_pb2.ListSessionsRequest())).sessions) == []
    reply = await api.sessions.CreateSession(runtime_pb2.CreateSessionRequest(**SEED_CREATE))
    assert reply.ok
    created = reply.session
    assert session_dict(created) == {
        "session_id": "abc-123",
        "session_name": "My Session",
        "status": "running",
        "created_at": SERVER_TIME,
        "project_dir": "/path/to/project",
        "agent_name": "researcher",
        "last_resumed_at": None,
    }
    bare = await create(api, "bare", "Bare")
    assert not bare.HasField("project_dir") and not bare.HasField("agent_name")
    assert not bare.HasField("last_resumed_at")
    got = await api.sessions.GetSession(runtime_pb2.GetSessionRequest(session_id="abc-123"))
    assert got.session == created
    listed = await api.sessions.ListSessions(runtime_pb2.ListSessionsRequest())
    # newest created_at first
    assert list(listed.sessions) == [bare, created]


async def test_create_existing_session_is_already_exists(api: Stubs) -> None:
    original = await create(api, "abc-123", "My Session")
    before = await snapshot(api)
    f = await failure(create(api, "abc-123", "Other"))
    assert_reason(f, grpc.StatusCode.ALREADY_EXISTS, "SESSION_EXISTS", "Session already exists")
    assert await snapshot(api) == before
    got = await api.sessions.GetSession(runtime_pb2.GetSessionRequest(session_id="abc-123"))
    assert got.session == original


def _not_found_calls(api: Stubs) -> dict[str, Awaitable[Any]]:
    s, e = api.sessions, api.events
    return {
        "GetSession": s.GetSession(runtime_pb2.GetSessionRequest(session_id="nope")),
        "GetSessionResult": s.GetSessionResult(runtime_pb2.GetSessionResultRequest(session_id="nope")),
        "UpdateSessionMetadata": s.UpdateSessionMetadata(
            runtime_pb2.UpdateSessionMetadataRequest(session_id="nope", session_name="x")
        ),
        "DeleteSession": s.DeleteSession(runtime_pb2.DeleteSessionRequest(session_id="nope")),
        "ListSessionEvents": e.ListSessionEvents(runtime_pb2.ListSessionEventsRequest(session_id="nope")),
        "AddSessionEvent": e.AddSessionEvent(
            runtime_pb2.AddSessionEventRequest(
                session_id="nope", event=ev(event("pre_tool", "someone-else", "2025-01-01T00:00:00Z"))
            )
        ),
    }


async def test_unknown_session_is_not_found(api: Stubs, subtests: pytest.Subtests) -> None:
    await create(api, "other")
    before = await snapshot(api)
    for name, call in _not_found_calls(api).items():
        with subtests.test(name):
            f = await failure(call)
            assert_reason(f, grpc.StatusCode.NOT_FOUND, "SESSION_NOT_FOUND", "Session not found")
            assert f.info is not None and dict(f.info.metadata) == {"session_id": "nope"}
            assert await snapshot(api) == before


async def test_session_status(api: Stubs) -> None:
    await create(api, "run")
    await create(api, "fin")
    await add(api, "fin", event("session_stop", "fin", "2025-01-01T00:00:00Z"))
    assert await status_of(api, "run") == "running"
    assert await status_of(api, "fin") == "finished"
    assert await status_of(api, "nope") == "not_existent"


async def test_session_result(api: Stubs) -> None:
    await create(api, "r")
    request = runtime_pb2.GetSessionResultRequest(session_id="r")
    f = await failure(api.sessions.GetSessionResult(request))
    assert_reason(f, grpc.StatusCode.FAILED_PRECONDITION, "SESSION_NOT_FINISHED", "Session not finished")
    await add(api, "r", event("session_stop", "r", "2025-01-01T00:00:09Z"))
    f = await failure(api.sessions.GetSessionResult(request))
    assert_reason(f, grpc.StatusCode.NOT_FOUND, "RESULT_NOT_FOUND", "No result found")
    content = [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]
    await add(api, "r", event("message", "r", "2025-01-01T00:00:02Z", role="assistant", content=content))
    await add(api, "r", event("message", "r", "2025-01-01T00:00:03Z", role="user", content=content[1:]))
    reply = await api.sessions.GetSessionResult(request)
    assert reply == runtime_pb2.GetSessionResultResponse(result="first")


async def test_update_metadata(api: Stubs) -> None:
    original = await create(api, "abc-123", "My Session", project_dir="/path/to/project")
    # nothing set: accepted, nothing changes
    empty = await api.sessions.UpdateSessionMetadata(
        runtime_pb2.UpdateSessionMetadataRequest(session_id="abc-123")
    )
    assert empty == runtime_pb2.UpdateSessionMetadataResponse(ok=True, session=original)
    partial = await api.sessions.UpdateSessionMetadata(
        runtime_pb2.UpdateSessionMetadataRequest(session_id="abc-123", agent_name="a")
    )
    assert session_dict(partial.session) == {**session_dict(original), "agent_name": "a"}
    seed = await api.sessions.UpdateSessionMetadata(
        runtime_pb2.UpdateSessionMetadataRequest(session_id="abc-123", **SEED_PATCH)
    )
    assert seed.ok
    assert session_dict(seed.session) == {**session_dict(original), **SEED_PATCH}
    got = await api.sessions.GetSession(runtime_pb2.GetSessionRequest(session_id="abc-123"))
    assert got.session == seed.session


async def test_delete_session(api: Stubs) -> None:
    await create(api, "abc-123")
    for i in range(SEED_DELETED_EVENTS):
        await add(api, "abc-123", event("pre_tool", "abc-123", f"2025-01-01T00:00:{i:02d}Z"))
    request = runtime_pb2.DeleteSessionRequest(session_id="abc-123")
    reply = await api.sessions.DeleteSession(request)
    assert reply == runtime_pb2.DeleteSessionResponse(
        ok=True,
        session_id="abc-123",
        deleted=runtime_pb2.DeletedCounts(session=True, events_count=SEED_DELETED_EVENTS),
    )
    f = await failure(api.sessions.DeleteSession(request))
    assert_reason(f, grpc.StatusCode.NOT_FOUND, "SESSION_NOT_FOUND", "Session not found")
    legacy = await api.events.ListEvents(runtime_pb2.ListEventsRequest(session_id="abc-123"))
    assert list(legacy.events) == []
    assert await status_of(api, "abc-123") == "not_existent"


# ------------------------------------------------------------------ events


@pytest.mark.parametrize("route", ["AddSessionEvent", "RecordEvent"])
async def test_data_models_examples(api: Stubs, route: str) -> None:
    if route == "AddSessionEvent":
        await create(api, DM_SESSION_ID, DM_SESSION_NAME)
    for example in DM_EVENTS.values():
        await (add(api, DM_SESSION_ID, example) if route == "AddSessionEvent" else record(api, example))
    new = await api.events.ListSessionEvents(runtime_pb2.ListSessionEventsRequest(session_id=DM_SESSION_ID))
    old = await api.events.ListEvents(runtime_pb2.ListEventsRequest(session_id=DM_SESSION_ID))
    assert new.events == old.events
    assert stored_event_dicts(new.events) == [stored_grpc(DM_EVENTS[n]) for n in DM_READ_ORDER]
    ids = [e.id for e in new.events]
    assert len(set(ids)) == len(ids)
    assert "session_name" not in runtime_pb2.StoredEvent.DESCRIPTOR.fields_by_name
    got = await api.sessions.GetSession(runtime_pb2.GetSessionRequest(session_id=DM_SESSION_ID))
    assert got.session.status == "finished"
    if route == "RecordEvent":
        assert got.session.created_at == "2025-11-16T10:30:00.000000Z"
    result = await api.sessions.GetSessionResult(
        runtime_pb2.GetSessionResultRequest(session_id=DM_SESSION_ID)
    )
    assert result.result == DM_RESULT_TEXT


async def test_falsy_values_are_unset_when_read_back(api: Stubs) -> None:
    await create(api, "f")
    sent = event(
        "post_tool", "f", "2025-01-01T00:00:00Z", tool_input={}, tool_output=0, content=[], exit_code=0
    )
    await add(api, "f", sent)
    (got,) = (await api.events.ListSessionEvents(runtime_pb2.ListSessionEventsRequest(session_id="f"))).events
    assert not got.HasField("tool_input") and not got.HasField("tool_output") and not got.HasField("content")
    assert got.HasField("exit_code") and got.exit_code == 0


async def test_legacy_record_event(api: Stubs) -> None:
    await record(api, event("pre_tool", "ghost", "2025-01-01T00:00:00Z"))
    legacy = await api.events.ListEvents(runtime_pb2.ListEventsRequest(session_id="ghost"))
    assert len(legacy.events) == 1
    f = await failure(api.events.ListSessionEvents(runtime_pb2.ListSessionEventsRequest(session_id="ghost")))
    assert_reason(f, grpc.StatusCode.NOT_FOUND, "SESSION_NOT_FOUND", "Session not found")
    empty = await api.events.ListEvents(runtime_pb2.ListEventsRequest(session_id="never"))
    assert list(empty.events) == []
    await record(api, event("session_start", "leg", "2025-06-01T00:00:00Z", session_name="Legacy"))
    got = await api.sessions.GetSession(runtime_pb2.GetSessionRequest(session_id="leg"))
    assert session_dict(got.session) == {
        "session_id": "leg",
        "session_name": "Legacy",
        "status": "running",
        "created_at": "2025-06-01T00:00:00Z",
        "project_dir": None,
        "agent_name": None,
        "last_resumed_at": None,
    }
    await record(api, event("session_stop", "leg", "2025-06-01T00:00:01Z"))
    assert await status_of(api, "leg") == "finished"
    await record(api, event("session_start", "leg", "2025-06-02T00:00:00Z", session_name="Renamed"))
    resumed = await api.sessions.GetSession(runtime_pb2.GetSessionRequest(session_id="leg"))
    assert resumed.session == got.session


# ------------------------------------------------------- invalid arguments

GOOD = event("pre_tool", "s1", "2025-01-01T00:00:00Z", session_name="S")


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD.items() if k != key}


def _invalid_calls(api: Stubs) -> list[tuple[str, Awaitable[Any], str, list[str], str | None]]:
    """(id, call, ErrorInfo reason, violated fields, exact message or None)."""
    s, e = api.sessions, api.events
    add_req = runtime_pb2.AddSessionEventRequest
    rec_req = runtime_pb2.RecordEventRequest
    bad_block = ev(GOOD)
    bad_block.content.append(1)
    cases: list[tuple[str, Awaitable[Any], str, list[str], str | None]] = [
        (
            "CreateSession-no-name",
            s.CreateSession(runtime_pb2.CreateSessionRequest(session_id="new")),
            "MISSING_FIELD",
            ["session_name"],
            None,
        ),
        (
            "CreateSession-no-id",
            s.CreateSession(runtime_pb2.CreateSessionRequest(session_name="N")),
            "MISSING_FIELD",
            ["session_id"],
            None,
        ),
        (
            "CreateSession-empty",
            s.CreateSession(runtime_pb2.CreateSessionRequest()),
            "MISSING_FIELD",
            ["session_id", "session_name"],
            None,
        ),
        (
            "GetSession-no-id",
            s.GetSession(runtime_pb2.GetSessionRequest()),
            "MISSING_FIELD",
            ["session_id"],
            None,
        ),
        (
            "AddSessionEvent-no-event",
            e.AddSessionEvent(add_req(session_id="s1")),
            "MISSING_FIELD",
            ["event"],
            None,
        ),
        ("RecordEvent-no-event", e.RecordEvent(rec_req()), "MISSING_FIELD", ["event"], None),
        (
            "AddSessionEvent-mismatched-id",
            e.AddSessionEvent(add_req(session_id="s1", event=ev({**GOOD, "session_id": "other"}))),
            "INVALID_ARGUMENT",
            ["event.session_id"],
            "Event session_id must match URL session_id",
        ),
        (
            "AddSessionEvent-content-block",
            e.AddSessionEvent(add_req(session_id="s1", event=bad_block)),
            "INVALID_ARGUMENT",
            ["event.content[0]"],
            None,
        ),
        (
            "RecordEvent-content-block",
            e.RecordEvent(rec_req(event=bad_block)),
            "INVALID_ARGUMENT",
            ["event.content[0]"],
            None,
        ),
    ]
    for key in ("event_type", "session_id", "session_name", "timestamp"):
        cases.append(
            (
                f"AddSessionEvent-no-{key}",
                e.AddSessionEvent(add_req(session_id="s1", event=ev(_without(key)))),
                "MISSING_FIELD",
                [f"event.{key}"],
                None,
            )
        )
        cases.append(
            (
                f"RecordEvent-no-{key}",
                e.RecordEvent(rec_req(event=ev(_without(key)))),
                "MISSING_FIELD",
                [f"event.{key}"],
                None,
            )
        )
    return cases


async def test_invalid_arguments_have_field_violations(api: Stubs, subtests: pytest.Subtests) -> None:
    await create(api, "s1", "S")
    await add(api, "s1", GOOD)
    before = await snapshot(api)
    for case, call, reason, fields, message in _invalid_calls(api):
        with subtests.test(case):
            f = await failure(call)
            assert_reason(f, grpc.StatusCode.INVALID_ARGUMENT, reason, message)
            assert [field for field, _ in f.violations] == fields
            assert all(description for _, description in f.violations)
            assert await snapshot(api) == before


# ----------------------------------------------------------------- the log


async def test_watch_log(api: Stubs) -> None:
    created = await create(api, "w")
    await add(api, "w", event("session_stop", "w", "2025-01-01T00:00:00Z", exit_code=0))
    await api.sessions.UpdateSessionMetadata(runtime_pb2.UpdateSessionMetadataRequest(session_id="w"))
    await record(api, event("pre_tool", "ghost", "2025-01-01T00:00:01Z"))
    entries = [
        m.entry async for m in api.log.WatchLog(log_pb2.WatchLogRequest(after_seq=0, stop_at_end=True))
    ]
    assert [e.type for e in entries] == [
        "session.created",
        "session.updated",
        "runtime.event",
        "session.updated",
        "runtime.event",
    ]
    seqs = [e.seq for e in entries]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert len({e.id for e in entries}) == len(entries) and all(entries[i].id for i in range(len(entries)))
    assert {e.workspace for e in entries} == {"default"}
    assert [e.session_id for e in entries] == ["w", "w", "w", "w", "ghost"]
    assert all(e.HasField("recorded_at") and e.recorded_at.seconds > 0 for e in entries)
    assert entries[2].occurred_at == "2025-01-01T00:00:00Z"
    assert json_format.MessageToDict(entries[0].data) == {"session": session_dict(created)}
    assert json_format.MessageToDict(entries[2].data)["event_type"] == "session_stop"
    # after_seq, types and session_id narrow the stream
    tail = [m async for m in api.log.WatchLog(log_pb2.WatchLogRequest(after_seq=seqs[2], stop_at_end=True))]
    assert [m.entry.seq for m in tail] == seqs[3:]
    typed = log_pb2.WatchLogRequest(after_seq=0, stop_at_end=True, types=["runtime.event"], session_id="w")
    assert [m.entry.seq async for m in api.log.WatchLog(typed)] == [seqs[2]]
    # a negative after_seq starts at the end, with a heartbeat carrying that position
    now = [m async for m in api.log.WatchLog(log_pb2.WatchLogRequest(after_seq=-1, stop_at_end=True))]
    assert len(now) == 1 and now[0].WhichOneof("kind") == "heartbeat"
    assert now[0].heartbeat.cursor == seqs[-1]


# ------------------------------------------------------ health, reflection


async def test_health_check_is_serving(api: Stubs) -> None:
    health = health_pb2_grpc.HealthStub(api.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_and_describes_the_services(api: Stubs) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(api.channel)

    async def ask(**kw: Any) -> reflection_pb2.ServerReflectionResponse:
        async def requests() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
            yield reflection_pb2.ServerReflectionRequest(**kw)

        replies = [r async for r in stub.ServerReflectionInfo(requests())]
        assert len(replies) == 1
        return replies[0]

    listed = await ask(list_services="")
    names = {s.name for s in listed.list_services_response.service}
    assert set(AGENTPLANE_SERVICES) | {"grpc.health.v1.Health"} <= names
    for service in AGENTPLANE_SERVICES:
        reply = await ask(file_containing_symbol=service)
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(raw)
            for raw in reply.file_descriptor_response.file_descriptor_proto
        ]
        short = service.rsplit(".", 1)[1]
        assert any(short in {s.name for s in f.service} and f.package == "agentplane.v1" for f in files)
