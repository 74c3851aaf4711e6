"""One reader of new channel messages per process, shared by every stream.

While any stream (or waiting `recv`) is open, the feed wakes on each commit
(the store's notifier: in process, and LISTEN/NOTIFY from other replicas),
reads the messages committed since its last read with ONE query, and keeps
them in a bounded window of recent messages. Each stream follows its own
cursor: inside the window it takes what it needs from memory; behind it (a
new stream from an old cursor, or a reader slower than the window) it pages
from the table, which is the truth. So a send costs one read however many
streams deliver it, and no stream holds more than the window it shares:
a slow reader is paced (it pulls when it can write), never buffered for.
"""

from __future__ import annotations

import asyncio
import contextlib
from bisect import bisect_right
from collections.abc import AsyncIterator, Collection, Mapping

from service.base.errors import ResourceExhausted
from service.domain.agh.reasons import AghReason
from service.store.agh import channels as q
from service.store.agh.channels import MessageRecord
from service.store.store import Store

# Messages per read, catching up or following.
PAGE = 500
# The shared window: at most this many recent messages, and this much JSON.
WINDOW_MESSAGES = 8192
WINDOW_BYTES = 8 * 1024 * 1024
# How often an idle feed re-checks that it still has readers.
_IDLE_CHECK = 5.0


class ChannelFeed:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._items: list[MessageRecord] = []
        self._seqs: list[int] = []
        self._start = 0  # items before it are evicted (compacted now and then)
        self._bytes = 0
        # The window holds every message with floor < seq <= scanned.
        self._floor = 0
        self._scanned = 0
        self._generation = 0
        self._readers = 0
        self._wake = asyncio.Event()
        self._active = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def readers(self) -> int:
        return self._readers

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="channel-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _join(self) -> None:
        if self._readers == 0:
            # Idle until now: start the window at the current end of the log
            # rather than reading what nobody was waiting for.
            self._generation += 1
            self._items, self._seqs, self._start, self._bytes = [], [], 0, 0
            self._floor = self._scanned = self._store.notifier.head
        self._readers += 1
        self._active.set()

    def _leave(self) -> None:
        self._readers -= 1

    def _publish(self) -> None:
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()

    def _append(self, rows: list[MessageRecord]) -> None:
        self._items.extend(rows)
        self._seqs.extend(r.seq for r in rows)
        self._bytes += sum(len(r.body) + len(r.metadata) for r in rows)
        end = len(self._items)
        while self._start < end and (end - self._start > WINDOW_MESSAGES or self._bytes > WINDOW_BYTES):
            evicted = self._items[self._start]
            self._bytes -= len(evicted.body) + len(evicted.metadata)
            self._floor = evicted.seq
            self._start += 1
        if self._start > len(self._items) // 2:
            del self._items[: self._start], self._seqs[: self._start]
            self._start = 0

    async def _run(self) -> None:
        notifier = self._store.notifier
        while True:
            if self._readers == 0:
                self._active.clear()
                await self._active.wait()
                continue
            generation, after = self._generation, self._scanned
            target = notifier.head
            rows = await self._store.read(lambda conn, after=after: q.new_messages(conn, after, PAGE))  # type: ignore[misc]
            if generation != self._generation:
                continue  # reset while reading: start again from the new position
            self._append(rows)
            if len(rows) == PAGE:
                self._scanned = rows[-1].seq
                self._publish()
                continue
            # Everything up to `target` was committed before the read began.
            self._scanned = max(after, target, rows[-1].seq if rows else 0)
            self._publish()
            await notifier.wait_beyond(self._scanned, _IDLE_CHECK)

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
    ) -> AsyncIterator[MessageRecord | int]:
        """The messages of `channel_ids` visible to `session_id` after
        `cursor` (and after the channel's read position, when given), in
        order, for ever; when idle for `heartbeat_seconds`, the seq of the
        last message delivered (an int) instead."""
        positions = read_positions or {}
        delivered = cursor
        self._join()
        try:
            while True:
                wake = self._wake
                if cursor < self._floor:
                    # Behind the window: page from the table.
                    upto, after = self._scanned, cursor
                    page = await self._store.read(
                        lambda conn, after=after: q.messages_of(  # type: ignore[misc]
                            conn, workspace, channel_ids, after, PAGE, visible_to=session_id
                        )
                    )
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
