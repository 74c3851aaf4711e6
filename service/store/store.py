"""The store a running server holds: engines, the writer and the notifier.

Writes go through the group-commit writer (`write`); reads run a function on
a connection (`read`). Both take plain synchronous functions over SQLAlchemy
Core connections, so the SQL is written once. On PostgreSQL they run in
worker threads (one hop per write batch or read, not per statement). On
SQLite they run on the event loop thread: in WAL mode a read never waits for
the writer and takes tens of microseconds, less than a thread hand-over
(measured: 1,700 reads/s through a thread pool, 8,800/s inline). Reads
whose cost grows with the data go to a thread on every backend (`read_apart`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Connection

from service.base.clock import Clock
from service.store import log
from service.store.database import READ_THREADS, Engines, create_engines, libpq_dsn, migrate, normalize_url
from service.store.driver_errors import outage, refused_input
from service.store.notifier import Notifier, PostgresListener
from service.store.writer import Operation, Writer

T = TypeVar("T")


class Store:
    def __init__(self, url: str, clock: Clock | None = None) -> None:
        self.url = normalize_url(url)
        # What stamps log entries and dates quota days; tests move a ManualClock.
        self.clock = clock or Clock()
        self.engines: Engines = create_engines(self.url)
        self.notifier = Notifier()
        self._inline = self.engines.dialect == "sqlite"
        self.writer = Writer(self.engines.write, self.notifier, inline=self._inline, clock=self.clock)
        self._readers = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="agentplane-read")
        self._read_conn: Connection | None = None
        self._listener: PostgresListener | None = None

    def use_clock(self, clock: Clock) -> None:
        """Tell time by `clock` from now on (tests: a ManualClock)."""
        self.clock = self.writer.clock = self.writer.meter.clock = clock

    async def open(self, *, run_migrations: bool = True) -> None:
        if run_migrations:
            await asyncio.to_thread(migrate, self.url)
        if self._inline:
            self._read_conn = self.engines.read.connect()
        self.notifier.publish(await self.read(log.head))
        self.writer.start()
        if self.engines.dialect == "postgresql":
            self._listener = PostgresListener(libpq_dsn(self.url), self.notifier)
            self._listener.start()

    async def close(self) -> None:
        await self.writer.stop()
        if self._listener:
            await self._listener.stop()
        self._readers.shutdown(wait=True)
        if self._read_conn is not None:
            self._read_conn.close()
        self.engines.dispose()

    async def write(self, op: Operation[T]) -> T:
        """Run a write operation in the next group commit; returns after commit."""
        return await self.writer.submit(op)

    def enqueue(self, op: Operation[T]) -> asyncio.Future[T]:
        """Queue a write operation now, in order, for the next group commit;
        the future is done after commit (for callers with many in flight)."""
        return self.writer.enqueue(op)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` on a read connection (one consistent snapshot); a value
        the database refuses is INVALID_ARGUMENT, a database away UNAVAILABLE
        (driver_errors)."""
        try:
            if self._read_conn is not None:
                with self._read_conn.begin():
                    return fn(self._read_conn)
            return await asyncio.get_running_loop().run_in_executor(self._readers, self._read, fn)
        except Exception as exc:
            refused = refused_input(exc)
            if refused is not None:
                raise refused from exc
            down = outage(exc)
            if down is not None:
                raise down.error() from exc
            raise

    async def read_apart(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` on a read connection in a worker thread, also on SQLite:
        for reads whose cost grows with the data (a catch-up page), which
        must not hold up the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._read, fn)

    def _read(self, fn: Callable[[Connection], T]) -> T:
        with self.engines.read.connect() as conn, conn.begin():
            return fn(conn)
