"""The OTLP receiver against real clients: the OpenTelemetry Python SDK with
its official OTLP exporters (grpc, http/protobuf) sends Claude-Code- and
Codex-shaped logs and metrics (tests/e2e/otlp_support.py) to a real
`agentplane serve`, and the results are read back through agentplane's own
routes, on both backends. http/json: tests/e2e/test_otlp_js.py, with the
OpenTelemetry JS SDK's exporters (what Claude Code itself exports with)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from tests.e2e.otlp_support import (
    CLAUDE,
    CLAUDE_ROUNDS,
    CLAUDE_STREAMS,
    CODEX,
    check_claude_session,
    check_codex_conversation,
    claude_events,
    claude_points,
    codex_events,
    ensure_hook_session,
    otlp_server,
    records,
    usage,
    with_unknown_and_bad,
)


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[tuple[str, str]]:
    with otlp_server(tmp_path, database_url) as running:
        yield running


def _emit_logs(exporter: Any, resource: dict[str, str], events: list[tuple[str, dict[str, Any]]]) -> None:
    provider = LoggerProvider(resource=Resource.create(resource))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("com.anthropic.claude_code.events")
    for body, attributes in events:
        logger.emit(body=body, attributes=attributes)
    provider.force_flush()
    provider.shutdown()


def _claude_metrics(exporter: Any, session: str, rounds: list[dict[str, float]]) -> None:
    """Claude Code's counters, exported (cumulative, the SDK's default) after each round."""
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=Resource.create(CLAUDE), metric_readers=[reader])
    meter = provider.get_meter("com.anthropic.claude_code")
    counters: dict[str, Any] = {}
    for figures in rounds:
        for name, unit, amount, attributes in claude_points(session, figures):
            if name not in counters:
                counters[name] = meter.create_counter(name, unit=unit)
            counters[name].add(amount, attributes)
        assert provider.force_flush()
    provider.shutdown()


def test_real_exporters_grpc_and_http_protobuf(server: tuple[str, str]) -> None:
    """One server per backend (starting one is most of the time), both stories."""
    claude_code_over_grpc_merges_with_the_hooks_session(*server)
    codex_and_claude_code_over_http_protobuf(server[0])


def claude_code_over_grpc_merges_with_the_hooks_session(base: str, target: str) -> None:
    session = "7f0c6b1e-3c1a-4c55-9a57-0d3c1c1b0a01"
    ensured = ensure_hook_session(base, session)  # the Claude Code hook binds the session first
    _emit_logs(GrpcLogExporter(endpoint=target, insecure=True), CLAUDE, claude_events(session, "p-1"))
    _claude_metrics(GrpcMetricExporter(endpoint=target, insecure=True), session, CLAUDE_ROUNDS)

    found = check_claude_session(base, session, ensured)
    metrics = [r["data"] for r in found if r["kind"] == "metric"]
    # every stream exported 4 times (3 flushes, and once more at shutdown),
    # each export every running total again
    assert len(metrics) == 4 * CLAUDE_STREAMS
    # Every record is in the one log too, streamed like everything else.
    watched = httpx.get(f"{base}/v1/log:watch", params={"after_seq": 0, "stop_at_end": "true",
                                                         "session_id": session}).text  # fmt: skip
    types = [orjson.loads(line)["result"]["entry"]["type"] for line in watched.splitlines()]
    assert types.count("telemetry.metric") == 32 and "telemetry.api_request" in types


def codex_and_claude_code_over_http_protobuf(base: str) -> None:
    conversation = "0199a213-81c0-7800-8aa1-bbab2a035a53"
    _emit_logs(HttpLogExporter(endpoint=f"{base}/v1/logs"), CODEX, codex_events(conversation))
    check_codex_conversation(base, conversation)

    session = "a8e7f9d1-2222-4c55-9a57-0d3c1c1b0a02"
    events = claude_events(session, "p-2")
    with_unknown_and_bad(session, events)
    _emit_logs(HttpLogExporter(endpoint=f"{base}/v1/logs"), CLAUDE, events)
    _claude_metrics(HttpMetricExporter(endpoint=f"{base}/v1/metrics"), session, [
        {"cost": 0.001, "input": 10, "output": 2, "added": 1, "removed": 1, "commits": 0, "prs": 0, "active": 1.0},
    ])  # fmt: skip
    got = usage(base, session)
    # The event's 1,200 input tokens outweigh the metric's 10; the bad request was refused, not half-stored.
    assert got["usage"]["input_tokens"] == 1200 and got["usage"]["api_requests"] == 1
    assert got["usage"]["cost_usd"] == pytest.approx(0.0125)
    found = records(base, session)
    assert [r["kind"] for r in found][:6] == [
        "user_prompt", "api_request", "tool_decision", "tool_result", "api_error", "record"
    ]  # fmt: skip
    assert found[5]["data"]["event"] == "claude_code.something_new"
    workspace = httpx.get(f"{base}/v1/telemetry/usage").json()
    assert workspace["sessions"] == 3  # with the Claude Code session sent over gRPC
    assert workspace["total"]["input_tokens"] == 1500 + 2400 + 1200
    assert workspace["today"]["input_tokens"] == 1500 + 2400 + 1200  # every record here happened today
    assert workspace["day"] == time.strftime("%Y-%m-%d", time.gmtime())
