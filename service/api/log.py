"""LogService: the event log as a resumable stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from agentplane.v1 import log_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

from service.rpc.context import CallContext
from service.store import log
from service.store.store import Store

# Entries read per query while catching up.
PAGE = 500


def entry_pb(entry: log.LogEntry) -> pb.LogEntry:
    msg = pb.LogEntry(
        seq=entry.seq,
        id=entry.event_id,
        type=entry.type,
        workspace=entry.workspace,
        session_id=entry.session_id or "",
        occurred_at=entry.occurred_at or "",
    )
    msg.recorded_at.FromDatetime(entry.recorded_at)
    msg.data.update(entry.data)
    return msg


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

    def __init__(self, store: Store, heartbeat_seconds: float = 15.0) -> None:
        self.store = store
        self.heartbeat_seconds = heartbeat_seconds

    async def WatchLog(self, req: pb.WatchLogRequest, ctx: CallContext) -> AsyncIterator[pb.WatchLogResponse]:
        notifier = self.store.notifier
        # `scanned`: every committed entry up to here has been looked at.
        types, session_id = list(req.types), req.session_id or None
        scanned = notifier.head if req.after_seq < 0 else req.after_seq
        if req.after_seq < 0:
            yield _heartbeat(scanned)  # tells the caller where "now" is
        while True:
            # Everything up to `target` is committed, so one read sees all of it.
            target = notifier.head
            page = await self.store.read(
                lambda conn, after=scanned: log.read_after(  # type: ignore[misc]
                    conn, after, limit=PAGE, workspace=ctx.workspace, types=types, session_id=session_id
                )
            )
            for entry in page:
                yield pb.WatchLogResponse(entry=entry_pb(entry))
            if len(page) == PAGE:
                scanned = page[-1].seq
                continue
            scanned = max(scanned, target, page[-1].seq if page else 0)
            if req.stop_at_end:
                return
            if not await notifier.wait_beyond(scanned, self.heartbeat_seconds):
                yield _heartbeat(scanned)
