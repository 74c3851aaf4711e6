"""The call chain every RPC goes through, over gRPC or in process.

The gRPC server and the gateway's in-process transport both call
`Dispatcher.unary` / `Dispatcher.stream`, so the same steps run whichever
way a call arrives: the registered interceptors (auth, limits), the check of
fields the proto marks REQUIRED, the request rewriters (redaction), the
servicer, and the one mapping of errors to google.rpc.Status.
"""

from __future__ import annotations

import keyword
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import grpc
from google.api import field_behavior_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from service.base import metrics
from service.base.errors import CommonReason, DomainError, FieldViolation, InvalidArgument
from service.codec import otlp_values
from service.rpc.context import CallContext
from service.rpc.limits import check_limits
from service.rpc.status import RpcError, from_domain, simple

log = logging.getLogger(__name__)


class KeyedWrites(Protocol):
    """What the dispatcher asks of idempotency keys (service.rpc.idempotency):
    run a unary call, replaying its first answer when the call is a retry."""

    async def call(
        self,
        md: MethodDescriptor,
        request: Message,
        ctx: CallContext,
        impl: Callable[[Message, CallContext], Awaitable[Message]],
        output: type[Message],
    ) -> Message: ...


# An interceptor sees the context and the method before the servicer does;
# it may fill the context (the caller's workspace) or raise a DomainError.
Interceptor = Callable[[CallContext, MethodDescriptor], Awaitable[None]]
# A rewriter sees each request after the interceptors and the REQUIRED check
# and may change it in place (redaction: service.rpc.redaction).
Rewriter = Callable[[MethodDescriptor, Message], None]


@dataclass(frozen=True)
class Method:
    path: str
    descriptor: MethodDescriptor
    input: type[Message]
    output: type[Message]
    impl: Callable[..., Any]
    # The RPC's full name (`agentplane.v1.EventService.AddSessionEvent`), the metrics' label.
    name: str

    @property
    def server_streaming(self) -> bool:
        return bool(self.descriptor.server_streaming)

    @property
    def client_streaming(self) -> bool:
        return bool(self.descriptor.client_streaming)


def method_path(md: MethodDescriptor) -> str:
    return f"/{md.containing_service.full_name}/{md.name}"


def _is_required(fd: FieldDescriptor) -> bool:
    return field_behavior_pb2.REQUIRED in fd.GetOptions().Extensions[field_behavior_pb2.field_behavior]


@cache
def _required(md: Descriptor) -> tuple[tuple[FieldDescriptor, bool], ...]:
    """(field, is required) for the fields worth checking: the REQUIRED ones,
    and the singular message fields whose type has REQUIRED fields inside."""
    return tuple(
        (fd, _is_required(fd))
        for fd in md.fields
        if _is_required(fd)
        or (fd.type == FieldDescriptor.TYPE_MESSAGE and not fd.is_repeated and _has_required(fd.message_type))
    )


def _has_required(md: Descriptor | None, seen: frozenset[str] = frozenset()) -> bool:
    """Whether a message type has REQUIRED fields, itself or in singular message
    fields (recursive types are followed once)."""
    if md is None or md.full_name in seen:
        return False
    seen = seen | {md.full_name}
    return any(
        _is_required(fd)
        or (
            fd.type == FieldDescriptor.TYPE_MESSAGE
            and not fd.is_repeated
            and _has_required(fd.message_type, seen)
        )
        for fd in md.fields
    )


def missing_required(msg: Message, prefix: str = "") -> list[FieldViolation]:
    found: list[FieldViolation] = []
    for fd, required in _required(msg.DESCRIPTOR):
        path = f"{prefix}{fd.name}"
        if fd.type == FieldDescriptor.TYPE_MESSAGE and not fd.is_repeated:
            if msg.HasField(fd.name):
                found += missing_required(getattr(msg, fd.name), f"{path}.")
            elif required:
                found.append(FieldViolation(path, "is required"))
        elif required:
            value = getattr(msg, fd.name)
            if (fd.is_repeated and len(value) == 0) or (
                not fd.is_repeated and fd.type == FieldDescriptor.TYPE_STRING and value == ""
            ):
                found.append(FieldViolation(path, "is required"))
    return found


# The quick test of each message type: True when nothing REQUIRED is missing.
_COMPLETE: dict[str, Callable[[Any], bool]] = {}


def _complete(md: Any) -> Callable[[Any], bool]:
    """Straight-line code testing what `missing_required` walks (one expression
    per field worth checking), compiled once per message type: the walk, which
    names what is missing, runs only when this says something is."""
    found = _COMPLETE.get(md.full_name)
    if found is not None:
        return found
    terms = []
    for fd, required in _required(md):
        name = fd.name
        value = f"msg.{name}" if not keyword.iskeyword(name) else f"getattr(msg, {name!r})"
        sub: Any = fd.message_type
        if fd.type == FieldDescriptor.TYPE_MESSAGE and not fd.is_repeated:
            inner = f"C({sub.full_name!r})({value})"
            terms.append(f"({inner} if msg.HasField({name!r}) else {not required})")
        elif fd.is_repeated:
            terms.append(f"len({value}) > 0")
        elif fd.type == FieldDescriptor.TYPE_STRING:
            terms.append(f"{value} != ''")
    env: dict[str, Any] = {"C": lambda name: _COMPLETE[name]}
    exec(f"def complete(msg):\n    return {' and '.join(terms) or 'True'}\n", env)
    _COMPLETE[md.full_name] = env["complete"]
    for fd, _ in _required(md):  # nested types after this one: recursive types end here
        if fd.type == FieldDescriptor.TYPE_MESSAGE and not fd.is_repeated:
            _complete(fd.message_type)
    return _COMPLETE[md.full_name]


def check_required(msg: Message) -> None:
    """INVALID_ARGUMENT (reason MISSING_FIELD) if `msg` lacks a REQUIRED field;
    a bidirectional stream's servicer calls it on each message it takes."""
    if _complete(msg.DESCRIPTOR)(msg):
        return
    violations = missing_required(msg)
    if violations:
        raise InvalidArgument(
            "missing required field"
            + ("s: " if len(violations) > 1 else ": ")
            + ", ".join(v.field for v in violations),
            reason=CommonReason.MISSING_FIELD,
            violations=violations,
        )


def _to_rpc_error(exc: BaseException, path: str) -> RpcError:
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, DomainError):
        return from_domain(exc)
    log.exception("unexpected error in %s", path, exc_info=exc)
    return simple(grpc.StatusCode.INTERNAL, "internal error")


# gRPC status codes by number, as the metrics name them.
_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


class _StreamCount:
    """A stream open now (metrics.open_streams), counted by its end's code when it ends."""

    __slots__ = ("code", "rpc")

    def __init__(self, rpc: str) -> None:
        self.rpc = rpc
        self.code = "OK"

    def __enter__(self) -> _StreamCount:
        metrics.open_streams["grpc"] += 1
        return self

    def failed(self, err: RpcError) -> RpcError:
        self.code = _CODE_NAMES.get(err.code, "UNKNOWN")
        return err

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is not None and not issubclass(kind, Exception):
            self.code = "CANCELLED"  # the client left, or the server is stopping
        metrics.count_rpc(self.rpc, self.code, None)
        metrics.open_streams["grpc"] -= 1  # last: a scrape that sees it closed sees it counted


class Dispatcher:
    # Idempotency keys on writes (service.rpc.idempotency), when set.
    idempotency: KeyedWrites | None = None

    def __init__(
        self,
        servicers: Sequence[object],
        interceptors: Sequence[Interceptor] = (),
        rewriters: Sequence[Rewriter] = (),
    ) -> None:
        self.interceptors = list(interceptors)
        self.rewriters = list(rewriters)
        self.methods: dict[str, Method] = {}
        self.services: list[ServiceDescriptor] = []
        for servicer in servicers:
            sd: ServiceDescriptor = servicer.service  # type: ignore[attr-defined]
            self.services.append(sd)
            for md in sd.methods:
                impl = getattr(servicer, md.name, None)
                if impl is None:
                    raise TypeError(f"{type(servicer).__name__} does not implement {md.full_name}")
                self.methods[method_path(md)] = Method(
                    method_path(md),
                    md,
                    message_factory.GetMessageClass(md.input_type),
                    message_factory.GetMessageClass(md.output_type),
                    impl,
                    md.full_name,
                )

    def method(self, path: str) -> Method:
        found = self.methods.get(path)
        if found is None:
            raise simple(grpc.StatusCode.UNIMPLEMENTED, f"unknown method {path}")
        return found

    async def _prepare(self, m: Method, request: Message, ctx: CallContext) -> None:
        for interceptor in self.interceptors:
            await interceptor(ctx, m.descriptor)
        check_limits(request)
        check_required(request)
        for rewrite in self.rewriters:
            rewrite(m.descriptor, request)

    async def _rewritten(self, m: Method, requests: AsyncIterator[Message]) -> AsyncIterator[Message]:
        async for request in requests:
            for rewrite in self.rewriters:
                rewrite(m.descriptor, request)
            yield request

    async def admit(self, path: str, ctx: CallContext) -> None:
        """Run only the interceptors (auth, limits) for a call to `path`, as a
        transport does before it has a request: the gateway asks this when a
        body cannot be read, so that a caller without a valid key learns that
        first (401/403 before 400/413), as upstream servers check the key first."""
        m = self.method(path)
        try:
            for interceptor in self.interceptors:
                await interceptor(ctx, m.descriptor)
        except Exception as exc:
            raise _to_rpc_error(exc, path) from exc

    async def unary(self, path: str, request: Message, ctx: CallContext) -> Message:
        m = self.method(path)
        started = time.perf_counter()
        code = "OK"
        try:
            # OTLP attribute lists are converted once, for redaction and the servicer.
            with otlp_values.converting():
                await self._prepare(m, request, ctx)
                if self.idempotency is not None:
                    return await self.idempotency.call(m.descriptor, request, ctx, m.impl, m.output)
                result: Message = await m.impl(request, ctx)
                return result
        except Exception as exc:
            err = _to_rpc_error(exc, path)
            code = _CODE_NAMES.get(err.code, "UNKNOWN")
            raise err from exc
        except BaseException:
            code = "CANCELLED"
            raise
        finally:
            metrics.count_rpc(m.name, code, time.perf_counter() - started)

    async def duplex(
        self, path: str, requests: AsyncIterator[Message], ctx: CallContext
    ) -> AsyncIterator[Message]:
        """A bidirectional stream: the interceptors run when it opens; the
        servicer checks each message it takes (check_required)."""
        m = self.method(path)
        with _StreamCount(m.name) as counted:
            try:
                for interceptor in self.interceptors:
                    await interceptor(ctx, m.descriptor)
                async for item in m.impl(self._rewritten(m, requests) if self.rewriters else requests, ctx):
                    if ctx.recheck is not None:
                        await ctx.recheck()
                    yield item
            except Exception as exc:
                raise counted.failed(_to_rpc_error(exc, path)) from exc

    async def stream(self, path: str, request: Message, ctx: CallContext) -> AsyncIterator[Message]:
        m = self.method(path)
        with _StreamCount(m.name) as counted:
            try:
                await self._prepare(m, request, ctx)
                async for item in m.impl(request, ctx):
                    if ctx.recheck is not None:  # a stream outlives its check: the key may be revoked since
                        await ctx.recheck()
                    yield item
            except Exception as exc:
                raise counted.failed(_to_rpc_error(exc, path)) from exc
