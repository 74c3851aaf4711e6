"""One reader of new channel messages per process, shared by every stream
(and waiting `recv`): a SharedFeed (service/domain/shared_feed.py).

Each stream follows its own cursor: inside the window it takes what it needs from memory; behind it (a
new stream from an old cursor, or a reader slower than the window) it pages
from the table, which is the truth. So a send costs one read however many
streams deliver it, and no stream holds more than the window it shares:
a slow reader is paced (it pulls when it can write), never buffered for.
"""

from __future__ import annotations

import asyncio
import contextlib
from bisect import bisect_right
from collections.abc import AsyncIterator, Callable, Collection, Mapping

from sqlalchemy import Connection

from service.base.errors import ResourceExhausted
from service.domain.agh.reasons import AghReason
from service.domain.shared_feed import SharedFeed
from service.store.agh import channels as q
from service.store.agh.channels import MessageRecord
from service.store.retention.usage import check_cursor, cursor_before_horizon, horizon
from service.store.store import Store

# Messages per read, catching up or following.
PAGE = 500
# The shared window: at most this many recent messages, and this much JSON.
WINDOW_MESSAGES = 8192
WINDOW_BYTES = 8 * 1024 * 1024


class ChannelFeed(SharedFeed[MessageRecord]):
    def __init__(self, store: Store) -> None:
        super().__init__(
            store,
            "channel-feed",
            page=PAGE,
            max_items=WINDOW_MESSAGES,
            max_bytes=WINDOW_BYTES,
            size=lambda m: len(m.body) + len(m.metadata),
        )

    def _read_new(self, after: int) -> Callable[[Connection], list[MessageRecord]]:
        return lambda conn: q.new_messages(conn, after, PAGE)

    def _window(
        self, after: int, workspace: str, channel_ids: Collection[str], session_id: str
    ) -> list[MessageRecord]:
        i = bisect_right(self._seqs, after, lo=self._start)
        return [
            m
            for m in self._items[i:]
            if m.channel_id in channel_ids and m.workspace == workspace and m.visible_to(session_id)
        ]

    async def follow(
        self,
        workspace: str,
        channel_ids: Collection[str],
        session_id: str,
        cursor: int,
        heartbeat_seconds: float,
        read_positions: Mapping[str, int] | None = None,
        *,
        explicit: bool = False,
    ) -> AsyncIterator[MessageRecord | int]:
        """The messages of `channel_ids` visible to `session_id` after
        `cursor` (and after the channel's read position, when given), in
        order, for ever; when idle for `heartbeat_seconds`, the seq of the
        last message delivered (an int) instead.

        Retention: a cursor the caller gave (`explicit`) below the
        workspace's horizon is OUT_OF_RANGE (CURSOR_BEFORE_HORIZON), never a
        silent gap; a read position behind it moves up to it (what retention
        removed is gone for every reader)."""
        positions = read_positions or {}
        removed_through = await self._store.read(lambda conn: horizon(conn, workspace))
        if cursor < removed_through:
            if explicit:
                raise cursor_before_horizon(cursor, removed_through)
            cursor = removed_through
        delivered = cursor
        self._join()
        try:
            while True:
                wake = self._wake
                if cursor < self._floor:
                    # Behind the window: page from the table.
                    upto, after = self._scanned, cursor

                    def read(conn: Connection, after: int = after) -> list[MessageRecord]:
                        page = q.messages_of(conn, workspace, channel_ids, after, PAGE, visible_to=session_id)
                        check_cursor(conn, workspace, after)  # a pass that ran meanwhile: no silent gap
                        return page

                    page = await self._store.read(read)
                    for m in page:
                        cursor = m.seq
                        if m.seq > positions.get(m.channel_id, 0):
                            yield m
                            delivered = m.seq
                    if len(page) < PAGE:
                        cursor = max(cursor, upto)
                    continue
                if self._scanned > cursor:
                    upto = self._scanned
                    batch = self._window(cursor, workspace, channel_ids, session_id)
                    cursor = upto
                    for m in batch:
                        if m.seq > positions.get(m.channel_id, 0):
                            yield m
                            delivered = m.seq
                    continue
                try:
                    # A timer, not wait_for's extra task: every stream waits here on every wake.
                    async with asyncio.timeout(heartbeat_seconds):
                        await wake.wait()
                except TimeoutError:
                    yield delivered
        finally:
            self._leave()


class StreamLimiter:
    """Open streams per API key (per workspace when keys are off)."""

    def __init__(self, max_per_key: int) -> None:
        self.max_per_key = max_per_key
        self._open: dict[str, int] = {}

    @contextlib.contextmanager
    def hold(self, principal: str):  # type: ignore[no-untyped-def]
        count = self._open.get(principal, 0)
        if self.max_per_key and count >= self.max_per_key:
            raise ResourceExhausted(
                f"too many open channel streams: at most {self.max_per_key} per API key; close one and retry",
                reason=AghReason.TOO_MANY_STREAMS,
                metadata={"limit": str(self.max_per_key)},
            )
        self._open[principal] = count + 1
        try:
            yield
        finally:
            left = self._open[principal] - 1
            if left:
                self._open[principal] = left
            else:
                del self._open[principal]
