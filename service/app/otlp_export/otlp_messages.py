"""GenAI spans as OTLP trace requests (the `opentelemetry-proto` messages),
and their encodings: binary protobuf (gRPC, http/protobuf) and OTLP JSON.

Ids are hashes of the workspace and the span's keys: 16 bytes for a trace,
8 for a span, the same on every resend."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterable

import orjson
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from service.domain.otlp_export.genai_spans import CHAT, GenAiSpan, unix_nanos

SERVICE_NAME = "agentplane"
# Content attributes longer than this are cut (a tool's whole output can be a megabyte).
MAX_CONTENT_CHARS = 16 * 1024
_SCOPE = InstrumentationScope(name="agentplane.otlp_export", version="1")


def _id(workspace: str, key: str, size: int) -> bytes:
    return hashlib.blake2b(f"{workspace}\x00{key}".encode(), digest_size=size).digest()


def trace_id(workspace: str, key: str) -> bytes:
    return _id(workspace, key, 16)


def span_id(workspace: str, key: str) -> bytes:
    return _id(workspace, key, 8)


def _value(value: str | int | float | bool) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=value)


def _times(start: int | None, end: int | None) -> tuple[int, int]:
    """A span's start and end: one stands for the other when missing, the end
    is never before the start, and a record with no readable time is shown now."""
    if start is None:
        start = end if end is not None else time.time_ns()
    return start, end if end is not None and end >= start else start


def to_span(workspace: str, s: GenAiSpan, *, content: bool) -> Span:
    start, end = _times(unix_nanos(s.start), unix_nanos(s.end))
    attributes = [KeyValue(key=k, value=_value(v)) for k, v in s.attributes.items()]
    if s.error_type:
        attributes.append(KeyValue(key="error.type", value=AnyValue(string_value=s.error_type)))
    if content:
        attributes.extend(
            KeyValue(key=k, value=AnyValue(string_value=v[:MAX_CONTENT_CHARS])) for k, v in s.content.items()
        )
    return Span(
        trace_id=trace_id(workspace, s.trace_key),
        span_id=span_id(workspace, s.span_key),
        parent_span_id=span_id(workspace, s.parent_key) if s.parent_key else b"",
        name=s.name,
        kind=Span.SPAN_KIND_CLIENT if s.operation == CHAT else Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=attributes,
        status=Status(code=Status.STATUS_CODE_ERROR, message=s.error_type) if s.error_type else Status(),
    )


def export_request(spans: Iterable[tuple[str, Span]]) -> ExportTraceServiceRequest:
    """One request for (workspace, span) pairs: a resource per workspace."""
    by_workspace: dict[str, list[Span]] = {}
    for workspace, span in spans:
        by_workspace.setdefault(workspace, []).append(span)
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(
                    attributes=[
                        KeyValue(key="service.name", value=AnyValue(string_value=SERVICE_NAME)),
                        KeyValue(key="agentplane.workspace", value=AnyValue(string_value=workspace)),
                    ]
                ),
                scope_spans=[ScopeSpans(scope=_SCOPE, spans=group)],
            )
            for workspace, group in by_workspace.items()
        ]
    )


_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def to_otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """OTLP JSON: protobuf's JSON mapping with enums as integers and trace and
    span ids as hex strings (not base64)."""
    doc = MessageToDict(request, use_integers_for_enums=True)
    for resource in doc.get("resourceSpans", ()):
        for scope in resource.get("scopeSpans", ()):
            for span in scope.get("spans", ()):
                for name in _ID_FIELDS:
                    if name in span:
                        span[name] = _b64_to_hex(span[name])
    return orjson.dumps(doc)


def _b64_to_hex(text: str) -> str:
    return base64.b64decode(text).hex()
