"""The Agent Tracer services through the generated gRPC stubs: the same
calls as the JSON routes, typed, with google.rpc error details."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from agentplane.v1 import tracer_pb2 as pb
from agentplane.v1 import tracer_pb2_grpc
from google.protobuf import struct_pb2

from tests.conftest import Server
from tests.grpc.test_runtime_grpc import assert_reason, failure


@dataclass
class Tracer:
    sessions: tracer_pb2_grpc.TracerSessionServiceStub
    tasks: tracer_pb2_grpc.TracerTaskServiceStub
    ingest: tracer_pb2_grpc.TracerIngestServiceStub


@pytest.fixture
async def api(server: Server) -> AsyncIterator[Tracer]:
    channel = server.channel()
    try:
        yield Tracer(
            tracer_pb2_grpc.TracerSessionServiceStub(channel),
            tracer_pb2_grpc.TracerTaskServiceStub(channel),
            tracer_pb2_grpc.TracerIngestServiceStub(channel),
        )
    finally:
        await channel.close()


async def ensure(api: Tracer, rsid: str = "rs", **fields: object) -> pb.EnsureRuntimeSessionResponse:
    req = pb.EnsureRuntimeSessionRequest(
        runtime_source="codex", runtime_session_id=rsid, title="Port the CLI", **fields
    )
    response: pb.EnsureRuntimeSessionResponse = await api.sessions.EnsureRuntimeSession(req)
    return response


async def test_a_session_over_grpc(api: Tracer) -> None:
    first = await ensure(api, workspace_path="/src/cli/")
    assert (first.task_created, first.session_created) == (True, True)
    assert await ensure(api) == pb.EnsureRuntimeSessionResponse(
        task_id=first.task_id, session_id=first.session_id, task_created=False, session_created=False
    )
    metadata = struct_pb2.Struct()
    metadata.update({"toolName": "Edit", "lines": 3})
    ingested = await api.ingest.IngestConversation(
        pb.IngestConversationRequest(
            events=[
                pb.TracerEventInput(
                    kind="user.message",
                    task_id=first.task_id,
                    lane="user",
                    session_id=first.session_id,
                    body="Port it",
                ),
                pb.TracerEventInput(kind="todo.logged", task_id="missing", lane="todos"),
            ]
        )
    )
    assert len(ingested.accepted) == 1 and ingested.accepted[0].kind == "user.message"
    assert list(ingested.rejected) == [
        pb.TracerRejectedEvent(index=1, code="task_not_found", message="Task not found: missing")
    ]
    tools = await api.ingest.IngestToolActivity(
        pb.IngestToolActivityRequest(
            events=[
                pb.TracerEventInput(
                    kind="tool.used",
                    task_id=first.task_id,
                    lane="implementation",
                    session_id=first.session_id,
                    file_paths=["cli.py"],
                    metadata=metadata,
                )
            ]
        )
    )
    assert [a.kind for a in tools.accepted] == ["tool.used", "file.changed"]
    await api.ingest.IngestTelemetry(
        pb.IngestTelemetryRequest(
            events=[
                pb.TelemetryEventInput(
                    task_id=first.task_id, session_id=first.session_id, input_tokens=7, output_tokens=2
                )
            ]
        )
    )
    await api.sessions.EndRuntimeSession(
        pb.EndRuntimeSessionRequest(
            runtime_source="codex",
            runtime_session_id="rs",
            complete_task=True,
            completion_reason="explicit_exit",
        )
    )

    detail = await api.tasks.GetTask(pb.GetTaskRequest(task_id=first.task_id))
    assert (detail.task.status, detail.task.workspace_path, detail.task.runtime_source) == (
        "completed",
        "/src/cli",
        "codex",
    )
    assert not detail.task.HasField("parent_task_id")
    assert [(s.id, s.status) for s in detail.sessions] == [(first.session_id, "completed")]
    assert (detail.token_usage.input_tokens, detail.token_usage.output_tokens, detail.token_usage.events) == (
        7,
        2,
        1,
    )
    assert [(t.turn_index, t.status, t.asked_text, t.event_count) for t in detail.turns] == [
        (0, "open", "Port it", 4)
    ]

    timeline = await api.tasks.GetTaskTimeline(pb.GetTaskTimelineRequest(task_id=first.task_id, limit=3))
    assert [e.kind for e in timeline.events] == ["task.start", "user.message", "tool.used"]
    assert timeline.HasField("next_cursor")
    rest = await api.tasks.GetTaskTimeline(
        pb.GetTaskTimelineRequest(task_id=first.task_id, cursor=timeline.next_cursor)
    )
    assert [e.kind for e in rest.events] == ["file.changed", "token.usage", "task.complete"]
    assert not rest.HasField("next_cursor")
    edit = timeline.events[2]
    assert dict(edit.metadata) == {
        "toolName": "Edit",
        "lines": 3,
        "filePaths": struct_pb2.ListValue(values=[struct_pb2.Value(string_value="cli.py")]),
    }
    assert (list(edit.paths.file_paths), edit.paths.primary_path, edit.turn_id) == (
        ["cli.py"],
        "cli.py",
        detail.turns[0].id,
    )

    listed = await api.tasks.ListTasks(pb.ListTasksRequest(status=["completed"], runtime_source="codex"))
    assert [t.id for t in listed.tasks] == [first.task_id]
    snapshot = await api.tasks.GetTracerSnapshot(pb.GetTracerSnapshotRequest())
    assert snapshot.stats == pb.TracerTaskStats(total_tasks=1, completed_tasks=1, total_events=6)
    assert [t.id for t in snapshot.tasks] == [first.task_id]


async def test_start_link_complete_error_over_grpc(api: Tracer) -> None:
    started = await api.tasks.StartTask(
        pb.StartTaskRequest(title="Release 2.0", task_id="rel", summary="cut it")
    )
    assert (started.task.slug, started.task.status, [e.kind for e in started.events]) == (
        "release-2-0",
        "running",
        ["task.start"],
    )
    linked = await api.tasks.LinkTask(
        pb.LinkTaskRequest(task_id="rel", task_kind="background", parent_task_id="epic")
    )
    assert (linked.task.task_kind, linked.task.parent_task_id) == ("background", "epic")
    errored = await api.tasks.ErrorTask(pb.ErrorTaskRequest(task_id="rel", error_message="tests red"))
    assert (errored.task.status, errored.session_id, [e.kind for e in errored.events]) == (
        "errored",
        started.session_id,
        ["task.error"],
    )
    completed = await api.tasks.CompleteTask(pb.CompleteTaskRequest(task_id="rel"))
    assert (completed.task.status, completed.HasField("session_id")) == ("completed", False)


async def test_errors_carry_reasons_and_field_violations(api: Tracer) -> None:
    missing = await failure(api.tasks.CompleteTask(pb.CompleteTaskRequest(task_id="nope")))
    assert_reason(missing, grpc.StatusCode.NOT_FOUND, "TASK_NOT_FOUND", "Task not found: nope")
    read = await failure(api.tasks.GetTaskTimeline(pb.GetTaskTimelineRequest(task_id="nope")))
    assert_reason(read, grpc.StatusCode.NOT_FOUND, "TASK_NOT_FOUND", "Task not found")
    required = await failure(api.tasks.ErrorTask(pb.ErrorTaskRequest(task_id="t")))
    assert_reason(required, grpc.StatusCode.INVALID_ARGUMENT, "MISSING_FIELD")
    assert required.violations == [("error_message", "is required")]
    bad = await failure(
        api.ingest.IngestToolActivity(
            pb.IngestToolActivityRequest(
                events=[pb.TracerEventInput(kind="user.message", task_id="t", lane="x")]
            )
        )
    )
    assert_reason(bad, grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_ERROR", "Invalid request body")
    assert [field for field, _ in bad.violations] == ["events.0.kind", "events.0.lane"]
    too_many = await failure(
        api.ingest.IngestEvents(
            pb.IngestEventsRequest(
                events=[pb.TracerEventInput(kind="tool.used", task_id="t", lane="user")] * 101
            )
        )
    )
    assert too_many.violations == [("events", "Array must contain at most 100 element(s)")]
