"""SessionService and EventService: the Agent Runtime family (seed 004)."""

from __future__ import annotations

from typing import Any

from agentplane.v1 import runtime_pb2 as pb

from service.codec import from_dict, to_dict
from service.domain.runtime import sessions as runtime
from service.rpc.context import CallContext
from service.store.sessions import SessionRecord
from service.store.store import Store


def session_pb(record: SessionRecord) -> pb.Session:
    return pb.Session(**{k: v for k, v in record.as_dict().items() if v is not None})


def _optional(msg: pb.UpdateSessionMetadataRequest | pb.CreateSessionRequest, name: str) -> str | None:
    return getattr(msg, name) if msg.HasField(name) else None  # type: ignore[arg-type]


class SessionServicer:
    service = pb.DESCRIPTOR.services_by_name["SessionService"]

    def __init__(self, store: Store) -> None:
        self.store = store

    async def ListSessions(self, req: pb.ListSessionsRequest, ctx: CallContext) -> pb.ListSessionsResponse:
        records = await runtime.list_sessions(self.store, ctx.workspace)
        return pb.ListSessionsResponse(sessions=[session_pb(r) for r in records])

    async def CreateSession(self, req: pb.CreateSessionRequest, ctx: CallContext) -> pb.CreateSessionResponse:
        record = await runtime.create_session(
            self.store,
            ctx.workspace,
            req.session_id,
            req.session_name,
            _optional(req, "project_dir"),
            _optional(req, "agent_name"),
        )
        return pb.CreateSessionResponse(ok=True, session=session_pb(record))

    async def GetSession(self, req: pb.GetSessionRequest, ctx: CallContext) -> pb.GetSessionResponse:
        record = await runtime.get_session(self.store, ctx.workspace, req.session_id)
        return pb.GetSessionResponse(session=session_pb(record))

    async def GetSessionStatus(
        self, req: pb.GetSessionStatusRequest, ctx: CallContext
    ) -> pb.GetSessionStatusResponse:
        return pb.GetSessionStatusResponse(
            status=await runtime.session_status(self.store, ctx.workspace, req.session_id)
        )

    async def GetSessionResult(
        self, req: pb.GetSessionResultRequest, ctx: CallContext
    ) -> pb.GetSessionResultResponse:
        return pb.GetSessionResultResponse(
            result=await runtime.session_result(self.store, ctx.workspace, req.session_id)
        )

    async def UpdateSessionMetadata(
        self, req: pb.UpdateSessionMetadataRequest, ctx: CallContext
    ) -> pb.UpdateSessionMetadataResponse:
        changes = {f: _optional(req, f) for f in ("session_name", "project_dir", "agent_name")}
        record = await runtime.update_metadata(
            self.store, ctx.workspace, req.session_id, {k: v for k, v in changes.items() if v is not None}
        )
        return pb.UpdateSessionMetadataResponse(ok=True, session=session_pb(record))

    async def DeleteSession(self, req: pb.DeleteSessionRequest, ctx: CallContext) -> pb.DeleteSessionResponse:
        count = await runtime.delete_session(self.store, ctx.workspace, req.session_id)
        return pb.DeleteSessionResponse(
            ok=True, session_id=req.session_id, deleted=pb.DeletedCounts(session=True, events_count=count)
        )


class EventServicer:
    service = pb.DESCRIPTOR.services_by_name["EventService"]

    def __init__(self, store: Store) -> None:
        self.store = store

    def _event(self, event: pb.Event) -> dict[str, Any]:
        """The event as the domain takes it."""
        return to_dict(event)

    async def _events(
        self, ctx: CallContext, session_id: str, *, require_session: bool
    ) -> list[pb.StoredEvent]:
        entries = await runtime.list_events(
            self.store, ctx.workspace, session_id, require_session=require_session
        )
        # Absent and null both read as null in JSON; on gRPC they stay unset.
        views = ({k: v for k, v in runtime.stored_view(e).items() if v is not None} for e in entries)
        return [from_dict(v, pb.StoredEvent) for v in views]

    async def ListSessionEvents(
        self, req: pb.ListSessionEventsRequest, ctx: CallContext
    ) -> pb.ListSessionEventsResponse:
        return pb.ListSessionEventsResponse(
            events=await self._events(ctx, req.session_id, require_session=True)
        )

    async def ListEvents(self, req: pb.ListEventsRequest, ctx: CallContext) -> pb.ListEventsResponse:
        return pb.ListEventsResponse(events=await self._events(ctx, req.session_id, require_session=False))

    async def AddSessionEvent(
        self, req: pb.AddSessionEventRequest, ctx: CallContext
    ) -> pb.AddSessionEventResponse:
        await runtime.add_event(self.store, ctx.workspace, req.session_id, self._event(req.event))
        return pb.AddSessionEventResponse(ok=True)

    async def RecordEvent(self, req: pb.RecordEventRequest, ctx: CallContext) -> pb.RecordEventResponse:
        await runtime.record_event(self.store, ctx.workspace, self._event(req.event))
        return pb.RecordEventResponse(ok=True)
