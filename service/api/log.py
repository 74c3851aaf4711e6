"""LogService: the event log as a resumable stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from agentplane.v1 import log_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

from service.api import log_render
from service.domain.log_feed import LogFeed
from service.rpc.context import CallContext
from service.store.store import Store


def heartbeat(cursor: int) -> pb.Heartbeat:
    """A stream's keepalive: the position reached, and the server's time
    (WatchLog and the channel streams send the same message)."""
    beat = pb.Heartbeat(cursor=cursor, time=Timestamp())
    beat.time.FromDatetime(datetime.now(UTC))
    return beat


def _heartbeat(cursor: int) -> pb.WatchLogResponse:
    return pb.WatchLogResponse(heartbeat=heartbeat(cursor))


class LogServicer:
    service = pb.DESCRIPTOR.services_by_name["LogService"]

    def __init__(self, store: Store, feed: LogFeed, heartbeat_seconds: float = 15.0) -> None:
        self.store = store
        self.feed = feed
        self.heartbeat_seconds = heartbeat_seconds

    async def WatchLog(self, req: pb.WatchLogRequest, ctx: CallContext) -> AsyncIterator[Any]:
        """Messages, or for an in-process caller that asked (ctx.wire) NDJSON
        chunks or row batches: the same entries, rendered once per row."""
        types, session_id = list(req.types), req.session_id or None
        after = req.after_seq
        if after < 0:
            after = self.store.notifier.head
            yield _heartbeat(after)  # tells the caller where "now" is
        batches: AsyncIterator[Any] = (
            self.feed.catch_up(ctx.workspace, after, types, session_id)
            if req.stop_at_end
            else self.feed.follow(ctx.workspace, after, self.heartbeat_seconds, types, session_id)
        )
        async for batch in batches:
            if isinstance(batch, int):
                yield _heartbeat(batch)
            elif ctx.wire == "ndjson":
                yield log_render.cached(batch, log_render.ndjson_lines, log_render.ndjson_lines)
            elif ctx.wire == "rows":
                yield batch
            else:
                for msg in log_render.responses(batch):
                    yield msg
