"""OTLP/HTTP and OTLP/gRPC against bad input and auth: a clear error in OTLP's
terms (google.rpc.Status in the request's encoding, 400/401/413/415,
partial_success for the records refused), nothing half-written, the server
still up. The real exporters' side is tests/e2e/test_otlp_receiver.py."""

from __future__ import annotations

import gzip
import time

import grpc
import httpx
import orjson
import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as logs_rpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb

from gateway.app import create_app
from service.app.assembly import Core
from service.base.config import Settings
from tests.auth_support import make_key, with_keys
from tests.conftest import TEST_HOST, Server

PROTOBUF = {"content-type": "application/x-protobuf"}
JSON = {"content-type": "application/json"}


def _logs(session: str = "s-1", n: int = 1, **overrides: object) -> logs_pb.ExportLogsServiceRequest:
    req = logs_pb.ExportLogsServiceRequest()
    sl = req.resource_logs.add().scope_logs.add()
    for i in range(n):
        r = sl.log_records.add(time_unix_nano=1_767_225_600_000_000_000 + i)
        r.body.string_value = "claude_code.api_request"
        attrs = {"event.name": "api_request", "session.id": session, "input_tokens": "10", **overrides}
        for key, value in attrs.items():
            r.attributes.add(key=key).value.string_value = str(value)
    return req


async def _head(server: Server) -> int:
    return int(server.core.store.notifier.head)


async def test_protobuf_and_json_answers_in_kind(server: Server) -> None:
    resp = await server.http.post("/v1/logs", content=_logs().SerializeToString(), headers=PROTOBUF)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/x-protobuf"
    assert logs_pb.ExportLogsServiceResponse.FromString(resp.content) == logs_pb.ExportLogsServiceResponse()
    body = gzip.compress(json_format.MessageToJson(_logs("s-2")).encode())
    resp = await server.http.post("/v1/logs", content=body, headers={**JSON, "content-encoding": "gzip"})
    assert resp.status_code == 200 and resp.json() == {}
    usage = (await server.http.get("/v1/telemetry/usage")).json()
    assert usage["total"]["input_tokens"] == 20 and usage["sessions"] == 2
    # The routes come from bindings (proto/otlp_http.yaml), so OpenAPI states them, both encodings.
    paths = (await server.http.get("/openapi.json")).json()["paths"]
    for route in ("/v1/logs", "/v1/metrics", "/v1/traces"):
        assert set(paths[route]["post"]["requestBody"]["content"]) == {
            PROTOBUF["content-type"],
            JSON["content-type"],
        }


async def test_bad_input_is_a_clear_error_and_writes_nothing(server: Server) -> None:
    head = await _head(server)
    big = b"\x00" * (server.core.settings.max_body_bytes + 1)
    cases = [
        ({"content-type": "text/plain"}, b"{}", 415),
        ({}, _logs().SerializeToString(), 415),
        ({**PROTOBUF, "content-encoding": "br"}, b"", 415),
        (PROTOBUF, b"\xff\xff\xff", 400),
        (JSON, b'{"resourceLogs": [', 400),
        (JSON, b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "soon"}]}]}]}', 400),
        (JSON, b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "xyz"}]}]}]}', 400),
        (JSON, b"[1, 2]", 400),
        ({**PROTOBUF, "content-encoding": "gzip"}, b"not gzip", 400),
        (PROTOBUF, big, 413),
        ({**PROTOBUF, "content-encoding": "gzip"}, gzip.compress(big), 413),  # small zipped, too big unzipped
    ]
    for headers, body, status in cases:
        resp = await server.http.post("/v1/logs", content=body, headers=headers)
        assert resp.status_code == status, (headers, body[:40], resp.text)
        if headers.get("content-type") == "application/x-protobuf":
            error = status_pb2.Status.FromString(resp.content)
        else:
            error = json_format.ParseDict(resp.json(), status_pb2.Status(), ignore_unknown_fields=True)
        assert error.code in (3, 0) and error.message, (status, error)
    assert await _head(server) == head
    assert (await server.http.get("/healthz")).status_code == 200


async def test_token_counts_sent_as_text_are_whole_numbers_or_refused(server: Server) -> None:
    """Claude Code sends counts as text; what is not a whole number >= 0 that
    fits a 64-bit column is refused per record, whatever its shape."""
    counts = ["1200", " 7 ", "\uff11\uff12", "3.0", "12.5", "-3", "99999999999999999999", "9" * 5000, "1e400"]
    stored = {"1200": 1200, " 7 ": 7, "\uff11\uff12": 12, "3.0": 3}
    req = logs_pb.ExportLogsServiceRequest()
    sl = req.resource_logs.add().scope_logs.add()
    for i, count in enumerate(counts):
        r = sl.log_records.add(time_unix_nano=1_767_225_600_000_000_000 + i)
        r.body.string_value = "claude_code.api_request"
        for key, value in (
            ("event.name", "api_request"),
            ("session.id", f"tok-{i}"),
            ("input_tokens", count),
        ):
            r.attributes.add(key=key).value.string_value = value
    resp = await server.http.post("/v1/logs", content=req.SerializeToString(), headers=PROTOBUF)
    reply = logs_pb.ExportLogsServiceResponse.FromString(resp.content)
    assert resp.status_code == 200
    assert reply.partial_success.rejected_log_records == len(counts) - len(stored), reply
    assert "input_tokens: expected a whole number" in reply.partial_success.error_message
    usage = (await server.http.get("/v1/telemetry/usage")).json()
    assert (usage["sessions"], usage["total"]["input_tokens"]) == (len(stored), sum(stored.values()))


async def test_bad_records_are_refused_in_partial_success_the_rest_stored(server: Server) -> None:
    req = _logs("s-3", n=3)
    records = req.resource_logs[0].scope_logs[0].log_records
    records[0].trace_id = b"\x01" * 15  # OTLP's trace ids are 16 bytes
    records[1].attributes.add(key="cost_usd").value.string_value = "a lot"
    resp = await server.http.post("/v1/logs", content=req.SerializeToString(), headers=PROTOBUF)
    reply = logs_pb.ExportLogsServiceResponse.FromString(resp.content)
    assert resp.status_code == 200 and reply.partial_success.rejected_log_records == 2
    assert "trace_id must be 16 bytes" in reply.partial_success.error_message
    assert "cost_usd: expected a number" in reply.partial_success.error_message
    records = (await server.http.get("/v1/telemetry/records", params={"session_id": "s-3"})).json()["records"]
    assert len(records) == 1
    # U+0000 anywhere (PostgreSQL cannot store it): the export refused whole, on every backend.
    head = await _head(server)
    for headers, body in (
        (JSON, orjson.dumps(json_format.MessageToDict(_logs("s-3", n=2, tool_name="a\x00b")))),
        (PROTOBUF, _logs("s-3", n=2, tool_name="a\x00b").SerializeToString()),
    ):
        resp = await server.http.post("/v1/logs", content=body, headers=headers)
        assert resp.status_code == 400, resp.content
    assert await _head(server) == head


async def test_metrics_and_traces_routes(server: Server) -> None:
    metrics = metrics_pb.ExportMetricsServiceRequest()
    m = metrics.resource_metrics.add().scope_metrics.add().metrics.add(name="claude_code.commit.count")
    m.sum.aggregation_temporality = 2  # cumulative
    m.sum.is_monotonic = True
    for i, value in enumerate((1, 1, 3)):  # running totals: 3 commits in all
        p = m.sum.data_points.add(as_int=value, start_time_unix_nano=1, time_unix_nano=2 + i)
        p.attributes.add(key="session.id").value.string_value = "s-4"
    delta = metrics.resource_metrics[0].scope_metrics[0].metrics.add(name="claude_code.pull_request.count")
    delta.sum.aggregation_temporality = 1  # delta: every point adds
    delta.sum.is_monotonic = True
    for value in (1, 1):
        p = delta.sum.data_points.add(as_int=value, start_time_unix_nano=1, time_unix_nano=2)
        p.attributes.add(key="session.id").value.string_value = "s-4"
    resp = await server.http.post("/v1/metrics", content=metrics.SerializeToString(), headers=PROTOBUF)
    assert resp.status_code == 200
    resp = await server.http.post("/v1/metrics", content=metrics.SerializeToString(), headers=PROTOBUF)
    usage = (await server.http.get("/v1/telemetry/sessions/s-4/usage")).json()["session"]
    # The cumulative stream sent twice (a retried export) still says 3; delta points add up each time.
    assert usage["counters"]["commits"] == 3 and usage["counters"]["pull_requests"] == 4
    assert usage["records"] == 10
    traces = trace_pb.ExportTraceServiceRequest()
    span = traces.resource_spans.add().scope_spans.add().spans.add(name="codex.turn", trace_id=b"\x02" * 16)
    span.span_id = b"\x03" * 8
    span.attributes.add(key="conversation.id").value.string_value = "s-4"
    doc = json_format.MessageToDict(traces)
    assert doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] == "AgICAgICAgICAgICAgICAg=="
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0].update(traceId="02" * 16, spanId="03" * 8)
    resp = await server.http.post("/v1/traces", content=orjson.dumps(doc), headers=JSON)
    assert resp.status_code == 200, resp.text
    spans = (await server.http.get("/v1/telemetry/records", params={"kinds": "span"})).json()["records"]
    assert spans[0]["data"]["trace_id"] == "02" * 16 and spans[0]["session_id"] == "s-4"


async def test_telemetry_reads_refuse_what_they_cannot_answer(server: Server) -> None:
    resp = await server.http.get("/v1/telemetry/sessions/nobody/usage")
    assert resp.status_code == 404 and resp.json()["details"][0]["reason"] == "SESSION_NOT_FOUND"
    resp = await server.http.get("/v1/telemetry/records", params={"page_token": "!!"})
    assert resp.status_code == 400
    resp = await server.http.get("/v1/telemetry/records", params={"kinds": "gossip"})
    assert resp.status_code == 400


@pytest.fixture
def keyed(settings: Settings) -> Settings:
    return with_keys(settings)


async def test_auth_applies_over_http_and_grpc(keyed: Settings) -> None:
    app = create_app(keyed, service=Core)
    async with app.router.lifespan_context(app):
        core: Core = app.state.core
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=f"http://{TEST_HOST}"
        ) as http:
            body = _logs("s-5").SerializeToString()
            resp = await http.post("/v1/logs", content=body, headers=PROTOBUF)
            assert resp.status_code == 401 and status_pb2.Status.FromString(resp.content).code == 16
            resp = await http.post("/v1/logs", content=b"\xff", headers=PROTOBUF)  # 401 before 400
            assert resp.status_code == 401
            async with grpc.aio.insecure_channel(f"127.0.0.1:{core.grpc_port}") as channel:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await logs_rpc.LogsServiceStub(channel).Export(_logs("s-5"))
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
                team = await make_key(core.store, ["write:events", "read:events"], workspace="team-a")
                await logs_rpc.LogsServiceStub(channel).Export(_logs("s-5"), metadata=team.metadata)
            other = await make_key(core.store, ["write:events", "read:events"], workspace="team-b")
            bearer = {"Authorization": f"Bearer {other.secret}"}
            resp = await http.post("/v1/logs", content=body, headers={**PROTOBUF, **bearer})
            assert resp.status_code == 200
            reads = await make_key(core.store, ["read:events"], workspace="team-b")
            resp = await http.post("/v1/logs", content=body, headers={**PROTOBUF, **reads.headers})
            assert resp.status_code == 403
            # Each workspace sees its own export only.
            for key in (team, other):
                usage = (await http.get("/v1/telemetry/usage", headers=key.headers)).json()
                assert usage["sessions"] == 1 and usage["total"]["input_tokens"] == 10


async def test_the_console_overview_counts_todays_telemetry(server: Server) -> None:
    req = _logs("s-6", n=2)
    for r in req.resource_logs[0].scope_logs[0].log_records:
        r.time_unix_nano = time.time_ns()  # today
    assert (
        await server.http.post("/v1/logs", content=req.SerializeToString(), headers=PROTOBUF)
    ).status_code == 200
    today = (await server.http.get("/v1/console/overview")).json()["today"]
    assert (today["usage_source"], today["input_tokens"]) == ("telemetry", 20)
