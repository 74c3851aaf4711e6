"""Group commit: one writer runs every write operation.

Callers submit an operation (a plain function taking a `Tx`); the writer
runs the operations that are waiting in one transaction, each inside its own
SAVEPOINT so that one failing operation
undoes only itself, commits once, and only then answers each caller. So
every acknowledged write is durable, many small writes share one fsync, and
SQLite never sees two writers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, text

from service.base import metrics
from service.base.clock import Clock
from service.base.errors import CommonReason, DomainError, Unavailable
from service.store import idempotency
from service.store.driver_errors import Outage, outage, refused_input
from service.store.log import Tx
from service.store.notifier import CHANNEL, Notifier
from service.store.retention.usage import Meter

log = logging.getLogger(__name__)

T = TypeVar("T")
Operation = Callable[[Tx], T]
Outcome = tuple[Any, BaseException | None]
# A batch being applied: pauses after each operation, then returns the open
# connection, each operation's outcome and the last seq appended.
Applying = Generator[None, None, tuple[Connection, list[Outcome], int]]

# Serialises log appends across PostgreSQL replicas, so commit order is `seq`
# order and a reader at cursor N never sees N+2 before N+1.
_LOG_LOCK_KEY = 0x6167656E74  # "agent"

# Event loop turns the writer lets pass between taking the first waiting
# operation and taking the rest. A request whose bytes have arrived reaches
# the queue within a few turns (HTTP parse, ASGI task, body, gateway,
# servicer); letting them arrive puts it in this batch instead of the next
# one, so one commit serves more operations. A turn with nothing to do takes
# microseconds. Measured (SQLite, 2 cores): queue cycles over HTTP ~950 ->
# ~1,200/s, unary gRPC tool calls 821 -> ~960/s.
GATHER_TURNS = 5
# How long an inline batch runs operations before it lets the loop take a turn.
SLICE_SECONDS = 0.01


def _as_domain_error(exc: Exception) -> Exception:
    """A value the database refuses is bad input, a full disk or a database
    away is UNAVAILABLE; neither is a server fault."""
    if isinstance(exc, DomainError):
        return exc
    refused = refused_input(exc)
    if refused is not None:
        return refused
    down = outage(exc)
    if down is not None:
        return down.error()
    log.error("write operation failed", exc_info=exc)
    return exc


class Writer:
    def __init__(
        self,
        engine: Engine,
        notifier: Notifier,
        *,
        inline: bool,
        max_batch: int = 512,
        clock: Clock | None = None,
    ) -> None:
        """`inline`: run each batch on the event loop thread (SQLite, where a
        batch takes a few milliseconds and thread hand-overs cost more than
        the work); otherwise on a writer thread (PostgreSQL's round trips).
        `clock` stamps the entries and dates the quota day."""
        self._engine = engine
        self.clock = clock or Clock()
        # Per-workspace usage and quotas (service.store.retention.usage).
        self.meter = Meter(self.clock)
        self._inline = inline
        self._notifier = notifier
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[Operation[Any], asyncio.Future[Any]]] = asyncio.Queue()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentplane-writer")
        self._task: asyncio.Task[None] | None = None
        self._postgres = engine.dialect.name == "postgresql"
        self._closing = False
        # The outage the last batch met (full disk, database away), and how many
        # batches it refused: logged once when it starts and once when it ends.
        self._outage: Outage | None = None
        self._refused_batches = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit-writer")

    async def stop(self) -> None:
        """Finish every operation already submitted, then stop."""
        self._closing = True
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._thread.shutdown(wait=True)

    def depth(self) -> int:
        """Operations queued and not yet taken into a batch."""
        return self._queue.qsize()

    async def submit(self, op: Operation[T]) -> T:
        return await self.enqueue(op)

    def enqueue(self, op: Operation[T]) -> asyncio.Future[T]:
        """Queue `op` now (operations run in the order queued); the future is
        done once its transaction has committed."""
        if self._closing:
            raise Unavailable("the server is shutting down", reason=CommonReason.SHUTTING_DOWN)
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((idempotency.guarded(op), fut))  # records the call's idempotency key
        return fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            for _ in range(GATHER_TURNS):
                await asyncio.sleep(0)
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            live = [(op, fut) for op, fut in batch if not fut.cancelled()]
            ops = [op for op, _ in live]
            started = time.perf_counter()
            try:
                if self._inline:
                    # The operations run here; only the COMMIT (the fsync, which
                    # releases the GIL) goes to the thread, so the loop keeps
                    # serving requests, which then form the next batch.
                    conn, outcomes, last_seq = await self._apply_sliced(ops)
                    try:
                        await loop.run_in_executor(self._thread, conn.commit)
                    finally:
                        conn.close()
                else:
                    outcomes, last_seq = await loop.run_in_executor(self._thread, self._commit, ops)
                metrics.count_commit(len(ops), time.perf_counter() - started)
                self._recovered()
            except Exception as exc:
                failure = self._failed(exc)
                failure.__cause__ = exc
                outcomes, last_seq = [(None, failure)] * len(live), 0
            for (_, fut), (result, error) in zip(live, outcomes, strict=True):
                if fut.done():
                    continue
                if error is None:
                    fut.set_result(result)
                else:
                    fut.set_exception(error)
            if last_seq:
                self._notifier.publish(last_seq)
            for _ in range(len(batch)):
                self._queue.task_done()
            # Not kept while waiting for the next batch: its operations hold their rows.
            del batch, live, ops, outcomes

    def _failed(self, exc: Exception) -> Unavailable:
        """The error every operation of a batch that could not commit gets
        (nothing of it was applied): UNAVAILABLE, with Retry-After when the
        disk is full or the database away. One log line per outage, not per batch."""
        down = outage(exc)
        metrics.writer_failures[down.reason.value if down else CommonReason.COMMIT_FAILED.value] += 1
        if down is None:
            log.exception("commit failed")
            return Unavailable("the write could not be committed; retry", reason=CommonReason.COMMIT_FAILED)
        if self._outage is None or self._outage.reason is not down.reason:
            log.error(
                "writes refused (503 / UNAVAILABLE) until the database can write again: %s (%s)",
                "the disk is full"
                if down.reason is CommonReason.DISK_FULL
                else "the database is unavailable",
                down.detail,
            )
        self._outage = down
        self._refused_batches += 1
        return down.error()

    def _recovered(self) -> None:
        if self._outage is not None:
            log.warning(
                "writes succeed again (%d batches were refused: %s)",
                self._refused_batches,
                self._outage.reason.value,
            )
            self._outage, self._refused_batches = None, 0

    def _commit(self, ops: list[Operation[Any]]) -> tuple[list[Outcome], int]:
        """Run `ops` in one transaction and commit it (in the writer thread)."""
        conn, outcomes, last_seq = self._apply(ops)
        try:
            conn.commit()
        finally:
            conn.close()
        return outcomes, last_seq

    def _apply(self, ops: list[Operation[Any]]) -> tuple[Connection, list[Outcome], int]:
        """Run `ops` in a new transaction, each in its own savepoint; the caller
        commits the returned connection (or closes it, which rolls back)."""
        steps = self._applying(ops)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value

    async def _apply_sliced(self, ops: list[Operation[Any]]) -> tuple[Connection, list[Outcome], int]:
        """`_apply` on the event loop's thread, letting the loop run between
        operations every SLICE_SECONDS: a batch of heavy operations (1,000-event
        ingests take ~30 ms each) would otherwise stall every other request,
        refusals of an overloaded server included, for the whole batch."""
        steps = self._applying(ops)
        until = time.perf_counter() + SLICE_SECONDS
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value
            if time.perf_counter() >= until:
                await asyncio.sleep(0)
                until = time.perf_counter() + SLICE_SECONDS

    def _applying(self, ops: list[Operation[Any]]) -> Applying:
        """`_apply`'s steps: it pauses after each operation."""
        outcomes: list[Outcome] = []
        conn = self._engine.connect()
        try:
            conn.begin()
            tx = Tx(conn, clock=self.clock)
            metered = self.meter.batch(tx)
            if self._postgres:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOG_LOCK_KEY})
            # Savepoints straight on the driver's cursor: through SQLAlchemy
            # (begin_nested) they cost more than the operation itself.
            cursor = tx.cursor
            for op in ops:
                mark = len(tx.appended)
                tx.usage, tx.unmetered = {}, False
                cursor.execute("SAVEPOINT op")
                try:
                    result = op(tx)
                    metered.charge(tx)  # past a quota: refused whole, like any failed operation
                    outcomes.append((result, None))
                    cursor.execute("RELEASE SAVEPOINT op")
                except Exception as exc:
                    cursor.execute("ROLLBACK TO SAVEPOINT op")
                    cursor.execute("RELEASE SAVEPOINT op")
                    del tx.appended[mark:]
                    outcomes.append((None, _as_domain_error(exc)))
                yield
            metered.flush()
            last_seq = max(tx.appended, default=0)
            if self._postgres and last_seq:
                conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": str(last_seq)})
        except BaseException:
            conn.close()
            raise
        return conn, outcomes, last_seq
