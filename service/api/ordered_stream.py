"""Answering a bidirectional stream in request order while many requests are
in flight: a stream that waited for each answer before reading the next
request would commit one write per group commit; this one lets the writer
batch a whole window of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import TypeVar

Req = TypeVar("Req")
Resp = TypeVar("Resp")

# Requests read ahead of the oldest unanswered one; the reader then waits,
# which pushes back on the caller through gRPC flow control.
WINDOW = 64


async def answer_in_order(
    requests: AsyncIterator[Req], handle: Callable[[Req], Awaitable[Resp]], window: int = WINDOW
) -> AsyncIterator[Resp]:
    """`handle(request)` is called as each request is read, so whatever it
    starts (queues writes) starts in request order; the answers it returns
    are awaited and yielded in that order too. A handler should turn expected
    failures into an answer: an exception ends the stream."""
    pending: asyncio.Queue[Awaitable[Resp] | None] = asyncio.Queue()
    room = asyncio.Semaphore(window)

    async def read() -> None:
        try:
            async for request in requests:
                pending.put_nowait(handle(request))
                await room.acquire()  # at most `window` answers outstanding
        finally:
            pending.put_nowait(None)

    reader = asyncio.create_task(read())
    try:
        while (answer := await pending.get()) is not None:
            yield await answer
            room.release()
        await reader  # the request stream's own error, if it ended with one
    finally:
        reader.cancel()
        while not pending.empty():  # answers no one will read
            left = pending.get_nowait()
            if isinstance(left, Coroutine):
                left.close()
