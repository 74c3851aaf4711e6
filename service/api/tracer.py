"""The Agent Tracer family (seed 000): TracerSessionService,
TracerTaskService and TracerIngestService.

The domain speaks upstream's JSON views (camelCase dicts); responses are
built from them with `from_dict`, which takes JSON names, except on the
ingest path, where the few fields of each result are set directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from agentplane.v1 import tracer_pb2 as pb
from google.protobuf.message import Message

from service.codec import from_dict, struct_to_python
from service.domain.tracer import ingest, lifecycle, reads
from service.domain.tracer.model import COMPLETED, ENDPOINT_KINDS, ERRORED
from service.rpc.context import CallContext
from service.store.store import Store

M = TypeVar("M", bound=Message)


def _opt(msg: Message, name: str) -> Any:
    """A proto3 `optional` field's value, or None when absent."""
    return getattr(msg, name) if msg.HasField(name) else None


def _struct(msg: Message, name: str) -> dict[str, Any] | None:
    return struct_to_python(getattr(msg, name)) if msg.HasField(name) else None


class TracerSessionServicer:
    service = pb.DESCRIPTOR.services_by_name["TracerSessionService"]

    def __init__(self, store: Store) -> None:
        self.store = store

    async def EnsureRuntimeSession(
        self, req: pb.EnsureRuntimeSessionRequest, ctx: CallContext
    ) -> pb.EnsureRuntimeSessionResponse:
        ensured = await lifecycle.ensure_session(
            self.store,
            ctx.workspace,
            lifecycle.EnsureSession(
                runtime_source=req.runtime_source,
                runtime_session_id=req.runtime_session_id,
                title=req.title,
                task_id=_opt(req, "task_id"),
                workspace_path=_opt(req, "workspace_path"),
                parent_task_id=_opt(req, "parent_task_id"),
                parent_session_id=_opt(req, "parent_session_id"),
                origin=_opt(req, "origin"),
                resume=_opt(req, "resume"),
            ),
        )
        return pb.EnsureRuntimeSessionResponse(
            task_id=ensured.task_id,
            session_id=ensured.session_id,
            task_created=ensured.task_created,
            session_created=ensured.session_created,
        )

    async def EndRuntimeSession(
        self, req: pb.EndRuntimeSessionRequest, ctx: CallContext
    ) -> pb.EndRuntimeSessionResponse:
        await lifecycle.end_session(
            self.store,
            ctx.workspace,
            lifecycle.EndSession(
                runtime_source=req.runtime_source,
                runtime_session_id=req.runtime_session_id,
                summary=_opt(req, "summary"),
                complete_task=req.complete_task,
                completion_reason=_opt(req, "completion_reason"),
                background_completions=list(req.background_completions),
            ),
        )
        return pb.EndRuntimeSessionResponse(ended=True)


class TracerTaskServicer:
    service = pb.DESCRIPTOR.services_by_name["TracerTaskService"]

    def __init__(self, store: Store) -> None:
        self.store = store

    async def StartTask(self, req: pb.StartTaskRequest, ctx: CallContext) -> pb.StartTaskResponse:
        started = await lifecycle.start_task(
            self.store,
            ctx.workspace,
            lifecycle.StartTask(
                title=req.title,
                task_id=_opt(req, "task_id"),
                workspace_path=_opt(req, "workspace_path"),
                runtime_source=_opt(req, "runtime_source"),
                summary=_opt(req, "summary"),
                task_kind=_opt(req, "task_kind"),
                parent_task_id=_opt(req, "parent_task_id"),
                parent_session_id=_opt(req, "parent_session_id"),
                background_task_id=_opt(req, "background_task_id"),
                metadata=_struct(req, "metadata"),
            ),
        )
        return from_dict(
            {"task": started.task, "sessionId": started.session_id, "events": started.events},
            pb.StartTaskResponse,
        )

    async def LinkTask(self, req: pb.LinkTaskRequest, ctx: CallContext) -> pb.LinkTaskResponse:
        task = await lifecycle.link_task(
            self.store,
            ctx.workspace,
            lifecycle.LinkTask(
                task_id=req.task_id,
                title=_opt(req, "title"),
                task_kind=_opt(req, "task_kind"),
                parent_task_id=_opt(req, "parent_task_id"),
                parent_session_id=_opt(req, "parent_session_id"),
                background_task_id=_opt(req, "background_task_id"),
            ),
        )
        return from_dict({"task": task}, pb.LinkTaskResponse)

    async def _finalize(
        self,
        req: pb.CompleteTaskRequest | pb.ErrorTaskRequest,
        ctx: CallContext,
        outcome: str,
        response: type[M],
        error_message: str | None = None,
    ) -> M:
        done = await lifecycle.finalize_task(
            self.store,
            ctx.workspace,
            req.task_id,
            outcome,
            session_id=_opt(req, "session_id"),
            summary=_opt(req, "summary"),
            metadata=_struct(req, "metadata"),
            error_message=error_message,
        )
        return from_dict(
            {"task": done.task, "sessionId": done.session_id, "events": done.events},
            response,
        )

    async def CompleteTask(self, req: pb.CompleteTaskRequest, ctx: CallContext) -> pb.CompleteTaskResponse:
        return await self._finalize(req, ctx, COMPLETED, pb.CompleteTaskResponse)

    async def ErrorTask(self, req: pb.ErrorTaskRequest, ctx: CallContext) -> pb.ErrorTaskResponse:
        return await self._finalize(req, ctx, ERRORED, pb.ErrorTaskResponse, req.error_message)

    async def ListTasks(self, req: pb.ListTasksRequest, ctx: CallContext) -> pb.ListTasksResponse:
        page = await reads.list_tasks(
            self.store,
            ctx.workspace,
            statuses=list(req.status),
            runtime_source=_opt(req, "runtime_source"),
            text=_opt(req, "q"),
            limit=req.limit,
            cursor=_opt(req, "cursor"),
        )
        return from_dict({"tasks": page.items, "nextCursor": page.next_cursor}, pb.ListTasksResponse)

    async def GetTask(self, req: pb.GetTaskRequest, ctx: CallContext) -> pb.GetTaskResponse:
        return from_dict(await reads.task_detail(self.store, ctx.workspace, req.task_id), pb.GetTaskResponse)

    async def GetTaskTimeline(
        self, req: pb.GetTaskTimelineRequest, ctx: CallContext
    ) -> pb.GetTaskTimelineResponse:
        page = await reads.timeline(
            self.store, ctx.workspace, req.task_id, limit=req.limit, cursor=_opt(req, "cursor")
        )
        return from_dict({"events": page.items, "nextCursor": page.next_cursor}, pb.GetTaskTimelineResponse)

    async def GetTracerSnapshot(
        self, req: pb.GetTracerSnapshotRequest, ctx: CallContext
    ) -> pb.GetTracerSnapshotResponse:
        return from_dict(await reads.snapshot(self.store, ctx.workspace), pb.GetTracerSnapshotResponse)


def event_in(e: pb.TracerEventInput) -> ingest.EventIn:
    """The event as the domain takes it."""
    # Runs for every event of a batch: optional fields are read inline, which
    # costs a fifth of an `_opt` call each.
    has = e.HasField
    effects = e.task_effects if has("task_effects") else None
    return ingest.EventIn(
        kind=e.kind,
        task_id=e.task_id,
        lane=e.lane,
        session_id=e.session_id if has("session_id") else None,
        title=e.title if has("title") else None,
        body=e.body if has("body") else None,
        file_paths=list(e.file_paths),
        metadata=struct_to_python(e.metadata) if has("metadata") else None,
        parent_event_id=e.parent_event_id if has("parent_event_id") else None,
        related_event_ids=list(e.related_event_ids),
        relation_type=e.relation_type if has("relation_type") else None,
        relation_label=e.relation_label if has("relation_label") else None,
        relation_explanation=e.relation_explanation if has("relation_explanation") else None,
        created_at=e.created_at if has("created_at") else None,
        task_status=_opt(effects, "task_status") if effects is not None else None,
        event_id=e.event_id if has("event_id") else None,
    )


_TOKEN_FIELDS = {
    "input_tokens": "inputTokens",
    "output_tokens": "outputTokens",
    "cache_read_tokens": "cacheReadTokens",
    "cache_create_tokens": "cacheCreateTokens",
    "cost_usd": "costUsd",
    "duration_ms": "durationMs",
    "model": "model",
    "prompt_id": "promptId",
}


def _tokens(msg: Message) -> dict[str, Any]:
    """The token fields that are set, by JSON name."""
    return {key: getattr(msg, name) for name, key in _TOKEN_FIELDS.items() if msg.HasField(name)}


def telemetry_in(t: pb.TelemetryEventInput) -> ingest.TelemetryIn:
    return ingest.TelemetryIn(
        task_id=t.task_id,
        kind=_opt(t, "kind"),
        session_id=_opt(t, "session_id"),
        tokens=_tokens(t),
        metadata=_tokens(t.metadata) if t.HasField("metadata") else None,
        created_at=_opt(t, "created_at"),
        event_id=_opt(t, "event_id"),
    )


def _ingest_rpc(endpoint: str, response: type[M]) -> Callable[[Any, Any, CallContext], Awaitable[M]]:
    """An RPC of one event endpoint: the same work, its own kinds and messages."""
    kinds = ENDPOINT_KINDS[endpoint]

    async def rpc(self: TracerIngestServicer, req: Any, ctx: CallContext) -> M:
        if endpoint == "telemetry":
            items = [telemetry_in(t) for t in req.events]
            result = await ingest.ingest_telemetry(self.store, ctx.workspace, items)
        else:
            result = await ingest.ingest_events(
                self.store, ctx.workspace, kinds, [event_in(e) for e in req.events]
            )
        return response(
            accepted=[pb.TracerAcceptedEvent(event_id=i, kind=k, task_id=t) for i, k, t in result.accepted],
            rejected=[pb.TracerRejectedEvent(index=i, code=c, message=m) for i, c, m in result.rejected],
        )

    return rpc


class TracerIngestServicer:
    service = pb.DESCRIPTOR.services_by_name["TracerIngestService"]

    def __init__(self, store: Store) -> None:
        self.store = store

    IngestEvents = _ingest_rpc("events", pb.IngestEventsResponse)
    IngestConversation = _ingest_rpc("conversation", pb.IngestConversationResponse)
    IngestWorkflow = _ingest_rpc("workflow", pb.IngestWorkflowResponse)
    IngestToolActivity = _ingest_rpc("tool-activity", pb.IngestToolActivityResponse)
    IngestCoordination = _ingest_rpc("coordination", pb.IngestCoordinationResponse)
    IngestLifecycle = _ingest_rpc("lifecycle", pb.IngestLifecycleResponse)
    IngestTelemetry = _ingest_rpc("telemetry", pb.IngestTelemetryResponse)
