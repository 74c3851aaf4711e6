"""The generated routes: one generic endpoint per HttpRule binding, served by
a lean ASGI dispatcher inside the FastAPI app.

Nothing here knows a particular RPC: the binding says where each request
field comes from, the transport makes the call, and the service's family
renders the body or the error. The dispatcher sits in the app's middleware
stack and answers the generated routes itself (a dict lookup for fixed
paths, one regex per templated path), passing everything else on to FastAPI
(/docs, /openapi.json, WebSockets): FastAPI's per-route machinery (request
objects, dependency solving, its inner middleware) measured ~95 µs per
request, a third of the whole budget of a single-event write.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, Protocol
from urllib.parse import parse_qsl

import grpc
import orjson
from agentplane.v1 import options_pb2
from google.protobuf import json_format
from google.protobuf.message import Message
from starlette.responses import StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import input_checks
from gateway.access_log import ENDPOINT, HANDED_OVER
from gateway.families import Family
from gateway.httprule import Binding, build_request
from gateway.intake import MeteredBody
from gateway.read_timeouts import DETACH
from gateway.transport import Transport
from service.base.errors import CommonReason, FieldViolation, InvalidArgument, Unavailable
from service.codec import ParseError, encoder, field_key, keeping_free_form
from service.rpc.admission import ByteBudget
from service.rpc.limits import strings_checked
from service.rpc.status import RpcError, from_domain, simple

# Headers passed on to the service as call metadata (plus any `Grpc-Metadata-*`).
FORWARDED_HEADERS = frozenset(
    {
        "authorization",
        "x-api-key",
        "x-agh-session-id",
        "x-agh-agent",
        "x-agh-workspace-id",
        "x-request-id",
        "idempotency-key",
        "agentplane-hook-spool",
    }
)
_GRPC_METADATA = "grpc-metadata-"
# How long a streaming route waits for the first message before it commits to
# a 200: errors found before it (bad input, auth) still get their own status.
FIRST_MESSAGE_WAIT = 0.25
# How long a long-poll call runs before the gateway starts watching for the
# client to leave: most answer within a commit, and the watch costs a task.
LONG_POLL_WATCH_AFTER = 0.05
_JSON = [(b"content-type", b"application/json")]

TransportRef = Callable[[], Transport]


def forwarded_metadata(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Call metadata from HTTP headers (lower-case names)."""
    md: dict[str, str] = {}
    for key, value in headers:
        if key in FORWARDED_HEADERS:
            md[key] = value
        elif key.startswith(_GRPC_METADATA):
            md[key[len(_GRPC_METADATA) :]] = value
    return md


_FORWARDED_RAW = frozenset(h.encode() for h in FORWARDED_HEADERS)
_GRPC_METADATA_RAW = _GRPC_METADATA.encode()


def _header_pairs(scope: Scope) -> list[tuple[str, str]]:
    """The headers `forwarded_metadata` may keep, as text (the others are not decoded)."""
    return [
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in scope["headers"]
        if k in _FORWARDED_RAW or k.startswith(_GRPC_METADATA_RAW)
    ]


class StreamHandoff(Protocol):
    """Where a streaming endpoint may give its connection once its stream has
    begun (gateway.followers.process.FollowerProcess)."""

    def resume(self, request: Message, first: object) -> tuple[Message, bool] | None:
        """None to keep the stream here; else the request to continue with,
        and whether this server writes `first` before handing over."""

    def hand_over(self, sock: socket.socket, head: bytes, request: Message, metadata: dict[str, str]) -> None:
        """Serve `request` on `sock`, after writing `head` (the response so far)."""


def stream_head(defaults: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The head of a 200 NDJSON stream handed to another process, as this
    server writes it (its default headers first); `connection: close`, as
    that process closes the connection when the stream ends."""
    own = b"".join(b"%s: %s\r\n" % (k, v) for k, v in defaults)
    return (
        b"HTTP/1.1 200 OK\r\n"
        + own
        + b"content-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )


def http_chunk(data: bytes) -> bytes:
    """`data` as one chunk of an HTTP/1.1 chunked body (b"" is the last chunk)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


async def send_json(send: Send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    payload = orjson.dumps(body)
    raw = [*_JSON, (b"content-length", str(len(payload)).encode())]
    if headers:
        raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


async def send_no_content(send: Send) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def until_disconnect(receive: Receive) -> None:
    """Return when the client has gone (the request body is already read)."""
    with contextlib.suppress(Exception):  # a broken connection is a gone client
        while (await receive())["type"] != "http.disconnect":
            pass


async def send_error(send: Send, family: Family, err: RpcError, status: int | None = None) -> None:
    code, body, headers = family.error(err)
    await send_json(send, status or code, body, headers)


class BodyTooLarge(Exception):
    pass


async def read_json(scope: Scope, receive: Receive, limit: int, required: bool = False) -> Any:
    """The body as JSON (an empty body is `{}`, or a ParseError if `required`);
    BodyTooLarge past `limit` bytes."""
    for key, value in scope["headers"]:
        if key == b"content-length" and value.isdigit() and int(value) > limit:
            raise BodyTooLarge
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    raw = b"".join(chunks)
    if not raw.strip():
        if required:
            raise ParseError("a request body is required")
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"malformed JSON: {exc}") from exc
    input_checks.check_body_strings(raw)
    return body


def _bad_input(
    message: str,
    reason: CommonReason = CommonReason.INVALID_JSON,
    violations: list[tuple[str, str]] | None = None,
) -> RpcError:
    found = [FieldViolation(path, text) for path, text in violations or []]
    return from_domain(InvalidArgument(message, reason=reason, violations=found))


class Endpoint:
    """Parse, call, render: the one handler every binding uses."""

    def __init__(
        self,
        b: Binding,
        family: Family,
        transport: TransportRef,
        max_body: int,
        budget: ByteBudget | None = None,
    ) -> None:
        self.binding = b
        self.family = family
        self.transport = transport
        self.max_body = max_body
        # Bytes in flight (gateway.intake); only routes with a body count.
        self.budget = budget if b.body else None
        options = b.method.GetOptions()
        # A success status other than 200 (agentplane.v1.http_success_code);
        # 204 only for an empty reply.
        self.success_code = options.Extensions[options_pb2.http_success_code] or 200
        self.long_poll = options.Extensions[options_pb2.long_poll]
        self.needs_body = input_checks.refuses_empty_body(b)
        # Where this stream's connection may go once the stream has begun (gateway.followers).
        self.handoff: StreamHandoff | None = None
        encode = encoder(b.output.DESCRIPTOR, family.proto_names, family.omit_unset)
        if b.response_body:
            fd = b.output.DESCRIPTOR.fields_by_name[b.response_body]
            key = field_key(fd, family.proto_names)
            self.render: Callable[[Message], Any] = lambda msg: encode(msg)[key]
        else:
            self.render = encode

    async def __call__(self, scope: Scope, receive: Receive, send: Send, path_params: dict[str, str]) -> None:
        if self.budget is None:
            return await self._call(scope, receive, send, path_params)
        try:
            body = MeteredBody(receive, self.budget, scope, self.max_body)
        except Unavailable as busy:
            return await send_error(send, self.family, from_domain(busy))
        try:
            async with self.budget.turn(body.held):
                return await self._call(scope, body.receive if body.counting else receive, send, path_params)
        except Unavailable as busy:  # a chunked body that stopped fitting
            return await send_error(send, self.family, from_domain(busy))
        finally:
            body.release()

    async def _call(self, scope: Scope, receive: Receive, send: Send, path_params: dict[str, str]) -> None:
        transport = self.transport()
        if self.binding.streaming or not transport.in_process:
            with strings_checked():
                return await self._serve(scope, receive, send, path_params, transport)
        # The request stays in this process: its free-form JSON is not built
        # into Struct messages only to be read back.
        with keeping_free_form(), strings_checked():
            return await self._serve(scope, receive, send, path_params, transport)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, path_params: dict[str, str], transport: Transport
    ) -> None:
        b, family = self.binding, self.family
        try:
            raw_query = scope["query_string"]
            query = parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True) if raw_query else []
            nul = input_checks.nul_in_target(path_params, query)
            if nul is not None:
                raise nul
            body = await read_json(scope, receive, self.max_body, self.needs_body) if b.body else None
            # Kept only within keeping_free_form() (see __call__).
            request = build_request(b, path_params, query, body, keep_free_form=True)
        except BodyTooLarge:
            too_large = _bad_input(
                f"request body is larger than {self.max_body} bytes", CommonReason.BODY_TOO_LARGE
            )
            return await self._refuse(scope, send, too_large, 413)
        except ParseError as exc:
            return await self._refuse(scope, send, _bad_input(str(exc), violations=exc.violations))
        except InvalidArgument as exc:  # U+0000 in the path or query
            return await self._refuse(scope, send, from_domain(exc))
        metadata = forwarded_metadata(_header_pairs(scope))
        if b.streaming:
            return await self._stream(scope, receive, send, request, metadata)
        call = transport.unary(b.path, request, b.output, metadata)
        try:
            reply = await (self._unless_disconnected(receive, call) if self.long_poll else call)
        except RpcError as err:
            return await send_error(send, family, err)
        if reply is None:
            return None  # the client has gone
        if self.success_code == 204 and reply.ByteSize() == 0:
            return await send_no_content(send)
        status = 200 if self.success_code == 204 else self.success_code
        await send_json(send, status, family.success(self.render(reply)))

    async def _unless_disconnected(self, receive: Receive, call: Awaitable[Message]) -> Message | None:
        """The call's reply, or None (the call cancelled) if the client disconnects first."""
        reply = asyncio.ensure_future(call)
        try:
            await asyncio.wait([reply], timeout=LONG_POLL_WATCH_AFTER)
        except BaseException:
            reply.cancel()
            raise
        if reply.done():
            return reply.result()
        gone = asyncio.ensure_future(until_disconnect(receive))
        try:
            await asyncio.wait([reply, gone], return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not reply.done():
                reply.cancel()
        if reply.cancelled() or not reply.done():
            with contextlib.suppress(asyncio.CancelledError, RpcError):
                await reply
            return None
        return reply.result()

    async def _refuse(self, scope: Scope, send: Send, err: RpcError, status: int | None = None) -> None:
        """Answer a request whose body cannot be used; a caller the auth step
        refuses hears that instead (401/403/429 before 400/413, as upstream)."""
        try:
            await self.transport().admit(self.binding.path, forwarded_metadata(_header_pairs(scope)))
        except RpcError as refused:
            return await send_error(send, self.family, refused)
        await send_error(send, self.family, err, status)

    async def _stream(
        self, scope: Scope, receive: Receive, send: Send, request: Message, metadata: dict[str, str]
    ) -> None:
        b = self.binding
        # In process, a servicer may hand over NDJSON it rendered once for all its streams.
        messages = self.transport().stream(b.path, request, b.output, metadata, wire="ndjson")
        first = asyncio.ensure_future(anext(messages, None))
        done, _ = await asyncio.wait([first], timeout=FIRST_MESSAGE_WAIT)
        if done and isinstance(first.exception(), RpcError):
            return await send_error(send, self.family, first.exception())  # type: ignore[arg-type]
        if await self._hand_over(scope, request, metadata, first, messages):
            return None
        response = StreamingResponse(self.ndjson_body(first, messages), media_type="application/x-ndjson")
        await response(scope, receive, send)

    async def _hand_over(
        self,
        scope: Scope,
        request: Message,
        metadata: dict[str, str],
        first: asyncio.Future[Message | None],
        messages: AsyncIterator[Message],
    ) -> bool:
        """Give the connection to `handoff` (True), which serves the rest of
        the stream; the stream begun here is closed. Not for a browser's
        request (the CORS layer adds its headers to the response), nor when
        the server cannot let the connection go (gateway.read_timeouts)."""
        handoff, detach = self.handoff, scope.get("extensions", {}).get(DETACH)
        if handoff is None or detach is None or any(k == b"origin" for k, _ in scope["headers"]):
            return False
        if first.done() and (first.exception() is not None or first.result() is None):
            return False  # the stream's own body reports its error, or its end
        resumed = handoff.resume(request, first.result() if first.done() else None)
        if resumed is None:
            return False
        detached = detach()
        if detached is None:
            return False
        sock, defaults = detached
        following, send_first = resumed
        head = stream_head(defaults)
        if send_first:
            head += http_chunk(self._line(first.result()))  # type: ignore[arg-type]
        if not first.done():
            first.cancel()
            await asyncio.wait([first])
        with contextlib.suppress(Exception):
            await messages.aclose()  # type: ignore[attr-defined]  # leaves the feed here
        with sock:
            handoff.hand_over(sock, head, following, metadata)
        scope[HANDED_OVER] = 200
        return True

    def _line(self, item: Message) -> bytes:
        if isinstance(item, bytes):  # already NDJSON (see _stream)
            return item
        return orjson.dumps({"result": self.render(item)}, option=orjson.OPT_APPEND_NEWLINE)

    async def ndjson_body(
        self, first: asyncio.Future[Message | None] | None, rest: AsyncIterator[Message]
    ) -> AsyncIterator[bytes]:
        """grpc-gateway's stream body: one {"result": …} per line, {"error": …}
        if it fails; `first`, when given, is the stream's first message."""
        try:
            if first is not None:
                item = await first
                if item is None:
                    return
                yield self._line(item)
            async for item in rest:
                yield self._line(item)
        except RpcError as err:
            status = json_format.MessageToDict(err.status, preserving_proto_field_name=True)
            yield orjson.dumps({"error": status}) + b"\n"
        finally:
            if first is not None and not first.done():
                first.cancel()
            with contextlib.suppress(Exception):
                await rest.aclose()  # type: ignore[attr-defined]


_VARIABLE = re.compile(r"\{([a-zA-Z0-9_]+)(:path)?\}")


def _path_regex(route_path: str) -> re.Pattern[str]:
    out, last = [], 0
    for m in _VARIABLE.finditer(route_path):
        out.append(re.escape(route_path[last : m.start()]))
        out.append(f"(?P<{m.group(1)}>{'.+' if m.group(2) else '[^/]+'})")
        last = m.end()
    out.append(re.escape(route_path[last:]))
    return re.compile("".join(out) + "$")


def _first_segment(path: str) -> str:
    return path.split("/", 2)[1] if path.count("/") >= 1 else path


class BindingRouter:
    """ASGI middleware answering the generated routes; the rest goes to `app`."""

    def __init__(self, app: ASGIApp | None, endpoints: list[Endpoint]) -> None:
        self.app: Any = app
        self.fixed: dict[str, dict[str, Endpoint]] = {}
        # Templated paths grouped by their first segment (when it is literal),
        # so a request tries only the few regexes that can match it.
        self.templated: dict[str, list[tuple[re.Pattern[str], dict[str, Endpoint]]]] = {}
        patterns: dict[str, dict[str, Endpoint]] = {}
        for ep in endpoints:
            path = ep.binding.route_path
            table = self.fixed if "{" not in path else patterns
            table.setdefault(path, {})[ep.binding.verb] = ep
        for path, verbs in patterns.items():
            first = _first_segment(path)
            self.templated.setdefault("" if "{" in first else first, []).append((_path_regex(path), verbs))

    def match(self, path: str) -> tuple[dict[str, Endpoint], dict[str, str]] | None:
        verbs = self.fixed.get(path)
        if verbs is not None:
            return verbs, {}
        for bucket in (_first_segment(path), ""):
            for pattern, verbs in self.templated.get(bucket, ()):
                m = pattern.match(path)
                if m:
                    return verbs, m.groupdict()
        return None

    async def dispatch(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer the request if it is for a generated route; False if it is not."""
        found = self.match(scope["path"]) if scope["type"] == "http" else None
        if found is None:
            return False
        verbs, params = found
        endpoint = verbs.get(scope["method"])
        if endpoint is None:
            any_endpoint = next(iter(verbs.values()))
            message = f"{scope['method']} is not allowed on {scope['path']}"
            await send_error(send, any_endpoint.family, simple(grpc.StatusCode.UNIMPLEMENTED, message), 405)
        else:
            scope[ENDPOINT] = endpoint  # labels the request's metrics (gateway.access_log)
            await endpoint(scope, receive, send, params)
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await self.dispatch(scope, receive, send):
            await self.app(scope, receive, send)
