"""ConsoleService: the web console's reads over gRPC and JSON. The console's
records carry the proto messages' field names, so one conversion serves
every message: datetimes become Timestamps, dicts and JSON values Struct or
Value, nested records their messages."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from agentplane.v1 import console_pb2 as pb
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from service.codec import from_dict
from service.domain.console import reads
from service.rpc.context import CallContext
from service.store.console.records import Count, Overview
from service.store.store import Store

M = TypeVar("M", bound=Message)


def to_pb(record: Any, cls: type[M], **extra: Any) -> M:
    """The record as a `cls` message (fields the message lacks are left out)."""
    msg = cls()
    fields = cls.DESCRIPTOR.fields_by_name
    values = (
        {f.name: getattr(record, f.name) for f in dataclasses.fields(record)} if record is not None else {}
    )
    for name, value in {**values, **extra}.items():
        fd = fields.get(name)
        if fd is None or value is None:
            continue
        if fd.type != FieldDescriptor.TYPE_MESSAGE:
            if fd.is_repeated:
                getattr(msg, name).extend(value)
            else:
                setattr(msg, name, value)
            continue
        sub = message_factory.GetMessageClass(fd.message_type)  # type: ignore[arg-type]
        if fd.is_repeated:
            getattr(msg, name).extend(_sub(v, sub) for v in value)
        else:
            getattr(msg, name).CopyFrom(_sub(value, sub))
    return msg


def _sub(value: Any, cls: type[Message]) -> Message:
    if isinstance(value, datetime):
        ts = Timestamp()
        ts.FromDatetime(value)
        return ts
    if isinstance(value, Message):
        return value
    if dataclasses.is_dataclass(value):
        return to_pb(value, cls)
    return from_dict(value, cls)


def _counts(counts: list[Count]) -> list[pb.ConsoleCount]:
    return [pb.ConsoleCount(name=c.name, count=c.count) for c in counts]


def overview_pb(o: Overview, workspace: str, open_streams: int) -> pb.GetConsoleOverviewResponse:
    today, usage = o.today, o.today.usage
    return to_pb(
        o,
        pb.GetConsoleOverviewResponse,
        workspace=workspace,
        running=to_pb(o.running, pb.ConsoleRunning, open_streams=open_streams),
        events_per_minute=[to_pb(None, pb.ConsoleMinuteBucket, start=s, count=n) for s, n in o.per_minute],
        today=to_pb(
            usage,
            pb.ConsoleToday,
            since=today.since,
            errors=sum(c.count for c in today.errors_by_kind),
            errors_by_kind=_counts(today.errors_by_kind),
            rule_failures=today.verdicts.get("contradicted", 0),
            rule_unverifiable=today.verdicts.get("unverifiable", 0),
            rule_passes=today.verdicts.get("verified", 0),
            usage_source=usage.source,
        ),
    )


class ConsoleServicer:
    service = pb.DESCRIPTOR.services_by_name["ConsoleService"]

    def __init__(self, store: Store, open_streams: Callable[[], int] = lambda: 0) -> None:
        self.store = store
        # Live streams open on this process (log watches, channel streams).
        self.open_streams = open_streams

    async def GetConsoleOverview(
        self, req: pb.GetConsoleOverviewRequest, ctx: CallContext
    ) -> pb.GetConsoleOverviewResponse:
        found = await reads.overview(self.store, ctx.workspace, req.recent_limit)
        return overview_pb(found, ctx.workspace, self.open_streams())

    async def ListConsoleSessions(
        self, req: pb.ListConsoleSessionsRequest, ctx: CallContext
    ) -> pb.ListConsoleSessionsResponse:
        query = reads.SessionQuery(
            req.kind, req.status, req.runtime, req.query, req.page_size, req.page_token
        )
        items, token = await reads.list_sessions(self.store, ctx.workspace, query)
        return to_pb(None, pb.ListConsoleSessionsResponse, items=items, next_page_token=token)

    async def GetConsoleTimeline(
        self, req: pb.GetConsoleTimelineRequest, ctx: CallContext
    ) -> pb.GetConsoleTimelineResponse:
        found = await reads.timeline(
            self.store, ctx.workspace, req.kind, req.id, req.page_size, req.page_token
        )
        return to_pb(found, pb.GetConsoleTimelineResponse)

    async def GetConsoleQueue(
        self, req: pb.GetConsoleQueueRequest, ctx: CallContext
    ) -> pb.GetConsoleQueueResponse:
        found = await reads.queue(
            self.store, ctx.workspace, req.state, req.priority, req.page_size, req.page_token
        )
        return to_pb(
            found,
            pb.GetConsoleQueueResponse,
            tasks_by_state=_counts(found.by_state),
            tasks_by_priority=_counts(found.by_priority),
        )

    async def ListConsoleTaskRuns(
        self, req: pb.ListConsoleTaskRunsRequest, ctx: CallContext
    ) -> pb.ListConsoleTaskRunsResponse:
        task, runs, token, at = await reads.task_runs(
            self.store, ctx.workspace, req.task_id, req.page_size, req.page_token
        )
        return to_pb(
            None, pb.ListConsoleTaskRunsResponse, task=task, runs=runs, next_page_token=token, server_time=at
        )

    async def ListConsoleChannels(
        self, req: pb.ListConsoleChannelsRequest, ctx: CallContext
    ) -> pb.ListConsoleChannelsResponse:
        found, token = await reads.list_channels(self.store, ctx.workspace, req.page_size, req.page_token)
        return to_pb(None, pb.ListConsoleChannelsResponse, channels=found, next_page_token=token)

    async def GetConsoleChannel(
        self, req: pb.GetConsoleChannelRequest, ctx: CallContext
    ) -> pb.GetConsoleChannelResponse:
        found, members = await reads.channel(self.store, ctx.workspace, req.channel_id)
        return to_pb(None, pb.GetConsoleChannelResponse, channel=found, members=members)

    async def ListConsoleChannelMessages(
        self, req: pb.ListConsoleChannelMessagesRequest, ctx: CallContext
    ) -> pb.ListConsoleChannelMessagesResponse:
        found, token = await reads.channel_messages(
            self.store, ctx.workspace, req.channel_id, req.page_size, req.page_token
        )
        return to_pb(None, pb.ListConsoleChannelMessagesResponse, messages=found, next_page_token=token)

    async def ListConsoleRules(
        self, req: pb.ListConsoleRulesRequest, ctx: CallContext
    ) -> pb.ListConsoleRulesResponse:
        found, token = await reads.list_rules(self.store, ctx.workspace, req.page_size, req.page_token)
        return to_pb(None, pb.ListConsoleRulesResponse, rules=found, next_page_token=token)

    async def ListConsoleRuleVerdicts(
        self, req: pb.ListConsoleRuleVerdictsRequest, ctx: CallContext
    ) -> pb.ListConsoleRuleVerdictsResponse:
        rule, found, token = await reads.rule_verdicts(
            self.store, ctx.workspace, req.rule_id, req.status, req.page_size, req.page_token
        )
        return to_pb(
            None, pb.ListConsoleRuleVerdictsResponse, rule=rule, verdicts=found, next_page_token=token
        )
