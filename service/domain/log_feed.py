"""One reader of the event log per process, shared by every follower: a
SharedFeed (service/domain/shared_feed.py), as the channel feed is. While
any follower is open, the feed reads what each commit added with ONE query
into a bounded window of recent entries, then wakes every follower once for
the whole batch (coalesced: a follower takes everything new in one step, not
one wake per entry). The window's rows are shared, so each is rendered once per wire
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
from bisect import bisect_right
from collections.abc import AsyncIterator, Callable, Iterable, Sequence

from sqlalchemy import Connection

from service.base.errors import CommonReason, ResourceExhausted, Unavailable
from service.domain.shared_feed import SharedFeed
from service.store.log_reads import LogRow, read_new, read_range
from service.store.retention.usage import check_cursor
from service.store.store import Store

# Entries per read, catching up or following.
PAGE = 1000
# A filtered catch-up page looks at most this many positions past its
# cursor, so a filter that rarely matches still costs a bounded page.
SPAN = 20_000
# The shared window: at most this many recent entries, and this much JSON
# (counted twice: the data, and the NDJSON line made of it).
WINDOW_ENTRIES = 32_768
WINDOW_BYTES = 16 * 1024 * 1024
# Under a steady write load followers are woken at most every
# COALESCE_PER_FOLLOWER seconds times their number, capped at COALESCE_MAX:
# a wake-up costs each follower a step (and a socket write) however little
# it carries, so however many they are, the feed makes about a thousand
# follower steps a second, and a wake-up of many followers carries many
# commits. The first commit after a quiet spell is delivered at once.
COALESCE_PER_FOLLOWER = 0.001
COALESCE_MAX = 0.1
# Entries (and JSON bytes) a follower takes from the window at once (one socket write).
BATCH = 1000
BATCH_BYTES = 1024 * 1024

Filter = Callable[[LogRow], bool]


def slow_consumer(cursor: int) -> ResourceExhausted:
    return ResourceExhausted(
        f"slow consumer: the stream fell behind what the server keeps; resume after seq {cursor}",
        reason=CommonReason.SLOW_CONSUMER,
        metadata={"resume_after_seq": str(cursor)},
    )


def going_away(cursor: int) -> Unavailable:
    return Unavailable(
        f"the server is shutting down; resume after seq {cursor}",
        reason=CommonReason.SERVER_SHUTTING_DOWN,
        metadata={"resume_after_seq": str(cursor)},
    )


class Batch(list[LogRow]):
    """Entries handed to followers at once; `rendered` as on LogRow (shared
    by the followers that take the same batch)."""

    rendered: dict[object, object]

    def __init__(self, rows: Iterable[LogRow] = ()) -> None:
        super().__init__(rows)
        self.rendered = {}


def _filter(workspace: str, kinds: frozenset[str], session_id: str | None) -> Filter:
    if not kinds and not session_id:
        return lambda r: r.workspace == workspace
    return lambda r: (
        r.workspace == workspace
        and (not kinds or r.type in kinds)
        and (not session_id or r.session_id == session_id)
    )


class LogFeed(SharedFeed[LogRow]):
    def __init__(self, store: Store) -> None:
        super().__init__(
            store,
            "log-feed",
            page=PAGE,
            max_items=WINDOW_ENTRIES,
            max_bytes=WINDOW_BYTES,
            size=lambda r: 2 * len(r.data),
        )
        self._closing = False
        # Idle followers' heartbeats: one timer wakes them all now and then
        # (see _on_tick), rather than a timer per follower armed on every wait.
        self._tick = float("inf")
        self._ticker: asyncio.TimerHandle | None = None
        # Batches made since the last read, by (cursor, filter): see _window.
        self._batches: dict[tuple[int, tuple[str, frozenset[str], str | None]], tuple[Batch, int]] = {}

    def _coalescing(self) -> float:
        return min(COALESCE_MAX, COALESCE_PER_FOLLOWER * self.readers)

    def _read_new(self, after: int) -> Callable[[Connection], list[LogRow]]:
        return lambda conn: read_new(conn, after, PAGE)

    def _join(self) -> None:
        self._batches.clear()  # (a reset of the window makes them stale)
        super()._join()

    def _append(self, items: list[LogRow]) -> None:
        for r in items:
            r.rendered = {}  # shared by every stream: rendered once (service.api.log_render)
        super()._append(items)
        self._batches.clear()

    def _beat(self, heartbeat_seconds: float) -> None:
        """Wake every follower at least every quarter of `heartbeat_seconds`,
        so each sends its heartbeat within a quarter of its time."""
        tick = heartbeat_seconds / 4
        if tick < self._tick:
            self._tick = tick
            if self._ticker is not None:
                self._ticker.cancel()
            self._ticker = asyncio.get_running_loop().call_later(tick, self._on_tick)

    def _on_tick(self) -> None:
        if self.readers == 0:
            self._ticker, self._tick = None, float("inf")
            return
        self._publish()
        self._ticker = asyncio.get_running_loop().call_later(self._tick, self._on_tick)

    def close(self) -> None:
        """End every stream (with its cursor): the server is going away."""
        self._closing = True
        self._publish()

    async def stop(self) -> None:
        self.close()
        if self._ticker is not None:
            self._ticker.cancel()
        await super().stop()

    async def _page(
        self, workspace: str, after: int, upto: int, types: Sequence[str], session_id: str | None
    ) -> tuple[list[LogRow], int]:
        """One catch-up page from the table: the rows after `after` (at most
        up to `upto`) and the position the page covers."""
        bound = min(upto, after + SPAN) if types or session_id else upto

        def read(conn: Connection) -> list[LogRow]:
            rows = read_range(conn, workspace, after, bound, PAGE, types, session_id)
            check_cursor(conn, workspace, after)  # retention removed what follows `after`: no silent gap
            return rows

        rows = await self._store.read_apart(read)
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

    def _window(self, cursor: int, key: tuple[str, frozenset[str], str | None]) -> tuple[Batch, int]:
        """The next batch after `cursor` for followers with filter `key`.
        Followers keep pace together, so most ask for the same batch: it is
        made once per publish and shared (and so is what is rendered of it)."""
        found = self._batches.get((cursor, key))
        if found is not None:
            return found
        i = bisect_right(self._seqs, cursor, lo=self._start)
        chunk = self._items[i : i + BATCH]
        size = 0
        for n, r in enumerate(chunk):
            size += len(r.data)
            if size > BATCH_BYTES and n:
                chunk = chunk[:n]  # what a stalled consumer holds stays small
                break
        reached = self._scanned if i + len(chunk) >= len(self._items) else chunk[-1].seq
        keep = _filter(*key)
        found = self._batches[(cursor, key)] = (Batch(r for r in chunk if keep(r)), reached)
        return found

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
        key = (workspace, frozenset(types), session_id)
        cursor, live = after, False
        self._join()
        self._beat(heartbeat_seconds)
        clock = asyncio.get_running_loop().time
        quiet_since = clock()
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
                        quiet_since = clock()
                    continue
                if self._scanned > cursor:
                    live = True
                    rows, cursor = self._window(cursor, key)
                    if rows:
                        yield rows
                        quiet_since = clock()
                    continue
                if clock() - quiet_since >= heartbeat_seconds:
                    yield cursor
                    quiet_since = clock()
                await wake.wait()
        finally:
            self._leave()
