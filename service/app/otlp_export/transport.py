"""Sending one OTLP trace request, and what the backend's answer means.

Retryable, as OTLP exporters treat them: HTTP 429, 502, 503, 504 (with
`Retry-After` honoured, in seconds or as an HTTP date) and gRPC UNAVAILABLE,
RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED, CANCELLED, OUT_OF_RANGE and
DATA_LOSS (with a `google.rpc.RetryInfo` delay honoured); a connection that
fails or a backend that does not answer within the timeout is retried too.
Any other refusal is final for that batch. Both senders are synchronous:
the exporter runs in a process of its own, one request at a time."""

from __future__ import annotations

import http.client
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote, urlsplit

import grpc
from google.protobuf.json_format import Parse
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from service.app.otlp_export.otlp_messages import to_otlp_json

PROTOCOLS = ("grpc", "http/protobuf", "http/json")
RETRYABLE_HTTP = frozenset({429, 502, 503, 504})
RETRYABLE_GRPC = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.DATA_LOSS,
    }
)


@dataclass(frozen=True)
class Answer:
    """`delivered` (with the spans the backend says it rejected), `retry`
    (after `retry_after` seconds when the backend said), or `refused`."""

    outcome: str
    detail: str = ""
    rejected: int = 0
    retry_after: float | None = None


def parse_headers(text: str) -> list[tuple[str, str]]:
    """`k=v,k2=v2` (OTEL_EXPORTER_OTLP_HEADERS' form; values URL-encoded)."""
    pairs = []
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            if item.strip():
                raise ValueError(f"headers: {item.strip()!r} is not key=value")
            continue
        pairs.append((unquote(key.strip()), unquote(value.strip())))
    return pairs


def _delivered(response: ExportTraceServiceResponse) -> Answer:
    partial = response.partial_success
    return Answer("delivered", partial.error_message, rejected=partial.rejected_spans)


class GrpcSender:
    def __init__(self, endpoint: str, headers: list[tuple[str, str]], timeout: float) -> None:
        parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
        target = parts.netloc or parts.path
        self._channel = (
            grpc.secure_channel(target, grpc.ssl_channel_credentials())
            if parts.scheme == "https"
            else grpc.insecure_channel(target)
        )
        self._export = TraceServiceStub(self._channel).Export
        self._metadata = tuple((k.lower(), v) for k, v in headers)
        self._timeout = timeout

    def send(self, request: ExportTraceServiceRequest) -> Answer:
        try:
            return _delivered(self._export(request, timeout=self._timeout, metadata=self._metadata))
        except grpc.RpcError as exc:
            call: grpc.Call = exc  # type: ignore[assignment]
            code, detail = call.code(), f"{call.code().name}: {call.details()}"
            if code in RETRYABLE_GRPC:
                return Answer("retry", detail, retry_after=_retry_info(call))
            return Answer("refused", detail)

    def close(self) -> None:
        self._channel.close()


def _retry_info(call: grpc.Call) -> float | None:
    status = rpc_status.from_call(call)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


class HttpSender:
    """OTLP/HTTP: POST `<endpoint>/v1/traces` (kept as given when it already
    ends so), binary protobuf or OTLP JSON, over one kept-alive connection."""

    def __init__(self, endpoint: str, headers: list[tuple[str, str]], timeout: float, *, json: bool) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"endpoint: {endpoint!r} is not an http:// or https:// URL")
        path = parts.path.rstrip("/")
        self._path = path if path.endswith("/v1/traces") else f"{path}/v1/traces"
        self._https, self._netloc, self._timeout, self._json = (
            parts.scheme == "https",
            parts.netloc,
            timeout,
            json,
        )
        self._headers = {
            **dict(headers),
            "Content-Type": "application/json" if json else "application/x-protobuf",
        }
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = (
                http.client.HTTPSConnection(
                    self._netloc, timeout=self._timeout, context=ssl.create_default_context()
                )
                if self._https
                else http.client.HTTPConnection(self._netloc, timeout=self._timeout)
            )
        return self._conn

    def send(self, request: ExportTraceServiceRequest) -> Answer:
        body = to_otlp_json(request) if self._json else request.SerializeToString()
        try:
            conn = self._connection()
            conn.request("POST", self._path, body=body, headers=self._headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return Answer("retry", f"{type(exc).__name__}: {exc}")
        if response.status == 200:
            return _delivered(self._parse(payload, response.getheader("Content-Type") or ""))
        detail = f"HTTP {response.status}: {payload[:200].decode(errors='replace')}"
        if response.status in RETRYABLE_HTTP:
            return Answer("retry", detail, retry_after=_retry_after(response.getheader("Retry-After")))
        return Answer("refused", detail)

    def _parse(self, payload: bytes, content_type: str) -> ExportTraceServiceResponse:
        """The response message, in either encoding (an empty body is a full success)."""
        answer = ExportTraceServiceResponse()
        try:
            if "json" in content_type and payload.strip():
                Parse(payload, answer, ignore_unknown_fields=True)
            elif payload:
                answer.ParseFromString(payload)
        except Exception:
            return ExportTraceServiceResponse()  # the backend said 200: the spans arrived
        return answer

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


Sender = GrpcSender | HttpSender


def sender_for(protocol: str, endpoint: str, headers: str, timeout: float) -> Sender:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol: {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    pairs = parse_headers(headers)
    if protocol == "grpc":
        return GrpcSender(endpoint, pairs, timeout)
    return HttpSender(endpoint, pairs, timeout, json=protocol == "http/json")
