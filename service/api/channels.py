"""AghChannelService (agents, the AGH family) and ChannelService
(operators, agentplane's own routes): channels over gRPC and JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from agentplane.v1 import agh_pb2
from agentplane.v1 import channels_pb2 as pb
from google.protobuf import struct_pb2

from service.api.agh import operator
from service.api.agh_views import channel_pb, present, timestamp
from service.api.log import heartbeat
from service.codec import from_dict, to_dict, value_to_python
from service.domain.agh.channels import messaging, reading
from service.domain.agh.channels.feed import ChannelFeed, StreamLimiter
from service.domain.agh.channels.message_validation import MISSING
from service.domain.agh.identity import Claimed
from service.rpc.context import CallContext
from service.store.agh.channels import MemberRecord, MessageRecord
from service.store.store import Store


def stream_item_pb(m: MessageRecord) -> pb.StreamChannelMessagesResponse:
    """The message as a stream item, built once per message and shared by
    every stream that delivers it (and never changed after)."""
    if m.rendered is None:
        item = pb.StreamChannelMessagesResponse()
        msg = item.message
        msg.message_id, msg.channel_id, msg.from_session_id, msg.seq = (
            m.message_id,
            m.channel_id,
            m.from_session_id,
            m.seq,
        )
        msg.body.CopyFrom(from_dict(orjson.loads(m.body), struct_pb2.Value))
        msg.metadata.CopyFrom(from_dict(orjson.loads(m.metadata), agh_pb2.AghMessageMetadata))
        msg.timestamp.FromMicroseconds(m.sent_at)
        if m.to_session_id:
            msg.to_session_id = m.to_session_id
        if m.reply_to:
            msg.reply_to_message_id = m.reply_to
        m.rendered = item
    rendered: pb.StreamChannelMessagesResponse = m.rendered
    return rendered


def message_pb(m: MessageRecord) -> pb.AghChannelMessage:
    return stream_item_pb(m).message


def member_pb(m: MemberRecord) -> pb.ChannelMember:
    return pb.ChannelMember(
        session_id=m.session_id,
        agent_name=m.agent_name,
        read_seq=m.read_seq,
        **present(joined_at=timestamp(m.joined_at or None), last_seen_at=timestamp(m.last_seen_at or None)),
    )


def _body(req: Any) -> Any:
    return value_to_python(req.body) if req.HasField("body") else MISSING


def _metadata(req: Any) -> dict[str, Any] | None:
    if not req.HasField("metadata"):
        return None
    return to_dict(req.metadata, proto_names=True, omit_unset=True)


def _post(req: Any) -> messaging.Post:
    return messaging.Post(body=_body(req), metadata=_metadata(req), idempotency_key=req.idempotency_key)


class AghChannelServicer:
    service = pb.DESCRIPTOR.services_by_name["AghChannelService"]

    def __init__(
        self, store: Store, feed: ChannelFeed, limiter: StreamLimiter, heartbeat_seconds: float
    ) -> None:
        self.store = store
        self.feed = feed
        self.limiter = limiter
        self.heartbeat_seconds = heartbeat_seconds

    async def ListAgentChannels(
        self, req: pb.ListAgentChannelsRequest, ctx: CallContext
    ) -> pb.ListAgentChannelsResponse:
        found = await reading.agent_channels(self.store, ctx.workspace, Claimed.of(ctx.metadata))
        return pb.ListAgentChannelsResponse(channels=[channel_pb(c, ctx.workspace) for c in found])

    async def SendChannelMessage(
        self, req: pb.SendChannelMessageRequest, ctx: CallContext
    ) -> pb.SendChannelMessageResponse:
        sent = await messaging.send(
            self.store, ctx.workspace, Claimed.of(ctx.metadata), req.channel, _post(req)
        )
        return pb.SendChannelMessageResponse(message=message_pb(sent))

    async def ReplyChannelMessage(
        self, req: pb.ReplyChannelMessageRequest, ctx: CallContext
    ) -> pb.ReplyChannelMessageResponse:
        spec = messaging.Reply(
            reply_to_message_id=req.reply_to_message_id,
            body=_body(req),
            metadata=_metadata(req) or None,
            idempotency_key=req.idempotency_key,
        )
        sent = await messaging.reply(self.store, ctx.workspace, Claimed.of(ctx.metadata), spec)
        return pb.ReplyChannelMessageResponse(message=message_pb(sent))

    async def RecvChannelMessages(
        self, req: pb.RecvChannelMessagesRequest, ctx: CallContext
    ) -> pb.RecvChannelMessagesResponse:
        spec = reading.Recv(
            channel=req.channel,
            wait=req.wait,
            limit=req.limit if req.HasField("limit") else None,
            after_seq=req.after_seq if req.HasField("after_seq") else None,
            wait_seconds=req.wait_seconds,
        )
        found = await reading.recv(
            self.store,
            self.feed,
            ctx.workspace,
            Claimed.of(ctx.metadata),
            spec,
            give_up_in=ctx.time_remaining,
        )
        return pb.RecvChannelMessagesResponse(messages=[message_pb(m) for m in found])

    async def StreamChannelMessages(
        self, req: pb.StreamChannelMessagesRequest, ctx: CallContext
    ) -> AsyncIterator[pb.StreamChannelMessagesResponse]:
        spec = reading.StreamSpec(
            channels=(req.channel, *req.also_channels),
            after_seq=req.after_seq if req.HasField("after_seq") else None,
        )
        principal = ctx.key_id or f"workspace:{ctx.workspace}"
        items = reading.stream(
            self.store,
            self.feed,
            self.limiter,
            principal,
            ctx.workspace,
            Claimed.of(ctx.metadata),
            spec,
            self.heartbeat_seconds,
        )
        try:
            async for item in items:
                if isinstance(item, int):
                    yield pb.StreamChannelMessagesResponse(heartbeat=heartbeat(item))
                else:
                    yield stream_item_pb(item)
        finally:
            await items.aclose()  # type: ignore[attr-defined]

    async def AckChannelMessages(
        self, req: pb.AckChannelMessagesRequest, ctx: CallContext
    ) -> pb.AckChannelMessagesResponse:
        position = await reading.ack(
            self.store, ctx.workspace, Claimed.of(ctx.metadata), req.channel, req.seq
        )
        return pb.AckChannelMessagesResponse(channel_id=req.channel, seq=position)


class ChannelServicer:
    service = pb.DESCRIPTOR.services_by_name["ChannelService"]

    def __init__(self, store: Store) -> None:
        self.store = store

    async def CreateChannel(self, req: pb.CreateChannelRequest, ctx: CallContext) -> pb.CreateChannelResponse:
        spec = messaging.NewChannel(
            id=req.id,
            display_name=req.display_name,
            allowed_message_kinds=tuple(req.allowed_message_kinds),
            workflow_id=req.workflow_id,
        )
        channel = await messaging.create_channel(self.store, ctx.workspace, spec, operator(ctx))
        return pb.CreateChannelResponse(channel=channel_pb(channel, ctx.workspace))

    async def ListChannels(self, req: pb.ListChannelsRequest, ctx: CallContext) -> pb.ListChannelsResponse:
        found, token = await reading.list_channels(self.store, ctx.workspace, req.page_size, req.page_token)
        return pb.ListChannelsResponse(
            channels=[channel_pb(c, ctx.workspace) for c in found], next_page_token=token
        )

    async def PostChannelMessage(
        self, req: pb.PostChannelMessageRequest, ctx: CallContext
    ) -> pb.PostChannelMessageResponse:
        sent = await messaging.send(self.store, ctx.workspace, None, req.channel, _post(req))
        return pb.PostChannelMessageResponse(message=message_pb(sent))

    async def ListChannelMessages(
        self, req: pb.ListChannelMessagesRequest, ctx: CallContext
    ) -> pb.ListChannelMessagesResponse:
        found, after = await reading.list_messages(
            self.store, ctx.workspace, req.channel, req.after_seq, req.limit
        )
        return pb.ListChannelMessagesResponse(messages=[message_pb(m) for m in found], next_after_seq=after)

    async def ListChannelMembers(
        self, req: pb.ListChannelMembersRequest, ctx: CallContext
    ) -> pb.ListChannelMembersResponse:
        found = await reading.members(self.store, ctx.workspace, req.channel)
        return pb.ListChannelMembersResponse(members=[member_pb(m) for m in found])
