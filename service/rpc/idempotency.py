"""Idempotency keys in the call chain (see service.domain.idempotency).

Which RPCs are writes is decided from the contract, not listed: a unary RPC
whose HTTP binding is not a GET, or, with no binding, whose required scope
is a `write:` one. Streams are not covered (a retried stream is a new one),
nor the API key RPCs (`admin` scope): their answers carry secrets, which are
not stored.

A keyed write runs once per (workspace, RPC, key) within the window: a
retry in this process waits for the first call and gets its answer; a retry
later, or on another replica, reads the answer from the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import cache, partial

from google.api import annotations_pb2
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from google.rpc import status_pb2

from service.base.errors import DomainError
from service.base.periodic import PeriodicTask
from service.codec import fill_free_form
from service.domain import idempotency as rules
from service.domain.apikeys import ADMIN
from service.rpc.auth import required_scope
from service.rpc.context import CallContext
from service.rpc.status import RpcError, from_domain
from service.store import idempotency as rows
from service.store.log import Tx
from service.store.store import Store

log = logging.getLogger("agentplane.idempotency")

Slot = tuple[str, str, str]  # workspace, method, key


@cache
def is_write(md: MethodDescriptor) -> bool:
    """Whether a retry of `md` must not apply twice (see the module's doc)."""
    if md.client_streaming or md.server_streaming:
        return False
    opts = md.GetOptions()
    scope = required_scope(md)
    if scope == ADMIN:
        return False
    if opts.HasExtension(annotations_pb2.http):
        return opts.Extensions[annotations_pb2.http].WhichOneof("pattern") != "get"
    return scope.startswith("write:")


def _now_ms() -> int:
    return int(time.time() * 1000)


class Idempotency:
    def __init__(self, store: Store, window_seconds: float, clock: Callable[[], int] = _now_ms) -> None:
        self.store = store
        self.window_ms = int(window_seconds * 1000)
        self.clock = clock
        # Keyed calls of this process whose answer is not yet stored: a retry
        # waits for the first; the future gives its answer, or None when it
        # wrote nothing (the retry then runs itself).
        self._running: dict[Slot, asyncio.Future[rules.Stored | None]] = {}

    async def call(
        self,
        md: MethodDescriptor,
        request: Message,
        ctx: CallContext,
        impl: Callable[[Message, CallContext], Awaitable[Message]],
        output: type[Message],
    ) -> Message:
        raw = ctx.metadata.get(rules.HEADER)
        if raw is None or not is_write(md):
            return await impl(request, ctx)
        key = rules.checked_key(raw)
        fill_free_form()  # the request as gRPC would carry it, whichever transport brought it
        fingerprint = rules.fingerprint(request.SerializeToString(deterministic=True))
        slot = (ctx.workspace, ctx.method, key)
        while True:
            first = self._running.get(slot)
            if first is not None:
                # The same key is running here: its answer, once known, is ours.
                seen = await asyncio.shield(first)
                if seen is not None:
                    return _replay(rules.replayable(seen, fingerprint), output)
                continue  # it wrote nothing: look again
            now = self.clock()
            stored = await self.store.read(
                partial(rows.find, workspace=ctx.workspace, method=ctx.method, key=key, now_ms=now)
            )
            if slot in self._running:
                continue  # started here while we read
            if stored is not None:
                return _replay(rules.replayable(stored, fingerprint), output)
            return await self._first(slot, request, ctx, impl, fingerprint, now)

    async def _first(
        self,
        slot: Slot,
        request: Message,
        ctx: CallContext,
        impl: Callable[[Message, CallContext], Awaitable[Message]],
        fingerprint: str,
        now: int,
    ) -> Message:
        claim = rows.Claim(*slot, fingerprint, now, now + self.window_ms)
        done: asyncio.Future[rules.Stored | None] = asyncio.get_running_loop().create_future()
        self._running[slot] = done
        token = rows.current.set(claim)
        try:
            answer: Message | RpcError = await impl(request, ctx)
        except DomainError as exc:
            answer = from_domain(exc)
        except RpcError as exc:
            answer = exc
        except BaseException:
            # Cancelled or a bug: if it wrote, a retry learns the answer is lost.
            self._forget(slot, done)
            raise
        finally:
            claim.closed = True
            rows.current.reset(token)
        if isinstance(answer, RpcError):
            if not claim.recorded:  # nothing was written: a retry runs again
                self._forget(slot, done)
                raise answer
            blob, is_error = answer.status.SerializeToString(), True
        else:
            blob, is_error = answer.SerializeToString(), False
        done.set_result(rules.Stored(fingerprint, blob, is_error))
        try:
            # Answered only once the answer is stored too (the next group
            # commit): so an acknowledged write's retry always gets its answer,
            # and only a write whose caller never heard back can be ANSWER_LOST.
            # Retries until then are answered from memory.
            await self.store.write(partial(_store_answer, claim=claim, answer=blob, is_error=is_error))
        except Exception:  # the write is done: its caller gets the answer, a retry ANSWER_LOST
            log.exception("the answer of a keyed write could not be stored")
        finally:
            self._forget(slot, done)
        if isinstance(answer, RpcError):
            raise answer
        return answer

    def _forget(self, slot: Slot, done: asyncio.Future[rules.Stored | None]) -> None:
        if self._running.get(slot) is done:
            del self._running[slot]
        if not done.done():
            done.set_result(None)

    async def sweep(self) -> int:
        """Delete the keys whose window has ended; how many."""
        now = self.clock()
        return await self.store.write(lambda tx: rows.sweep(tx.conn, now))


class KeySweeper(PeriodicTask):
    """Deletes expired idempotency keys (AGENTPLANE_IDEMPOTENCY_SWEEP_SECONDS);
    an expired key is ignored before it is swept anyway."""

    name = "idempotency-key-sweeper"

    def __init__(self, idempotency: Idempotency, interval_seconds: float) -> None:
        self.idempotency = idempotency
        super().__init__(interval_seconds)

    async def run_once(self) -> int:
        return await self.idempotency.sweep()


def _store_answer(tx: Tx, *, claim: rows.Claim, answer: bytes, is_error: bool) -> None:
    rows.store_answer(tx.conn, claim, answer, is_error)


def _replay(stored: rules.Stored, output: type[Message]) -> Message:
    assert stored.answer is not None
    if stored.is_error:
        raise RpcError(status_pb2.Status.FromString(stored.answer))
    return output.FromString(stored.answer)
