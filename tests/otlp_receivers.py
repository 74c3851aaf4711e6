"""Real OTLP trace receivers for the exporter's tests, built from the same
`opentelemetry-proto` messages: an in-process grpc.aio `TraceService`, and
an HTTP one (`POST /v1/traces`, binary protobuf or OTLP JSON) served by
uvicorn. Each answers its calls as a script says (`ok`, `unavailable`,
`exhausted`, `503`, `400`, `stall`), then `ok`; each keeps every span it
accepted, resends included, so tests can tell lost from duplicated."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc
import uvicorn
from google.protobuf import duration_pb2
from google.protobuf.json_format import ParseDict
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.conftest import free_port


class Received:
    """Every span a receiver accepted, in order, and the requests it saw."""

    def __init__(self, script: Iterable[str] = ()) -> None:
        self.script = list(script)
        self.spans: list[tuple[dict[str, str], Span]] = []
        self.calls: list[str] = []
        self.times: list[float] = []
        self.headers: list[dict[str, str]] = []
        self.stall_seconds = 30.0

    def next_answer(self) -> str:
        answer = self.script.pop(0) if self.script else "ok"
        self.calls.append(answer)
        self.times.append(time.monotonic())
        return answer

    def accept(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        for rs in request.resource_spans:
            resource = {kv.key: kv.value.string_value for kv in rs.resource.attributes}
            for ss in rs.scope_spans:
                self.spans.extend((resource, span) for span in ss.spans)

    def by_id(self) -> dict[bytes, Span]:
        """Distinct spans by id; a resend must carry the very same span."""
        out: dict[bytes, Span] = {}
        for _, span in self.spans:
            if span.span_id in out:
                assert out[span.span_id] == span, "a resent span id carries another span"
            out[span.span_id] = span
        return out

    def duplicates(self) -> int:
        return sum(n - 1 for n in Counter(span.span_id for _, span in self.spans).values())

    async def wait_for(self, count: int) -> dict[bytes, Span]:
        deadline = asyncio.get_running_loop().time() + 20
        while len(self.by_id()) < count:
            assert asyncio.get_running_loop().time() < deadline, (
                f"{len(self.by_id())} of {count} spans arrived; calls {self.calls}"
            )
            await asyncio.sleep(0.05)
        return self.by_id()


def attributes(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind) if kind else None
    return out


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, received: Received) -> None:
        self.received = received

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.aio.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.received.headers.append(dict(context.invocation_metadata() or ()))
        answer = self.received.next_answer()
        if answer == "stall":
            await asyncio.sleep(self.received.stall_seconds)  # the client's deadline ends it first
        if answer in ("unavailable", "exhausted"):
            code = code_pb2.UNAVAILABLE if answer == "unavailable" else code_pb2.RESOURCE_EXHAUSTED
            info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(nanos=200_000_000))
            status = status_pb2.Status(code=code, message="try later")
            status.details.add().Pack(info)
            await context.abort_with_status(rpc_status.to_status(status))
        if answer == "invalid":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "not today")
        self.received.accept(request)
        return trace_service_pb2.ExportTraceServiceResponse()


@contextlib.asynccontextmanager
async def grpc_receiver(received: Received) -> AsyncIterator[str]:
    """A TraceService on a free port; yields its endpoint (`http://127.0.0.1:PORT`)."""
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(received), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.stop(0)


def _from_otlp_json(body: bytes) -> trace_service_pb2.ExportTraceServiceRequest:
    """OTLP JSON as a collector reads it: hex ids, integer enums."""
    doc = json.loads(body)
    for rs in doc.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                for name in ("traceId", "spanId", "parentSpanId"):
                    if name in span:
                        span[name] = base64.b64encode(bytes.fromhex(span[name])).decode()
    return ParseDict(doc, trace_service_pb2.ExportTraceServiceRequest())


def _http_app(received: Received) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        received.headers.append(headers)
        answer = received.next_answer()
        status, extra, reply = 200, [], b""
        if scope["path"] != "/v1/traces":
            status, reply = 404, b"no such path"
        elif answer == "stall":
            await asyncio.sleep(received.stall_seconds)
        elif answer == "503":
            status, extra, reply = 503, [(b"retry-after", b"1")], b"busy"
        elif answer == "400":
            status, reply = 400, b"bad batch"
        if status == 200:
            json_body = headers.get("content-type") == "application/json"
            request = (
                _from_otlp_json(body)
                if json_body
                else trace_service_pb2.ExportTraceServiceRequest.FromString(body)
            )
            received.accept(request)
            reply = b"{}" if json_body else trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            extra = [(b"content-type", b"application/json" if json_body else b"application/x-protobuf")]
        await send({"type": "http.response.start", "status": status, "headers": extra})
        await send({"type": "http.response.body", "body": reply})

    return app


@contextlib.asynccontextmanager
async def http_receiver(received: Received) -> AsyncIterator[str]:
    """An OTLP/HTTP receiver on a free port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(_http_app(received), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
