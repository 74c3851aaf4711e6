"""The OTLP collector services (opentelemetry-proto's LogsService,
MetricsService, TraceService), served under their own full method names on
agentplane's gRPC port and, through proto/otlp_http.yaml's bindings, at
/v1/logs, /v1/metrics, /v1/traces: OTLP messages in, domain values out, and
OTLP's partial_success back."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb
from opentelemetry.proto.metrics.v1 import metrics_pb2

from service.codec.otlp_values import attributes, value_of
from service.domain.telemetry import ingest
from service.domain.telemetry.model import (
    CUMULATIVE,
    DELTA,
    GAUGE,
    HISTOGRAM,
    LogIn,
    PointIn,
    Resource,
    SpanIn,
)
from service.rpc.context import CallContext
from service.store.store import Store

_TEMPORALITY: dict[int, str] = {
    metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE: CUMULATIVE,
    metrics_pb2.AGGREGATION_TEMPORALITY_DELTA: DELTA,
}


def _resource(r: Any) -> Resource:
    return Resource(attributes(r.resource.attributes))


def log_records(req: logs_pb.ExportLogsServiceRequest) -> list[LogIn]:
    out: list[LogIn] = []
    for rl in req.resource_logs:
        resource = _resource(rl)
        for sl in rl.scope_logs:
            for r in sl.log_records:
                out.append(
                    LogIn(
                        resource,
                        attributes(r.attributes),
                        value_of(r.body) if r.HasField("body") else None,
                        r.event_name,
                        r.time_unix_nano,
                        r.observed_time_unix_nano,
                        r.trace_id,
                        r.span_id,
                        r.severity_text,
                    )
                )
    return out


def _stats(p: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in fields:
        if p.DESCRIPTOR.fields_by_name[name].has_presence and not p.HasField(name):
            continue  # a histogram's optional sum, min, max
        out[name] = getattr(p, name)
    return out


def metric_points(req: metrics_pb.ExportMetricsServiceRequest) -> list[PointIn]:
    out: list[PointIn] = []
    for rm in req.resource_metrics:
        resource = _resource(rm)
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                data = m.WhichOneof("data")
                if data in ("sum", "gauge"):
                    shape = getattr(m, data)
                    temporality = _TEMPORALITY.get(shape.aggregation_temporality, "") if data == "sum" else ""
                    monotonic = bool(shape.is_monotonic) if data == "sum" else False
                    for p in shape.data_points:
                        value = p.as_double if p.WhichOneof("value") == "as_double" else float(p.as_int)
                        out.append(
                            PointIn(
                                resource,
                                m.name,
                                m.unit,
                                data if data == "sum" else GAUGE,
                                temporality,
                                monotonic,
                                attributes(p.attributes),
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                                value,
                            )
                        )
                elif data in ("histogram", "exponential_histogram", "summary"):
                    shape = getattr(m, data)
                    temporality = _TEMPORALITY.get(getattr(shape, "aggregation_temporality", 0), "")
                    fields = ("count", "sum") if data == "summary" else ("count", "sum", "min", "max")
                    for p in shape.data_points:
                        stats = _stats(p, fields)
                        if data == HISTOGRAM:
                            stats["bucket_counts"] = list(p.bucket_counts)
                            stats["explicit_bounds"] = list(p.explicit_bounds)
                        out.append(
                            PointIn(
                                resource,
                                m.name,
                                m.unit,
                                data,
                                temporality,
                                False,
                                attributes(p.attributes),
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                                stats=stats,
                            )
                        )
    return out


def spans(req: trace_pb.ExportTraceServiceRequest) -> list[SpanIn]:
    out: list[SpanIn] = []
    for rs in req.resource_spans:
        resource = _resource(rs)
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append(
                    SpanIn(
                        resource,
                        s.name,
                        s.trace_id,
                        s.span_id,
                        s.parent_span_id,
                        s.start_time_unix_nano,
                        s.end_time_unix_nano,
                        attributes(s.attributes),
                        s.kind,
                        {"code": s.status.code, "message": s.status.message} if s.HasField("status") else {},
                        [
                            {
                                "name": e.name,
                                "time_unix_nano": e.time_unix_nano,
                                "attributes": attributes(e.attributes),
                            }
                            for e in s.events
                        ],
                    )
                )
    return out


class LogsServicer:
    service = logs_pb.DESCRIPTOR.services_by_name["LogsService"]

    def __init__(self, store: Store) -> None:
        self.store = store

    async def Export(
        self, req: logs_pb.ExportLogsServiceRequest, ctx: CallContext
    ) -> logs_pb.ExportLogsServiceResponse:
        done = await ingest.ingest_logs(self.store, ctx.workspace, log_records(req))
        reply = logs_pb.ExportLogsServiceResponse()
        if done.rejected:
            reply.partial_success.rejected_log_records = done.rejected
            reply.partial_success.error_message = done.error_message
        return reply


class MetricsServicer:
    service = metrics_pb.DESCRIPTOR.services_by_name["MetricsService"]

    def __init__(self, store: Store) -> None:
        self.store = store

    async def Export(
        self, req: metrics_pb.ExportMetricsServiceRequest, ctx: CallContext
    ) -> metrics_pb.ExportMetricsServiceResponse:
        done = await ingest.ingest_metrics(self.store, ctx.workspace, metric_points(req))
        reply = metrics_pb.ExportMetricsServiceResponse()
        if done.rejected:
            reply.partial_success.rejected_data_points = done.rejected
            reply.partial_success.error_message = done.error_message
        return reply


class TraceServicer:
    service = trace_pb.DESCRIPTOR.services_by_name["TraceService"]

    def __init__(self, store: Store) -> None:
        self.store = store

    async def Export(
        self, req: trace_pb.ExportTraceServiceRequest, ctx: CallContext
    ) -> trace_pb.ExportTraceServiceResponse:
        done = await ingest.ingest_spans(self.store, ctx.workspace, spans(req))
        reply = trace_pb.ExportTraceServiceResponse()
        if done.rejected:
            reply.partial_success.rejected_spans = done.rejected
            reply.partial_success.error_message = done.error_message
        return reply
