"""AdminService: a workspace's retention, quotas and usage."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from agentplane.v1 import admin_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

from service.domain.retention.policy import Limits, Own, Policies, RetentionView
from service.rpc.context import CallContext

Field = Literal["retention_seconds", "retention_bytes", "quota_events_per_day", "quota_stored_bytes"]
_FIELDS: tuple[Field, ...] = (
    "retention_seconds",
    "retention_bytes",
    "quota_events_per_day",
    "quota_stored_bytes",
)


def _timestamp(moment: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(moment)
    return ts


def _own(policy: pb.RetentionPolicy) -> Own:
    return {name: getattr(policy, name) if policy.HasField(name) else None for name in _FIELDS}


def _policy(values: Own) -> pb.RetentionPolicy:
    return pb.RetentionPolicy(**{name: value for name, value in values.items() if value is not None})


def _effective(limits: Limits) -> pb.RetentionPolicy:
    return pb.RetentionPolicy(**{name: getattr(limits, name) for name in _FIELDS})


def retention_pb(view: RetentionView) -> pb.Retention:
    usage = view.usage
    msg = pb.Retention(
        workspace=view.workspace,
        policy=_policy(view.own),
        effective=_effective(view.effective),
        usage=pb.RetentionUsage(
            stored_bytes=usage.stored_bytes,
            events_today=usage.day_events,
            day_resets_at=_timestamp(view.day_resets_at),
            horizon_seq=usage.horizon_seq,
            oldest_seq=usage.horizon_seq + 1,
        ),
    )
    if usage.purged_at is not None:
        msg.usage.purged_at.CopyFrom(_timestamp(usage.purged_at))
    return msg


class AdminServicer:
    service = pb.DESCRIPTOR.services_by_name["AdminService"]

    def __init__(self, policies: Policies) -> None:
        self.policies = policies

    async def GetRetention(self, req: pb.GetRetentionRequest, ctx: CallContext) -> pb.GetRetentionResponse:
        view = await self.policies.view(ctx.workspace)
        return pb.GetRetentionResponse(retention=retention_pb(view))

    async def SetRetention(self, req: pb.SetRetentionRequest, ctx: CallContext) -> pb.SetRetentionResponse:
        view = await self.policies.set(ctx.workspace, _own(req.policy))
        return pb.SetRetentionResponse(retention=retention_pb(view))
