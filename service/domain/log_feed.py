"""One reader of the event log per process, shared by every follower.

The shape of the channel feed (service/domain/channels/feed.py), for the
log: while any follower is open, the feed wakes on each commit (the store's
notifier: in process, and LISTEN/NOTIFY from other replicas), reads what was
committed since its last read with ONE query, and keeps it in a bounded
window of recent entries; then it wakes every follower once for the whole
batch (coalesced: a follower takes everything new in one step, not one wake
per entry). The window's rows are shared, so each is rendered once per wire
shape, whatever the number of streams (`LogRow.rendered`).

A follower that starts behind the window (a cursor in the past) pages from
the table, which is the truth: one workspace's `(workspace, seq)` range per
page, in a worker thread, so a reader from 0 on a large log neither blocks
the event loop nor costs more than its page. Once it has reached the window
it is live; a live follower that falls behind the window (its consumer
reads slower than the log grows, and the process keeps no more) is ended
with the cursor to resume from, JetStream's slow-consumer rule: memory stays
bounded by the window, and the client reconnects and catches up from the
table. When the server shuts down, `close` ends every stream the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from bisect import bisect_right
from collections.abc import AsyncIterator, Callable, Sequence

from service.domain.errors import ResourceExhausted, Unavailable
from service.store.log_reads import LogRow, read_new, read_range
from service.store.store import Store

# Entries per read, catching up or following.
PAGE = 1000
# A filtered catch-up page looks at most this many positions past its
# cursor, so a filter that rarely matches still costs a bounded page.
SPAN = 20_000
# The shared window: at most this many recent entries, and this much JSON.
WINDOW_ENTRIES = 32_768
WINDOW_BYTES = 32 * 1024 * 1024
# Entries a follower takes from the window at once (one socket write).
BATCH = 1000
# How often an idle feed re-checks that it still has followers.
_IDLE_CHECK = 5.0

Filter = Callable[[LogRow], bool]


def slow_consumer(cursor: int) -> ResourceExhausted:
    return ResourceExhausted(
        f"slow consumer: the stream fell behind what the server keeps; resume after seq {cursor}",
        reason="SLOW_CONSUMER",
        metadata={"resume_after_seq": str(cursor)},
    )


def going_away(cursor: int) -> Unavailable:
    return Unavailable(
        f"the server is shutting down; resume after seq {cursor}",
        reason="SERVER_SHUTTING_DOWN",
        metadata={"resume_after_seq": str(cursor)},
    )


def _filter(workspace: str, types: Sequence[str], session_id: str | None) -> Filter:
    kinds = frozenset(types)
    if not kinds and not session_id:
        return lambda r: r.workspace == workspace
    return lambda r: (
        r.workspace == workspace
        and (not kinds or r.type in kinds)
        and (not session_id or r.session_id == session_id)
    )


class LogFeed:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._rows: list[LogRow] = []
        self._seqs: list[int] = []
        self._start = 0  # rows before it are evicted (compacted now and then)
        self._bytes = 0
        # The window holds every entry with floor < seq <= scanned.
        self._floor = 0
        self._scanned = 0
        self._generation = 0
        self._followers = 0
        self._closing = False
        self._wake = asyncio.Event()
        self._active = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def followers(self) -> int:
        return self._followers

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="log-feed")

    def close(self) -> None:
        """End every stream (with its cursor) and refuse new ones: the server is going away."""
        self._closing = True
        self._publish()

    async def stop(self) -> None:
        self.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _join(self) -> None:
        if self._followers == 0:
            # Idle until now: start the window at the current end of the log
            # rather than reading what nobody was waiting for.
            self._generation += 1
            self._rows, self._seqs, self._start, self._bytes = [], [], 0, 0
            self._floor = self._scanned = self._store.notifier.head
        self._followers += 1
        self._active.set()

    def _leave(self) -> None:
        self._followers -= 1

    def _publish(self) -> None:
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()

    def _append(self, rows: list[LogRow]) -> None:
        for r in rows:
            r.rendered = {}
        self._rows.extend(rows)
        self._seqs.extend(r.seq for r in rows)
        self._bytes += sum(len(r.data) for r in rows)
        end = len(self._rows)
        while self._start < end and (end - self._start > WINDOW_ENTRIES or self._bytes > WINDOW_BYTES):
            evicted = self._rows[self._start]
            self._bytes -= len(evicted.data)
            self._floor = evicted.seq
            self._start += 1
        if self._start > len(self._rows) // 2:
            del self._rows[: self._start], self._seqs[: self._start]
            self._start = 0

    async def _run(self) -> None:
        notifier = self._store.notifier
        while True:
            if self._followers == 0:
                self._active.clear()
                await self._active.wait()
                continue
            generation, after = self._generation, self._scanned
            target = notifier.head
            # On the primary key and bounded by PAGE: cheap enough for the loop.
            rows = await self._store.read(lambda conn, after=after: read_new(conn, after, PAGE))  # type: ignore[misc]
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

    async def _page(
        self, workspace: str, after: int, upto: int, types: Sequence[str], session_id: str | None
    ) -> tuple[list[LogRow], int]:
        """One catch-up page from the table: the rows after `after` (at most
        up to `upto`) and the position the page covers."""
        bound = min(upto, after + SPAN) if types or session_id else upto
        rows = await self._store.read_apart(
            lambda conn: read_range(conn, workspace, after, bound, PAGE, types, session_id)
        )
        return rows, rows[-1].seq if len(rows) == PAGE else bound

    async def catch_up(
        self, workspace: str, after: int, types: Sequence[str] = (), session_id: str | None = None
    ) -> AsyncIterator[list[LogRow]]:
        """The matching entries after `after` up to the end of the log, in
        pages from the table; ends once caught up (the feed is not needed)."""
        notifier = self._store.notifier
        cursor = after
        while cursor < notifier.head:
            if self._closing:
                raise going_away(cursor)
            rows, cursor = await self._page(workspace, cursor, notifier.head, types, session_id)
            if rows:
                yield rows
            await asyncio.sleep(0)  # between pages, the loop serves others
        if self._closing:
            raise going_away(cursor)

    def _window(self, cursor: int, keep: Filter) -> tuple[list[LogRow], int]:
        i = bisect_right(self._seqs, cursor, lo=self._start)
        chunk = self._rows[i : i + BATCH]
        reached = self._scanned if i + BATCH >= len(self._rows) else chunk[-1].seq
        return [r for r in chunk if keep(r)], reached

    async def follow(
        self,
        workspace: str,
        after: int,
        heartbeat_seconds: float,
        types: Sequence[str] = (),
        session_id: str | None = None,
    ) -> AsyncIterator[list[LogRow] | int]:
        """The matching entries after `after`, in order, in batches, for
        ever; when idle for `heartbeat_seconds`, the position reached (an
        int) instead. Raises ResourceExhausted (slow consumer) or Unavailable
        (shutting down) with `resume_after_seq`: everything up to it was
        delivered."""
        keep = _filter(workspace, types, session_id)
        cursor, live = after, False
        self._join()
        try:
            while True:
                if self._closing:
                    raise going_away(cursor)
                wake = self._wake
                if cursor < self._floor:
                    if live:
                        raise slow_consumer(cursor)
                    # Behind the window (a cursor from the past): page from the table.
                    rows, cursor = await self._page(workspace, cursor, self._floor, types, session_id)
                    if rows:
                        yield rows
                    continue
                if self._scanned > cursor:
                    live = True
                    rows, cursor = self._window(cursor, keep)
                    if rows:
                        yield rows
                    continue
                try:
                    # A timer, not wait_for's extra task: every follower waits here on every wake.
                    async with asyncio.timeout(heartbeat_seconds):
                        await wake.wait()
                except TimeoutError:
                    yield cursor
        finally:
            self._leave()
