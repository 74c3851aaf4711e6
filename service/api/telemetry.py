"""TelemetryService: usage per session, task and workspace, and the stored
telemetry records (what the OTLP receiver wrote)."""

from __future__ import annotations

from agentplane.v1 import telemetry_pb2 as pb

from service.domain.telemetry import usage
from service.domain.telemetry.usage import SessionUsage
from service.rpc.context import CallContext
from service.store.store import Store
from service.store.telemetry.queries import UsageRow


def _usage(u: UsageRow) -> pb.Usage:
    return pb.Usage(
        cost_usd=u.cost_usd,
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        cache_read_tokens=u.cache_read_tokens,
        cache_creation_tokens=u.cache_creation_tokens,
        api_requests=u.api_requests,
        api_errors=u.api_errors,
    )


def _session(s: SessionUsage) -> pb.SessionUsage:
    row = s.session
    counters = pb.SessionCounters()
    for name, value in row.counters.items():
        if name != "records":
            setattr(counters, name, value)
    return pb.SessionUsage(
        session_id=row.session_id,
        runtime=row.runtime,
        task_id=s.task_id or "",
        monitor_session_id=s.monitor_session_id or "",
        model=row.model or "",
        usage=_usage(row.usage),
        counters=counters,
        first_seen_at=row.first_seen_at,
        last_seen_at=row.last_seen_at,
        records=int(row.counters["records"]),
    )


class TelemetryServicer:
    service = pb.DESCRIPTOR.services_by_name["TelemetryService"]

    def __init__(self, store: Store) -> None:
        self.store = store

    async def GetSessionUsage(
        self, req: pb.GetSessionUsageRequest, ctx: CallContext
    ) -> pb.GetSessionUsageResponse:
        found = await usage.session_usage(self.store, ctx.workspace, req.session_id)
        return pb.GetSessionUsageResponse(session=_session(found))

    async def GetTaskUsage(self, req: pb.GetTaskUsageRequest, ctx: CallContext) -> pb.GetTaskUsageResponse:
        total, sessions = await usage.task_usage(self.store, ctx.workspace, req.task_id)
        return pb.GetTaskUsageResponse(
            task_id=req.task_id, usage=_usage(total), sessions=[_session(s) for s in sessions]
        )

    async def GetWorkspaceUsage(
        self, req: pb.GetWorkspaceUsageRequest, ctx: CallContext
    ) -> pb.GetWorkspaceUsageResponse:
        total, today, day, sessions = await usage.workspace_usage(self.store, ctx.workspace)
        return pb.GetWorkspaceUsageResponse(
            total=_usage(total), today=_usage(today), day=day, sessions=sessions
        )

    async def ListTelemetryRecords(
        self, req: pb.ListTelemetryRecordsRequest, ctx: CallContext
    ) -> pb.ListTelemetryRecordsResponse:
        entries, token = await usage.list_records(
            self.store,
            ctx.workspace,
            session_id=req.session_id,
            kinds=list(req.kinds),
            page_size=req.page_size,
            page_token=req.page_token,
        )
        reply = pb.ListTelemetryRecordsResponse(next_page_token=token)
        for e in entries:
            record = reply.records.add(
                seq=e.seq,
                kind=e.type.removeprefix("telemetry."),
                session_id=e.session_id or "",
                occurred_at=e.occurred_at or "",
            )
            record.data.update(e.data)
        return reply
