"""The OTLP receiver against real clients: the OpenTelemetry SDK with its
official OTLP exporters (grpc, http/protobuf) sends Claude-Code- and
Codex-shaped logs and metrics (the documented event and attribute names) to a
real `agentplane serve`, and the results are read back through agentplane's
own routes, on both backends.

http/json: the SDK's JSON exporter (opentelemetry-exporter-otlp-json-http,
0.66b1) pins the 1.45.1 stack, which the other exporters' 1.45.2 excludes;
so `JsonLogExporter` below sends the SDK's own OTLP encoding of its records
(`encode_logs`, what the protobuf exporters send) as OTLP JSON: the protobuf
JSON mapping with hex trace and span ids."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from tests.conftest import free_port
from tests.e2e.test_serve_process import serve

CLAUDE = Resource.create({"service.name": "claude-code", "service.version": "2.0.31"})
CODEX = Resource.create({"service.name": "codex_cli_rs", "service.version": "0.58.0", "env": "dev"})


class JsonLogExporter(LogRecordExporter):
    """OTLP/HTTP JSON: the SDK's encoding of its records, with OTLP JSON's hex ids."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        doc = json_format.MessageToDict(encode_logs(batch))
        for rl in doc.get("resourceLogs", []):
            for sl in rl.get("scopeLogs", []):
                for record in sl.get("logRecords", []):
                    for key in ("traceId", "spanId"):
                        if key in record:
                            record[key] = base64.b64decode(record[key]).hex()
        resp = httpx.post(
            self.endpoint, content=orjson.dumps(doc), headers={"content-type": "application/json"}
        )
        ok = resp.status_code == 200 and resp.headers["content-type"] == "application/json"
        return LogRecordExportResult.SUCCESS if ok else LogRecordExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[tuple[str, str]]:
    """A real `agentplane serve`: (HTTP base URL, gRPC target)."""
    http_port, grpc_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    args = ("--http-port", str(http_port), "--grpc-port", str(grpc_port))
    with serve(tmp_path, database_url, *args, health=f"{base}/healthz"):
        yield base, f"127.0.0.1:{grpc_port}"


def _emit_logs(exporter: Any, resource: Resource, events: list[tuple[str, dict[str, Any]]]) -> None:
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("com.anthropic.claude_code.events")
    for body, attributes in events:
        logger.emit(body=body, attributes=attributes)
    provider.force_flush()
    provider.shutdown()


def _claude_events(session: str, prompt: str) -> list[tuple[str, dict[str, Any]]]:
    common = {"session.id": session, "app.version": "2.0.31", "prompt.id": prompt, "terminal.type": "vscode"}
    return [
        ("claude_code.user_prompt", {**common, "event.name": "user_prompt", "prompt_length": "42"}),
        (
            "claude_code.api_request",
            {
                **common,
                "event.name": "api_request",
                "model": "claude-sonnet-4-5",
                "cost_usd": "0.0125",
                "duration_ms": "2310",
                "input_tokens": "1200",
                "output_tokens": "340",
                "cache_read_tokens": "5000",
                "cache_creation_tokens": "800",
            },
        ),
        (
            "claude_code.tool_decision",
            {**common, "event.name": "tool_decision", "tool_name": "Bash", "decision": "accept", "source": "config"},
        ),
        (
            "claude_code.tool_result",
            {**common, "event.name": "tool_result", "tool_name": "Bash", "success": "false", "duration_ms": "88"},
        ),
        ("claude_code.api_error", {**common, "event.name": "api_error", "model": "claude-sonnet-4-5",
                                   "error": "overloaded", "status_code": "529", "attempt": "1"}),
    ]  # fmt: skip


def _claude_metrics(exporter: Any, session: str, rounds: list[dict[str, float]]) -> None:
    """Claude Code's counters, exported (cumulative, the SDK's default) after
    each round: a round's figures are added, then every total is sent again."""
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=CLAUDE, metric_readers=[reader])
    meter = provider.get_meter("com.anthropic.claude_code")
    cost = meter.create_counter("claude_code.cost.usage", unit="USD")
    tokens = meter.create_counter("claude_code.token.usage", unit="tokens")
    lines = meter.create_counter("claude_code.lines_of_code.count")
    commits = meter.create_counter("claude_code.commit.count")
    prs = meter.create_counter("claude_code.pull_request.count")
    active = meter.create_counter("claude_code.active_time.total", unit="s")
    base = {"session.id": session, "model": "claude-sonnet-4-5"}
    for figures in rounds:
        cost.add(figures["cost"], base)
        tokens.add(int(figures["input"]), {**base, "type": "input"})
        tokens.add(int(figures["output"]), {**base, "type": "output"})
        lines.add(int(figures["added"]), {"session.id": session, "type": "added"})
        lines.add(int(figures["removed"]), {"session.id": session, "type": "removed"})
        commits.add(int(figures["commits"]), {"session.id": session})
        prs.add(int(figures["prs"]), {"session.id": session})
        active.add(figures["active"], {"session.id": session})
        assert provider.force_flush()
    provider.shutdown()


def _usage(base: str, session: str) -> dict[str, Any]:
    resp = httpx.get(f"{base}/v1/telemetry/sessions/{session}/usage")
    assert resp.status_code == 200, resp.text
    session_usage: dict[str, Any] = resp.json()["session"]
    return session_usage


def _records(base: str, session: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    token = ""
    while True:
        resp = httpx.get(
            f"{base}/v1/telemetry/records",
            params={"session_id": session, "page_size": 4, "page_token": token},
        )
        assert resp.status_code == 200, resp.text
        out += resp.json()["records"]
        token = resp.json()["next_page_token"]
        if not token:
            return out


def test_real_exporters_grpc_http_protobuf_and_http_json(server: tuple[str, str]) -> None:
    """One server per backend (starting one is most of the time), both stories."""
    claude_code_over_grpc_merges_with_the_hooks_session(*server)
    codex_over_http_protobuf_and_claude_code_over_http_json(server[0])


def claude_code_over_grpc_merges_with_the_hooks_session(base: str, target: str) -> None:
    session = "7f0c6b1e-3c1a-4c55-9a57-0d3c1c1b0a01"
    # The Claude Code hook binds the runtime session to a tracer task first.
    ensured = httpx.post(
        f"{base}/ingest/v1/sessions/ensure",
        json={"runtimeSource": "claude-plugin", "runtimeSessionId": session, "title": "Fix the parser"},
    ).json()["data"]
    _emit_logs(GrpcLogExporter(endpoint=target, insecure=True), CLAUDE, _claude_events(session, "p-1"))
    rounds = [
        {
            "cost": 0.5,
            "input": 1000,
            "output": 200,
            "added": 30,
            "removed": 4,
            "commits": 1,
            "prs": 0,
            "active": 12.5,
        },
        {
            "cost": 0.25,
            "input": 500,
            "output": 100,
            "added": 10,
            "removed": 0,
            "commits": 0,
            "prs": 1,
            "active": 2.5,
        },
        {"cost": 0, "input": 0, "output": 0, "added": 0, "removed": 0, "commits": 0, "prs": 0, "active": 0},
    ]  # the last round resends the same running totals: nothing more is counted
    _claude_metrics(GrpcMetricExporter(endpoint=target, insecure=True), session, rounds)

    got = _usage(base, session)
    assert got["runtime"] == "claude-code" and got["model"] == "claude-sonnet-4-5"
    assert (got["task_id"], got["monitor_session_id"]) == (ensured["taskId"], ensured["sessionId"])
    usage, counters = got["usage"], got["counters"]
    # Cost and tokens: per figure, the larger of the metrics (0.75 USD, 1,500 in,
    # 300 out) and the request event (0.0125 USD, 1,200 in, 340 out); the cache
    # tokens came from the event only. Never summed.
    assert usage["cost_usd"] == pytest.approx(0.75)
    assert (usage["input_tokens"], usage["output_tokens"]) == (1500, 340)
    assert (usage["cache_read_tokens"], usage["cache_creation_tokens"]) == (5000, 800)
    assert (usage["api_requests"], usage["api_errors"]) == (1, 1)
    assert counters["lines_added"] == 40 and counters["lines_removed"] == 4
    assert (counters["commits"], counters["pull_requests"]) == (1, 1)
    assert counters["active_seconds"] == pytest.approx(15.0)
    assert (counters["tool_results"], counters["tool_failures"], counters["tool_decisions"]) == (1, 1, 1)
    assert counters["prompts"] == 1

    # The same figures by the monitor session id the hooks made, and per task.
    assert _usage(base, ensured["sessionId"])["session_id"] == session
    task = httpx.get(f"{base}/v1/telemetry/tasks/{ensured['taskId']}/usage").json()
    assert task["usage"]["cost_usd"] == pytest.approx(0.75) and [
        s["session_id"] for s in task["sessions"]
    ] == [session]
    # No session was made for the telemetry: the hooks' monitor session is the only one.
    listed = [s["session_id"] for s in httpx.get(f"{base}/sessions").json()["sessions"]]
    assert session not in listed and ensured["sessionId"] in listed

    records = _records(base, session)
    kinds = [r["kind"] for r in records]
    assert kinds[:5] == ["user_prompt", "api_request", "tool_decision", "tool_result", "api_error"]
    request = records[1]["data"]
    assert (request["model"], request["input_tokens"], request["prompt_id"]) == (
        "claude-sonnet-4-5",
        1200,
        "p-1",
    )
    assert request["resource"] == {"service.name": "claude-code", "service.version": "2.0.31"}
    metrics = [r["data"] for r in records if r["kind"] == "metric"]
    # 8 streams (tokens and lines count two each), exported 4 times (3 flushes,
    # and once more at shutdown), each export every running total again
    assert len(metrics) == 4 * 8
    # Every record is in the one log too, streamed like everything else.
    watched = httpx.get(f"{base}/v1/log:watch", params={"after_seq": 0, "stop_at_end": "true",
                                                         "session_id": session}).text  # fmt: skip
    types = [orjson.loads(line)["result"]["entry"]["type"] for line in watched.splitlines()]
    assert types.count("telemetry.metric") == 32 and "telemetry.api_request" in types


def codex_over_http_protobuf_and_claude_code_over_http_json(base: str) -> None:
    conversation = "0199a213-81c0-7800-8aa1-bbab2a035a53"
    common = {"conversation.id": conversation, "app.version": "0.58.0", "auth_mode": "ChatGPT",
              "model": "gpt-5-codex", "terminal.type": "xterm"}  # fmt: skip
    codex_events = [
        ("", {**common, "event.name": "codex.conversation_starts", "provider_name": "openai"}),
        ("", {**common, "event.name": "codex.user_prompt", "prompt_length": 17}),
        ("", {**common, "event.name": "codex.api_request", "duration_ms": 812, "http.response.status_code": 200}),
        ("", {**common, "event.name": "codex.sse_event", "event.kind": "response.completed",
              "input_token_count": 2400, "output_token_count": 310, "cached_token_count": 1800}),
        ("", {**common, "event.name": "codex.tool_result", "tool_name": "shell", "call_id": "c1",
              "duration_ms": 40, "success": "true"}),
    ]  # fmt: skip
    _emit_logs(HttpLogExporter(endpoint=f"{base}/v1/logs"), CODEX, codex_events)
    got = _usage(base, conversation)
    assert got["runtime"] == "codex" and got["model"] == "gpt-5-codex"
    assert (got["usage"]["input_tokens"], got["usage"]["output_tokens"]) == (2400, 310)
    assert got["usage"]["cache_read_tokens"] == 1800 and got["usage"]["api_requests"] == 1
    assert got["counters"]["prompts"] == 1 and got["counters"]["tool_results"] == 1
    kinds = [r["kind"] for r in _records(base, conversation)]
    assert kinds == ["record", "user_prompt", "api_request", "api_usage", "tool_result"]

    session = "a8e7f9d1-2222-4c55-9a57-0d3c1c1b0a02"
    events = _claude_events(session, "p-2")
    events.append(("claude_code.something_new", {"session.id": session, "event.name": "something_new"}))
    bad = dict(events[1][1], input_tokens="lots")  # a request whose token count is no number
    events.append(("claude_code.api_request", bad))
    _emit_logs(JsonLogExporter(endpoint=f"{base}/v1/logs"), CLAUDE, events)
    _claude_metrics(HttpMetricExporter(endpoint=f"{base}/v1/metrics"), session, [
        {"cost": 0.001, "input": 10, "output": 2, "added": 1, "removed": 1, "commits": 0, "prs": 0, "active": 1.0},
    ])  # fmt: skip
    got = _usage(base, session)
    # The event's 1,200 input tokens outweigh the metric's 10; the bad request was refused, not half-stored.
    assert got["usage"]["input_tokens"] == 1200 and got["usage"]["api_requests"] == 1
    assert got["usage"]["cost_usd"] == pytest.approx(0.0125)
    records = _records(base, session)
    assert [r["kind"] for r in records][:6] == [
        "user_prompt", "api_request", "tool_decision", "tool_result", "api_error", "record"
    ]  # fmt: skip
    assert records[5]["data"]["event"] == "claude_code.something_new"
    workspace = httpx.get(f"{base}/v1/telemetry/usage").json()
    assert workspace["sessions"] == 3  # with the Claude Code session sent over gRPC
    assert workspace["total"]["input_tokens"] == 1500 + 2400 + 1200
    assert workspace["today"]["input_tokens"] == 1500 + 2400 + 1200  # every record here happened today
    assert workspace["day"] == time.strftime("%Y-%m-%d", time.gmtime())
