"""One generic endpoint per HttpRule binding: parse, call, render.

Nothing here knows a particular RPC: the binding says where each request
field comes from, the transport makes the call, and the service's family
renders the body or the error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from google.protobuf import json_format
from google.protobuf.message import Message

from gateway.families import Family
from gateway.httprule import Binding, build_request
from gateway.transport import Transport
from service.api.protojson import ParseError, encoder
from service.app.status import RpcError, from_domain
from service.domain.errors import InvalidArgument

# Headers passed on to the service as call metadata (plus any `Grpc-Metadata-*`).
FORWARDED_HEADERS = ("authorization", "x-api-key", "x-agh-session-id", "x-agh-agent", "x-request-id")
# How long a streaming route waits for the first message before it commits to
# a 200: errors found before it (bad input, auth) still get their own status.
FIRST_MESSAGE_WAIT = 0.25


def forwarded_metadata(headers: Any) -> dict[str, str]:
    md = {h: headers[h] for h in FORWARDED_HEADERS if h in headers}
    for key, value in headers.items():
        if key.startswith("grpc-metadata-"):
            md[key[len("grpc-metadata-") :]] = value
    return md


class BodyTooLarge(Exception):
    pass


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def error_response(family: Family, err: RpcError, status: int | None = None) -> Response:
    code, body, headers = family.error(err)
    return json_response(status or code, body, headers)


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON (an empty body is `{}`); BodyTooLarge past `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"malformed JSON: {exc}") from exc


def _bad_input(message: str) -> RpcError:
    return from_domain(InvalidArgument(message, reason="INVALID_JSON"))


def make_endpoint(
    b: Binding, family: Family, transport: Callable[[], Transport], max_body: int
) -> Callable[[Request], Any]:
    encode = encoder(b.output.DESCRIPTOR, family.proto_names)
    if b.response_body:
        fd = b.output.DESCRIPTOR.fields_by_name[b.response_body]
        key = fd.name if family.proto_names else fd.json_name
        render: Callable[[Message], Any] = lambda msg: encode(msg)[key]  # noqa: E731
    else:
        render = encode

    async def parse(request: Request) -> Message:
        body = await read_json(request, max_body) if b.body else None
        return build_request(b, request.path_params, request.query_params.multi_items(), body)

    async def unary(request: Request) -> Response:
        try:
            msg = await parse(request)
            reply = await transport().unary(b.path, msg, b.output, forwarded_metadata(request.headers))
        except BodyTooLarge:
            return error_response(family, _bad_input(f"request body is larger than {max_body} bytes"), 413)
        except ParseError as exc:
            return error_response(family, _bad_input(str(exc)))
        except RpcError as err:
            return error_response(family, err)
        return json_response(200, family.success(render(reply)))

    async def stream(request: Request) -> Response:
        try:
            msg = await parse(request)
        except ParseError as exc:
            return error_response(family, _bad_input(str(exc)))
        messages = transport().stream(b.path, msg, b.output, forwarded_metadata(request.headers))
        first = asyncio.ensure_future(anext(messages, None))
        done, _ = await asyncio.wait([first], timeout=FIRST_MESSAGE_WAIT)
        if done and isinstance(first.exception(), RpcError):
            return error_response(family, first.exception())  # type: ignore[arg-type]
        return StreamingResponse(_ndjson(first, messages), media_type="application/x-ndjson")

    async def _ndjson(
        first: asyncio.Future[Message | None], rest: AsyncIterator[Message]
    ) -> AsyncIterator[bytes]:
        try:
            item = await first
            if item is None:
                return
            yield orjson.dumps({"result": render(item)}) + b"\n"
            async for item in rest:
                yield orjson.dumps({"result": render(item)}) + b"\n"
        except RpcError as err:
            status = json_format.MessageToDict(err.status, preserving_proto_field_name=True)
            yield orjson.dumps({"error": status}) + b"\n"
        finally:
            if not first.done():
                first.cancel()
            with contextlib.suppress(Exception):
                await rest.aclose()  # type: ignore[attr-defined]

    return stream if b.streaming else unary
