"""The mechanism under the live feeds (log entries, channel messages): one
reader per process and a bounded window of recent items shared by every
stream.

While any stream is open, the feed wakes on each commit (the store's
notifier: in process, and LISTEN/NOTIFY from other replicas), reads what was
committed since its last read with ONE query (`_read_new`), appends it to
the window and wakes every stream once for the whole batch. Each stream
follows its own cursor: inside the window it takes what it needs from
memory; behind it, it pages from the table, which is the truth. The window
evicts the oldest items past a count or a byte size, so memory is bounded
however many streams share it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from service.store.store import Store

# How often an idle feed re-checks that it still has readers.
_IDLE_CHECK = 5.0


class Sequenced(Protocol):
    @property
    def seq(self) -> int: ...


Item = TypeVar("Item", bound=Sequenced)


class SharedFeed(Generic[Item]):
    def __init__(
        self,
        store: Store,
        name: str,
        *,
        page: int,
        max_items: int,
        max_bytes: int,
        size: Callable[[Item], int],
        coalesce: float = 0.0,
    ) -> None:
        self._store = store
        self._name = name
        self._page_size = page
        # Readers are woken at most once per this many seconds: under a
        # steady write load each then takes (and writes to its socket) what
        # several commits added at once. The feed still reads every commit
        # as it comes, so the window holds what was committed, even if a
        # later write erases it from the table (a deleted session).
        self._coalesce = coalesce
        self._woken_at = 0.0
        self._wake_later: asyncio.TimerHandle | None = None
        self._max_items, self._max_bytes, self._size = max_items, max_bytes, size
        self._items: list[Item] = []
        self._seqs: list[int] = []
        self._start = 0  # items before it are evicted (compacted now and then)
        self._bytes = 0
        # The window holds every item with floor < seq <= scanned.
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
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        if self._wake_later is not None:
            self._wake_later.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _coalescing(self) -> float:
        """The least time (seconds) between two wake-ups of the readers."""
        return self._coalesce

    def _read_new(self, after: int) -> Callable[..., list[Item]]:
        """The read (for Store.read) of up to `page` items with seq > after, oldest first."""
        raise NotImplementedError

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

    def _publish_soon(self) -> None:
        """Wake the readers now, or when the coalescing interval since the last wake ends."""
        if self._wake_later is not None:
            return  # already due
        loop = asyncio.get_running_loop()
        delay = self._woken_at + self._coalescing() - loop.time()
        if delay <= 0:
            self._woken_at = loop.time()
            self._publish()
        else:
            self._wake_later = loop.call_later(delay, self._publish_due)

    def _publish_due(self) -> None:
        self._wake_later = None
        self._woken_at = asyncio.get_running_loop().time()
        self._publish()

    def _append(self, items: list[Item]) -> None:
        size = self._size
        self._items.extend(items)
        self._seqs.extend(i.seq for i in items)
        self._bytes += sum(size(i) for i in items)
        end = len(self._items)
        while self._start < end and (end - self._start > self._max_items or self._bytes > self._max_bytes):
            evicted = self._items[self._start]
            self._bytes -= size(evicted)
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
            # On the primary key and bounded by a page: cheap enough for the loop.
            items = await self._store.read(self._read_new(after))
            if generation != self._generation:
                continue  # reset while reading: start again from the new position
            self._append(items)
            if len(items) == self._page_size:
                self._scanned = items[-1].seq
                self._publish_soon()
                continue
            # Everything up to `target` was committed before the read began.
            self._scanned = max(after, target, items[-1].seq if items else 0)
            self._publish_soon()
            await notifier.wait_beyond(self._scanned, _IDLE_CHECK)
