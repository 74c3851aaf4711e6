"""Admission control: refuse work fast when the server is full, rather than
queue it until memory runs out.

Two bounds, one per place where work piles up:

- bytes in flight: request bodies being read, decoded and processed, over
  HTTP (the gateway counts Content-Length, or bytes as they arrive) and gRPC
  (the request's size). A decoded 1,000-event batch costs ~10x its JSON in
  Python objects until it is answered, so bytes admitted bound memory;
- the writer's queue: operations waiting for the group commit. A write RPC
  is refused before its servicer runs when the queue is full, so a refused
  request wrote nothing and an admitted one always gets its commit.

Past either bound a call is UNAVAILABLE (HTTP 503) with a RetryInfo (HTTP
`Retry-After`). Large requests admitted are then processed a few at a time
(`ByteBudget.turn`): one decoded batch holds the event loop for tens of
milliseconds between two awaits, and with many in progress at once every
turn of the loop runs several, so whatever else waits (a refusal, a probe,
a small write) waits for all of them. While BURST_BYTES or more are in
flight, small objects come from malloc rather than pymalloc, and once the
burst is over the freed heap is given back to the system (service.base.heap
says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from google.protobuf.descriptor import MethodDescriptor

from service.base import heap
from service.base.errors import CommonReason, Unavailable
from service.rpc.auth import required_scope
from service.rpc.context import CallContext
from service.rpc.dispatch import Interceptor

log = logging.getLogger(__name__)

# What a refused caller is told to wait, in seconds.
RETRY_AFTER_SECONDS = 1
# Bytes in flight from which a burst is on: small objects come from malloc
# until it is over. A quarter of the default budget: the Trenchcoat bench's
# four 200 KB batches at a time stay under it, an overload is over it at once.
BURST_BYTES = 2 * 1024 * 1024
# Bytes of requests since the last trim that make an idle moment worth a trim.
TRIM_AFTER_BYTES = 32 * 1024 * 1024
# How long the server must stay idle (nothing in flight) before it trims.
TRIM_IDLE_SECONDS = 1.0
# Requests of this many bytes or more are processed at most LARGE_AT_ONCE at
# a time, in arrival order, each holding its bytes while it waits. A
# 1,000-event batch (~200 KB) costs ~24 ms of the loop. Under the overload
# bench (1,024 connections posting such batches, 2 cores; 20 s runs back to
# back) refusals took p99 542 / 560 ms with no such bound and 231 / 240 ms
# with 4 at a time, the peak of memory went from 446 / 440 to 345 / 346 MB
# (fewer batches decoded at once), for 4% fewer accepted events/s (fewer
# batches share a commit). 2 at a time cost OTLP ingest over gRPC (4
# clients) a tenth of its rate: a request waiting for its commit holds its
# turn, and 4 leaves room for a commit's worth of them.
LARGE_BYTES = 64 * 1024
LARGE_AT_ONCE = 4


def overloaded(message: str, reason: CommonReason) -> Unavailable:
    return Unavailable(
        f"{message}; retry in {RETRY_AFTER_SECONDS} s",
        reason=reason,
        metadata={"retry_after_seconds": str(RETRY_AFTER_SECONDS)},
    )


class ByteBudget:
    """Bytes of requests in flight, bounded by `limit` (0: unbounded).

    A request larger than the whole budget is still admitted when nothing
    else is in flight (a chunked body: while it is alone), so every request
    the body limit allows can be served."""

    def __init__(self, limit: int, burst_allocator: bool = True) -> None:
        self.limit = limit
        self._burst_allocator = burst_allocator  # off: pymalloc throughout (heap.py explains the switch)
        self.in_flight = 0
        self._since_trim = 0
        self._trim_timer: asyncio.TimerHandle | None = None
        self._bursting = False
        self._large = asyncio.Semaphore(LARGE_AT_ONCE)

    def turn(self, size: int) -> contextlib.AbstractAsyncContextManager[object]:
        """Where a request of `size` bytes, admitted, is processed: for a large
        one, once fewer than LARGE_AT_ONCE others are (see the module's doc)."""
        return self._large if size >= LARGE_BYTES else contextlib.nullcontext()

    def try_acquire(self, size: int, held: int = 0) -> bool:
        """Take `size` more bytes for a request already holding `held`."""
        # Refused bodies count too: the server still read (and dropped) them.
        self._since_trim += size
        if self.limit and self.in_flight > held and self.in_flight + size > self.limit:
            return False
        self.in_flight += size
        if self.in_flight >= BURST_BYTES and not self._bursting and self._burst_allocator:
            self._bursting = True
            heap.burst_begins()
        return True

    def acquire(self, size: int, held: int = 0) -> None:
        """`try_acquire`, or raise UNAVAILABLE."""
        if not self.try_acquire(size, held):
            raise overloaded(
                f"the server is busy: {self.in_flight} bytes of requests in flight",
                CommonReason.SERVER_BUSY,
            )

    def release(self, size: int) -> None:
        self.in_flight -= size
        if (
            self.in_flight == 0
            and (self._bursting or self._since_trim >= TRIM_AFTER_BYTES)
            and self._trim_timer is None
        ):
            self._trim_timer = asyncio.get_running_loop().call_later(TRIM_IDLE_SECONDS, self._trim_if_idle)

    def _trim_if_idle(self) -> None:
        """The burst is over: back to pymalloc, and the heap given back."""
        self._trim_timer = None
        if self.in_flight:
            return  # busy again: the next idle moment trims
        self._since_trim = 0
        started = time.perf_counter()
        self._end_burst()
        heap.give_back()
        log.debug("a burst is over: heap trimmed in %.1f ms", (time.perf_counter() - started) * 1e3)

    def _end_burst(self) -> None:
        if self._bursting:
            self._bursting = False
            heap.burst_ends()

    def close(self) -> None:
        if self._trim_timer is not None:
            self._trim_timer.cancel()
            self._trim_timer = None
        self._end_burst()


def write_queue_gate(depth: Callable[[], int], limit: int) -> Interceptor:
    """An interceptor refusing write RPCs (those needing a `write:` scope)
    while `depth()` operations wait for the writer (0: no limit). It runs
    before the servicer, so a refused call queued nothing."""

    async def gate(ctx: CallContext, method: MethodDescriptor) -> None:
        if limit and depth() >= limit and required_scope(method).startswith("write:"):
            raise overloaded(
                f"the write queue is full ({limit} operations waiting)", CommonReason.WRITE_QUEUE_FULL
            )

    return gate
