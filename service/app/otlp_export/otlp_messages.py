"""GenAI spans as OTLP trace requests (the `opentelemetry-proto` messages),
and their encodings: binary protobuf (gRPC, http/protobuf) and OTLP JSON.

Ids are hashes of the workspace and the span's keys: 16 bytes for a trace,
8 for a span, the same on every resend."""

from __future__ import annotations

import base64
import hashlib
import time

import orjson
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope
from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans, Span, Status

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


def _set(value: AnyValue, v: str | int | float | bool) -> None:
    if isinstance(v, str):
        value.string_value = v
    elif isinstance(v, bool):
        value.bool_value = v
    elif isinstance(v, int):
        value.int_value = v
    else:
        value.double_value = v


def _times(start: int | None, end: int | None) -> tuple[int, int]:
    """A span's start and end: one stands for the other when missing, the end
    is never before the start, and a record with no readable time is shown now."""
    if start is None:
        start = end if end is not None else time.time_ns()
    return start, end if end is not None and end >= start else start


class RequestBuilder:
    """One export request, spans written in place (a message built apart and
    then added would be copied): a resource per workspace."""

    def __init__(self, *, content: bool) -> None:
        self.request = ExportTraceServiceRequest()
        self.content = content
        self.count = 0
        self._scopes: dict[str, ScopeSpans] = {}

    def _scope(self, workspace: str) -> ScopeSpans:
        resource = self.request.resource_spans.add()
        add = resource.resource.attributes.add
        add(key="service.name").value.string_value = SERVICE_NAME
        add(key="agentplane.workspace").value.string_value = workspace
        scope = resource.scope_spans.add()
        scope.scope.CopyFrom(_SCOPE)
        self._scopes[workspace] = scope
        return scope

    def add(self, workspace: str, s: GenAiSpan) -> None:
        start, end = _times(unix_nanos(s.start), unix_nanos(s.end))
        span = (self._scopes.get(workspace) or self._scope(workspace)).spans.add(
            trace_id=trace_id(workspace, s.trace_key),
            span_id=span_id(workspace, s.span_key),
            parent_span_id=span_id(workspace, s.parent_key) if s.parent_key else b"",
            name=s.name,
            kind=Span.SPAN_KIND_CLIENT if s.operation == CHAT else Span.SPAN_KIND_INTERNAL,
            start_time_unix_nano=start,
            end_time_unix_nano=end,
        )
        add = span.attributes.add
        add(key="gen_ai.operation.name").value.string_value = s.operation
        for key, value in s.attributes.items():
            _set(add(key=key).value, value)
        if s.error_type:
            add(key="error.type").value.string_value = s.error_type
            span.status.code = Status.STATUS_CODE_ERROR
            span.status.message = s.error_type
        if self.content:
            for key, text in s.content().items():
                add(key=key).value.string_value = text[:MAX_CONTENT_CHARS]
        self.count += 1


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
