"""OTLP/HTTP: the OpenTelemetry collector routes (/v1/logs, /v1/metrics,
/v1/traces, bound in proto/otlp_http.yaml) read and write binary protobuf as
grpc-gateway's protobuf marshaler does, or OTLP JSON, as the request came.

- `Content-Type: application/x-protobuf` (or `application/protobuf`): the
  body is the request message's wire form; `application/json`: OTLP JSON, the
  protobuf JSON mapping with hex trace and span ids. Anything else is 415.
- `Content-Encoding: gzip` (or `identity`) is undone, to at most the body
  limit (413 past it, also for a body that only grows past it unzipped).
- The answer is the response message in the request's encoding; an error is
  a google.rpc.Status in the request's encoding, with grpc-gateway's HTTP
  status (400 bad data, 401/403 auth, 413, 429/503 with Retry-After).
- Every call goes through the same call chain as gRPC (auth from
  `Authorization: Bearer` or `X-API-Key`, workspace, admission, idempotency
  when a key is sent, redaction).
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from starlette.types import Receive, Scope, Send

from gateway.families import error_headers, http_status
from gateway.intake import MeteredBody
from gateway.routes import BodyTooLarge, Endpoint, _bad_input, _header_pairs, forwarded_metadata
from service.base.errors import CommonReason, InvalidArgument, Unavailable
from service.rpc.status import RpcError, from_domain

PROTOBUF, JSON = "application/x-protobuf", "application/json"
_CONTENT_TYPES = {"application/x-protobuf": PROTOBUF, "application/protobuf": PROTOBUF, JSON: JSON}
# OTLP JSON writes these bytes fields as hex, where the protobuf JSON mapping has base64.
_HEX_FIELDS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})


class UnsupportedMedia(Exception):
    pass


def _hex_to_base64(value: Any, path: str) -> Any:
    """OTLP JSON's ids as the protobuf JSON mapping reads bytes."""
    if not isinstance(value, str):
        return value
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise InvalidArgument(
            f"{path}: {value[:64]!r} is not a hex id", reason=CommonReason.INVALID_JSON
        ) from None
    return base64.b64encode(raw).decode()


def _ids_from_hex(node: Any, path: str = "") -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _HEX_FIELDS:
                node[key] = _hex_to_base64(value, f"{path}{key}")
            elif isinstance(value, dict | list):
                _ids_from_hex(value, f"{path}{key}.")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _ids_from_hex(item, f"{path[:-1]}[{i}].")


def _ids_to_hex(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _HEX_FIELDS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                _ids_to_hex(value)
    elif isinstance(node, list):
        for item in node:
            _ids_to_hex(item)


def decode(raw: bytes, media: str, message: type[Message]) -> Message:
    """The request message from its body; InvalidArgument when it is not one."""
    if media == PROTOBUF:
        try:
            return message.FromString(raw)
        except DecodeError as exc:
            raise InvalidArgument(f"malformed protobuf: {exc}", reason=CommonReason.INVALID_JSON) from None
    try:
        doc = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"malformed JSON: {exc}", reason=CommonReason.INVALID_JSON) from None
    if not isinstance(doc, dict):
        raise InvalidArgument("the request body must be a JSON object", reason=CommonReason.INVALID_JSON)
    _ids_from_hex(doc)
    try:
        return json_format.ParseDict(doc, message(), ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise InvalidArgument(f"invalid OTLP JSON: {exc}", reason=CommonReason.INVALID_JSON) from None


def encode(msg: Message, media: str) -> bytes:
    if media == PROTOBUF:
        return msg.SerializeToString()
    doc = json_format.MessageToDict(msg)
    _ids_to_hex(doc)
    return orjson.dumps(doc)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def _media(scope: Scope) -> str:
    declared = _header(scope, b"content-type").split(";", 1)[0].strip().lower()
    media = _CONTENT_TYPES.get(declared)
    if media is None:
        raise UnsupportedMedia(
            f"unsupported content type {declared or '(none)'!r}: send application/x-protobuf or application/json"
        )
    return media


def _unzipped(scope: Scope, raw: bytes, limit: int) -> bytes:
    encoding = _header(scope, b"content-encoding").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding != "gzip":
        raise UnsupportedMedia(f"unsupported content encoding {encoding!r}: send gzip or none")
    inflate = zlib.decompressobj(wbits=31)
    try:
        out = inflate.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise InvalidArgument(f"malformed gzip body: {exc}", reason=CommonReason.INVALID_JSON) from None
    if len(out) > limit or inflate.unconsumed_tail:
        raise BodyTooLarge
    return out


async def _body(receive: Receive, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


class OtlpEndpoint(Endpoint):
    """An OTLP/HTTP route: read, call the collector service, answer in kind."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send, path_params: dict[str, str]) -> None:
        try:
            media = _media(scope)
        except UnsupportedMedia as exc:
            err = _bad_input(str(exc), CommonReason.INVALID_ARGUMENT)
            return await self._answer_error(scope, send, JSON, err, 415, admit=True)
        metered: MeteredBody | None = None
        try:
            if self.budget is None:
                return await self._serve_otlp(scope, receive, send, media)
            metered = MeteredBody(receive, self.budget, scope, self.max_body)
            async with self.budget.turn(metered.held):
                await self._serve_otlp(scope, metered.receive if metered.counting else receive, send, media)
        except Unavailable as busy:
            await self._answer_error(scope, send, media, from_domain(busy))
        except ConnectionAbortedError:
            return None
        finally:
            if metered is not None:
                metered.release()

    async def _serve_otlp(self, scope: Scope, receive: Receive, send: Send, media: str) -> None:
        b = self.binding
        too_large = f"request body is larger than {self.max_body} bytes"
        try:
            declared = _header(scope, b"content-length")
            if declared.isdigit() and int(declared) > self.max_body:
                raise BodyTooLarge
            raw = _unzipped(scope, await _body(receive, self.max_body), self.max_body)
            request = decode(raw, media, b.input)
        except BodyTooLarge:
            err = _bad_input(too_large, CommonReason.BODY_TOO_LARGE)
            return await self._answer_error(scope, send, media, err, 413, admit=True)
        except UnsupportedMedia as exc:
            err = _bad_input(str(exc), CommonReason.INVALID_ARGUMENT)
            return await self._answer_error(scope, send, media, err, 415, admit=True)
        except InvalidArgument as exc:
            return await self._answer_error(scope, send, media, from_domain(exc), admit=True)
        metadata = forwarded_metadata(_header_pairs(scope))
        try:
            reply = await self.transport().unary(b.path, request, b.output, metadata)
        except RpcError as err:
            return await self._answer_error(scope, send, media, err)
        await _send(send, 200, encode(reply, media), media, {})

    async def _answer_error(
        self,
        scope: Scope,
        send: Send,
        media: str,
        err: RpcError,
        status: int | None = None,
        *,
        admit: bool = False,
    ) -> None:
        """An error as google.rpc.Status in the request's encoding; with
        `admit`, a caller the auth step refuses hears that first (401/403)."""
        if admit:
            try:
                await self.transport().admit(self.binding.path, forwarded_metadata(_header_pairs(scope)))
            except RpcError as refused:
                err, status = refused, None
        body = (
            err.status.SerializeToString() if media == PROTOBUF else orjson.dumps(self.family.error_body(err))
        )
        await _send(send, status or http_status(err.code), body, media, error_headers(err))


async def _send(send: Send, status: int, body: bytes, media: str, headers: dict[str, str]) -> None:
    raw = [(b"content-type", media.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
