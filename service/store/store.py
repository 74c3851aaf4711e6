"""The store a running server holds: engines, the writer and the notifier.

Writes go through the group-commit writer (`write`); reads run a function on
a pooled connection in a worker thread (`read`). Both take plain synchronous
functions over SQLAlchemy Core connections, so the SQL is written once and
the event loop makes one hop per write batch or read, not one per statement.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Connection

from service.store import log
from service.store.database import READ_THREADS, Engines, create_engines, libpq_dsn, migrate, normalize_url
from service.store.notifier import Notifier, PostgresListener
from service.store.writer import Operation, Writer

T = TypeVar("T")


class Store:
    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.engines: Engines = create_engines(self.url)
        self.notifier = Notifier()
        self.writer = Writer(self.engines.write, self.notifier)
        self._readers = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="agentplane-read")
        self._listener: PostgresListener | None = None

    async def open(self, *, run_migrations: bool = True) -> None:
        if run_migrations:
            await asyncio.to_thread(migrate, self.url)
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
        self.engines.dispose()

    async def write(self, op: Operation[T]) -> T:
        """Run a write operation in the next group commit; returns after commit."""
        return await self.writer.submit(op)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` on a read connection (one consistent snapshot)."""
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._read, fn)

    def _read(self, fn: Callable[[Connection], T]) -> T:
        with self.engines.read.connect() as conn, conn.begin():
            return fn(conn)
