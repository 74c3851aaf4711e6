"""Wakes watchers of the event log after a commit.

In one process the writer publishes the highest committed `seq`. On
PostgreSQL the writer also sends NOTIFY inside its transaction, and every
replica's listener publishes what it hears, so streams on one replica wake
for writes made through another. The table stays the truth: a wake-up only
says "read again".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)

CHANNEL = "agentplane_log"


class Notifier:
    def __init__(self, head: int = 0) -> None:
        self.head = head
        self._wake = asyncio.Event()

    def publish(self, seq: int) -> None:
        if seq > self.head:
            self.head = seq
            # Swap the event first: waiters that arrive after this see the new head.
            wake, self._wake = self._wake, asyncio.Event()
            wake.set()

    async def wait_beyond(self, seq: int, within: float) -> bool:
        """Wait until something past `seq` is committed; False on timeout."""
        if self.head > seq:
            return True
        wake = self._wake
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), within)
        return self.head > seq


class PostgresListener:
    """LISTENs on the log channel and feeds what it hears to a Notifier."""

    def __init__(self, dsn: str, notifier: Notifier) -> None:
        self._dsn = dsn
        self._notifier = notifier
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pg-listener")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        import psycopg

        delay = 0.2
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.ready.set()
                    delay = 0.2
                    async for note in conn.notifies():
                        with contextlib.suppress(ValueError):
                            self._notifier.publish(int(note.payload))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reconnect: the database may restart
                log.warning("log listener lost its connection (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
