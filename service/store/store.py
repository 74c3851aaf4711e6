"""The store a running server holds: engines, the writer and the notifier."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from service.store import log
from service.store.database import Engines, create_engines, migrate, normalize_url
from service.store.notifier import Notifier, PostgresListener
from service.store.writer import Operation, T, Writer


class Store:
    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.engines: Engines = create_engines(self.url)
        self.notifier = Notifier()
        self.writer = Writer(self.engines.write, self.notifier)
        self._listener: PostgresListener | None = None

    async def open(self, *, run_migrations: bool = True) -> None:
        if run_migrations:
            await asyncio.to_thread(migrate, self.url)
        async with self.read() as conn:
            self.notifier.publish(await log.head(conn))
        self.writer.start()
        if self.engines.dialect == "postgresql":
            dsn = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
            self._listener = PostgresListener(dsn, self.notifier)
            self._listener.start()

    async def close(self) -> None:
        await self.writer.stop()
        if self._listener:
            await self._listener.stop()
        await self.engines.dispose()

    async def write(self, op: Operation[T]) -> T:
        """Run a write operation in the next group commit; returns after commit."""
        return await self.writer.submit(op)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engines.read.connect() as conn:
            yield conn
