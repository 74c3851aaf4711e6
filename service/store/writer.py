"""Group commit: one writer task runs every write operation.

Callers submit an operation (a coroutine function taking a `Tx`); the writer
runs the operations that are waiting in one transaction, each inside its own
SAVEPOINT so that one failing operation undoes only itself, commits once,
and only then answers each caller. So every acknowledged write is durable,
many small writes share one fsync, and SQLite never sees two writers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.domain.errors import DomainError, Unavailable
from service.store.log import Tx
from service.store.notifier import CHANNEL, Notifier

log = logging.getLogger(__name__)

T = TypeVar("T")
Operation = Callable[[Tx], Awaitable[T]]

# Serialises log appends across PostgreSQL replicas, so commit order is `seq`
# order and a reader at cursor N never sees N+2 before N+1.
_LOG_LOCK_KEY = 0x6167656E74  # "agent"


class Writer:
    def __init__(self, engine: AsyncEngine, notifier: Notifier, *, max_batch: int = 256) -> None:
        self._engine = engine
        self._notifier = notifier
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[Operation[Any], asyncio.Future[Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._postgres = engine.dialect.name == "postgresql"
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit-writer")

    async def stop(self) -> None:
        """Finish every operation already submitted, then stop."""
        self._closing = True
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def submit(self, op: Operation[T]) -> T:
        if self._closing:
            raise Unavailable("the server is shutting down", reason="SHUTTING_DOWN")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((op, fut))
        return await fut

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[tuple[Operation[Any], asyncio.Future[Any]]]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        tx: Tx | None = None
        try:
            async with self._engine.begin() as conn:
                tx = Tx(conn)
                if self._postgres:
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOG_LOCK_KEY})
                for op, fut in batch:
                    if fut.cancelled():
                        continue
                    mark = len(tx.appended)
                    try:
                        async with conn.begin_nested():
                            result = await op(tx)
                        outcomes.append((fut, result, None))
                    except Exception as exc:
                        del tx.appended[mark:]
                        if not isinstance(exc, DomainError):
                            log.exception("write operation failed")
                        outcomes.append((fut, None, exc))
                if self._postgres and tx.appended:
                    await conn.execute(
                        text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": str(tx.appended[-1])}
                    )
        except Exception as exc:
            log.exception("commit failed")
            failure = Unavailable("the write could not be committed; retry", reason="COMMIT_FAILED")
            failure.__cause__ = exc
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(failure)
            return
        for fut, result, error in outcomes:
            if fut.done():
                continue
            if error is None:
                fut.set_result(result)
            else:
                fut.set_exception(error)
        if tx is not None and tx.appended:
            self._notifier.publish(max(tx.appended))
