"""`client.log`: agentplane.v1.LogService.WatchLog as a resumable iterator.

A watch yields LogEntry messages in `seq` order and skips heartbeats, but
keeps the position the stream has reached in `cursor` (the last entry's
`seq`, or a heartbeat's cursor, which also covers entries a filter left out).
Watching again with `after_seq=cursor` continues without gaps or duplicates;
with `resume=True` the watch does that itself when the connection drops
(UNAVAILABLE), after a short backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, Generator, Iterable
from types import TracebackType
from typing import TYPE_CHECKING

import grpc
import grpc.aio
from agentplane.v1 import log_pb2 as pb

from agentplane_client._calls import AsyncCalls, SyncCalls
from agentplane_client._errors import error_from_rpc

if TYPE_CHECKING:
    from agentplane.v1.log_pb2_grpc import LogServiceAsyncStub, LogServiceStub

# Reconnect delays with resume=True: doubling from the first to the cap, and
# back to the first once the new stream delivers something.
FIRST_RETRY_DELAY = 0.1
MAX_RETRY_DELAY = 5.0


class _Position:
    """The watch's request and how far it has read: shared by both watches."""

    def __init__(self, request: pb.WatchLogRequest) -> None:
        self.request = request
        self.cursor = request.after_seq
        self.delay = FIRST_RETRY_DELAY

    def next_request(self) -> pb.WatchLogRequest:
        """The request that continues after the cursor."""
        request = pb.WatchLogRequest()
        request.CopyFrom(self.request)
        request.after_seq = self.cursor
        return request

    def take(self, response: pb.WatchLogResponse) -> pb.LogEntry | None:
        """The entry to deliver, or None (a heartbeat, or an entry already seen)."""
        self.delay = FIRST_RETRY_DELAY
        kind = response.WhichOneof("kind")
        if kind == "heartbeat":
            self.cursor = max(self.cursor, response.heartbeat.cursor)
        elif kind == "entry" and response.entry.seq > self.cursor:
            self.cursor = response.entry.seq
            return response.entry
        return None

    def retry_delay(self, err: grpc.RpcError, resume: bool) -> float:
        """How long to wait before reconnecting; raises AgentplaneError if the watch should end."""
        if not (resume and err.code() == grpc.StatusCode.UNAVAILABLE):
            raise error_from_rpc(err) from None
        delay, self.delay = self.delay, min(self.delay * 2, MAX_RETRY_DELAY)
        return delay


def _watch_request(
    after_seq: int, types: Iterable[str], session_id: str | None, stop_at_end: bool
) -> pb.WatchLogRequest:
    return pb.WatchLogRequest(
        after_seq=after_seq, types=list(types), session_id=session_id or "", stop_at_end=stop_at_end
    )


class LogWatch:
    """A blocking iterator of log entries; see `Log.watch`.

    Use it in a `with` block, or call `close()` (from any thread) to end the
    stream; iteration then stops.
    """

    def __init__(self, stub: LogServiceStub, calls: SyncCalls, request: pb.WatchLogRequest, resume: bool):
        self._stub = stub
        self._calls = calls
        self._position = _Position(request)
        self._resume = resume
        self._call: grpc._CallIterator[pb.WatchLogResponse] | None = None
        self._closed = threading.Event()
        self._entries = self._run()

    @property
    def cursor(self) -> int:
        """The position reached: watch again with `after_seq=cursor` to continue.
        Negative (as given) until a stream started with a negative `after_seq`
        reports its position."""
        return self._position.cursor

    def __iter__(self) -> LogWatch:
        return self

    def __next__(self) -> pb.LogEntry:
        if self._closed.is_set():
            raise StopIteration
        return next(self._entries)

    def _run(self) -> Generator[pb.LogEntry, None, None]:
        while not self._closed.is_set():
            self._call = call = self._calls.open_stream(self._stub.WatchLog, self._position.next_request())
            if self._closed.is_set():  # close() ran before this call existed
                call.cancel()
            try:
                for response in call:
                    entry = self._position.take(response)
                    if entry is not None:
                        yield entry
                return
            except grpc.RpcError as err:
                if self._closed.is_set():
                    return
                delay = self._position.retry_delay(err, self._resume)
            finally:
                call.cancel()
            self._closed.wait(delay)  # close() cuts the wait short

    def close(self) -> None:
        """End the stream (cancels the call); safe to call more than once."""
        self._closed.set()
        if self._call is not None:
            self._call.cancel()

    def __enter__(self) -> LogWatch:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncLogWatch:
    """An async iterator of log entries; see `AsyncLog.watch`.

    Use it in an `async with` block, or call `close()` to end the stream.
    """

    def __init__(
        self, stub: LogServiceAsyncStub, calls: AsyncCalls, request: pb.WatchLogRequest, resume: bool
    ):
        self._stub = stub
        self._calls = calls
        self._position = _Position(request)
        self._resume = resume
        self._call: grpc.aio.UnaryStreamCall[pb.WatchLogRequest, pb.WatchLogResponse] | None = None
        self._closed = asyncio.Event()
        self._reading = False  # a task is inside __anext__
        self._entries = self._run()

    @property
    def cursor(self) -> int:
        """The position reached: watch again with `after_seq=cursor` to continue."""
        return self._position.cursor

    def __aiter__(self) -> AsyncLogWatch:
        return self

    async def __anext__(self) -> pb.LogEntry:
        if self._closed.is_set():
            raise StopAsyncIteration
        self._reading = True
        try:
            return await anext(self._entries)
        finally:
            self._reading = False

    async def _run(self) -> AsyncGenerator[pb.LogEntry, None]:
        while not self._closed.is_set():
            self._call = call = self._calls.open_stream(self._stub.WatchLog, self._position.next_request())
            if self._closed.is_set():  # close() ran before this call existed
                call.cancel()
            try:
                async for response in call:
                    entry = self._position.take(response)
                    if entry is not None:
                        yield entry
                return
            except grpc.RpcError as err:
                if self._closed.is_set():
                    return
                delay = self._position.retry_delay(err, self._resume)
            except asyncio.CancelledError:
                # close() from another task cancels the call, which ends its
                # reader this way; a cancellation of the task itself goes on.
                task = asyncio.current_task()
                if self._closed.is_set() and not (task and task.cancelling()):
                    return
                raise
            finally:
                call.cancel()
            with contextlib.suppress(TimeoutError):  # close() cuts the wait short
                await asyncio.wait_for(self._closed.wait(), delay)

    async def close(self) -> None:
        """End the stream (cancels the call); safe to call more than once."""
        self._closed.set()
        if self._call is not None:
            self._call.cancel()
        if not self._reading:  # else the reader's generator ends by itself
            await self._entries.aclose()

    async def __aenter__(self) -> AsyncLogWatch:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class Log:
    """The event log (`client.log`)."""

    def __init__(self, stub: LogServiceStub, calls: SyncCalls) -> None:
        self._stub = stub
        self._calls = calls

    def watch(
        self,
        after_seq: int = 0,
        types: Iterable[str] = (),
        session_id: str | None = None,
        stop_at_end: bool = False,
        *,
        resume: bool = False,
    ) -> LogWatch:
        """Stream log entries with `seq` greater than `after_seq`, oldest first.

        Args:
            after_seq: 0 starts at the beginning; a negative value starts at the
                current end of the log (new entries only).
            types: keep only entries of these types (e.g. "session.created",
                "runtime.event"); empty keeps all.
            session_id: keep only entries of this session.
            stop_at_end: end once caught up instead of following new entries.
            resume: reconnect from `cursor` when the connection drops
                (UNAVAILABLE) instead of raising UnavailableError.

        The call starts at the first iteration and has no deadline (the
        client's timeout does not apply). Errors are raised as AgentplaneError
        while iterating.
        """
        request = _watch_request(after_seq, types, session_id, stop_at_end)
        return LogWatch(self._stub, self._calls, request, resume)


class AsyncLog:
    """The event log (`client.log` of AsyncClient)."""

    def __init__(self, stub: LogServiceAsyncStub, calls: AsyncCalls) -> None:
        self._stub = stub
        self._calls = calls

    def watch(
        self,
        after_seq: int = 0,
        types: Iterable[str] = (),
        session_id: str | None = None,
        stop_at_end: bool = False,
        *,
        resume: bool = False,
    ) -> AsyncLogWatch:
        """Stream log entries with `seq` greater than `after_seq` as an async
        iterator; the arguments are those of `Log.watch`."""
        request = _watch_request(after_seq, types, session_id, stop_at_end)
        return AsyncLogWatch(self._stub, self._calls, request, resume)
