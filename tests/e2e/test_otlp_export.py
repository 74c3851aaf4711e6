"""The OTLP exporter against real receivers: agentplane's writes arrive as
GenAI spans (names, attributes, parents, stable ids), through failures,
stalls and refusals with nothing lost and nothing duplicated, and the
cursor survives a restart of a real `agentplane serve`. Both backends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from prometheus_client.parser import text_string_to_metric_families

from service.app.otlp_export.otlp_messages import span_id, trace_id
from service.app.otlp_export.process import ExportStatus
from service.base.clock import ManualClock
from service.base.config import Settings
from service.store.database import create_engines
from service.store.otlp_export import cursors
from tests.conftest import Server, free_port, serving
from tests.otlp_receivers import Received, attributes, grpc_receiver, http_receiver

# What `record_everything` writes, as span names (a Counter would do; two share a name).
EXPECTED_NAMES = sorted(
    [
        "execute_tool Bash",  # runtime post_tool
        "invoke_agent",  # the tracer turn
        "execute_tool Edit",  # the tracer tool.used
        "chat claude-sonnet-4",  # the tracer token.usage
        "invoke_agent Build the feature",  # the execution
        "invoke_agent sonnet",  # its agent
        "execute_tool Write",  # its tool call, completed
        "execute_tool Grep",  # its tool call, failed
        "execute_tool Read",  # trenchcoat tool_result
        "chat claude-opus-4",  # trenchcoat assistant_stop
    ]
)


@contextlib.asynccontextmanager
async def exporting(settings: Settings, endpoint: str, protocol: str, **more: Any) -> AsyncIterator[Server]:
    settings.otlp_export_endpoint = endpoint
    settings.otlp_export_protocol = protocol
    settings.otlp_export_interval_seconds = 0.05
    settings.otlp_export_timeout_seconds = 1.0
    for name, value in more.items():
        setattr(settings, name, value)
    async with serving(settings) as server:
        yield server


async def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 300, response.text
    body: dict[str, Any] = response.json()
    return body


async def record_everything(http: httpx.AsyncClient) -> dict[str, str]:
    """One write of each kind the exporter maps; returns the ids it made."""
    await ok(await http.post("/sessions", json={"session_id": "rt-1", "session_name": "runtime"}))
    await ok(
        await http.post(
            "/sessions/rt-1/events",
            json={
                "event_type": "post_tool",
                "session_id": "rt-1",
                "session_name": "runtime",
                "timestamp": "2026-01-01T10:00:00Z",
                "tool_name": "Bash",
                "tool_output": "ok",
            },
        )
    )
    s = (
        await ok(
            await http.post(
                "/ingest/v1/sessions/ensure",
                json={
                    "runtimeSource": "claude-plugin",
                    "runtimeSessionId": "cc-1",
                    "title": "Fix the parser",
                },
            )
        )
    )["data"]
    task, session = s["taskId"], s["sessionId"]

    def tracer(kind: str, lane: str, **extra: Any) -> dict[str, Any]:
        return {"kind": kind, "taskId": task, "sessionId": session, "lane": lane, **extra}

    await ok(
        await http.post(
            "/ingest/v1/events",
            json={
                "events": [
                    tracer("user.message", "user", title="Fix it", body="It fails on empty input"),
                    tracer(
                        "tool.used",
                        "implementation",
                        title="Edit",
                        metadata={"toolName": "Edit", "toolUseId": "tu-1"},
                    ),
                    tracer(
                        "token.usage",
                        "telemetry",
                        title="tokens",
                        metadata={"inputTokens": 120, "outputTokens": 30, "model": "claude-sonnet-4"},
                    ),
                    tracer("assistant.response", "user", title="Done", body="Fixed the parser"),
                ]
            },
        )
    )
    execution = (await ok(await http.post("/api/v1/executions", json={"name": "Build the feature"})))[
        "execution"
    ]["id"]
    agent = (
        await ok(
            await http.post(
                f"/api/v1/executions/{execution}/agents", json={"prompt": "Implement it", "model": "sonnet"}
            )
        )
    )["agent"]["id"]
    write = (
        await ok(
            await http.post(
                f"/api/v1/agents/{agent}/tool-calls", json={"tool_name": "Write", "input": {"f": 1}}
            )
        )
    )["tool_call"]["id"]
    await ok(await http.post(f"/api/v1/tool-calls/{write}/complete", json={"output": "written"}))
    grep = (
        await ok(
            await http.post(
                f"/api/v1/agents/{agent}/tool-calls", json={"tool_name": "Grep", "input": {"q": "x"}}
            )
        )
    )["tool_call"]["id"]
    await ok(await http.post(f"/api/v1/tool-calls/{grep}/fail", json={"error": "no match"}))
    await ok(
        await http.post(
            f"/api/v1/agents/{agent}/complete",
            json={"result": "done", "tokens": {"input": 1000, "output": 500}},
        )
    )
    await ok(await http.post(f"/api/v1/executions/{execution}/complete", json={}))
    tc_session = "550e8400-e29b-41d4-a716-446655440000"
    await ok(
        await http.post(
            "/api/v1/events",
            json={
                "events": [
                    {
                        "event_type": "tool_result",
                        "session_id": tc_session,
                        "timestamp": "2026-01-01T10:00:02Z",
                        "data": {"tool_name": "Read", "tool_use_id": "toolu_1", "duration_ms": 1500},
                    },
                    {
                        "event_type": "assistant_stop",
                        "session_id": tc_session,
                        "timestamp": "2026-01-01T10:00:03Z",
                        "data": {"model": "claude-opus-4", "input_tokens": 700, "output_tokens": 90},
                    },
                ]
            },
        )
    )
    return {"task": task, "execution": execution, "agent": agent, "write": write, "grep": grep}


def named(spans: dict[bytes, Span]) -> dict[str, list[Span]]:
    out: dict[str, list[Span]] = {}
    for span in spans.values():
        out.setdefault(span.name, []).append(span)
    return out


async def cursor_of(server: Server) -> ExportStatus:
    """The exporter's persisted progress (what /metrics reads) once it has caught up with the log."""
    for _ in range(200):
        status = await server.core.otlp_export.status()
        assert status is not None
        if status.lag == 0:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"the exporter did not catch up: {status}")


async def test_writes_arrive_as_genai_spans_over_grpc(settings: Settings) -> None:
    received = Received()
    async with (
        grpc_receiver(received) as endpoint,
        exporting(
            settings,
            endpoint,
            "grpc",
            otlp_export_headers="Authorization=Bearer%20t0k",
            otlp_export_content=True,
        ) as server,
    ):
        ids = await record_everything(server.http)
        spans = await received.wait_for(len(EXPECTED_NAMES))
        assert sorted(s.name for s in spans.values()) == EXPECTED_NAMES
        assert received.duplicates() == 0
        assert received.headers[0]["authorization"] == "Bearer t0k"
        assert {tuple(sorted(r.items())) for r, _ in received.spans} == {
            (("agentplane.workspace", "default"), ("service.name", "agentplane"))
        }
        by_name = named(spans)

        # The execution is one trace: execution <- agent <- its tool calls, ids derived from the records.
        execution_trace = trace_id("default", f"execution:{ids['execution']}")
        (root,) = by_name["invoke_agent Build the feature"]
        (agent,) = by_name["invoke_agent sonnet"]
        (write,) = by_name["execute_tool Write"]
        grep = next(s for s in by_name["execute_tool Grep"])
        assert {s.trace_id for s in (root, agent, write, grep)} == {execution_trace}
        assert root.parent_span_id == b""
        assert agent.parent_span_id == root.span_id == span_id("default", f"execution:{ids['execution']}")
        assert write.parent_span_id == grep.parent_span_id == agent.span_id
        assert write.span_id == span_id("default", f"tool_call:{ids['write']}")
        assert attributes(agent) | {"gen_ai.input.messages": None} == {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.id": ids["agent"],
            "gen_ai.request.model": "sonnet",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 500,
            "gen_ai.input.messages": None,
            "gen_ai.output.messages": '[{"role": "assistant", "parts": [{"type": "text", "content": "done"}]}]',
        }
        assert attributes(write)["gen_ai.tool.name"] == "Write"
        assert attributes(write)["gen_ai.tool.call.id"] == ids["write"]
        assert attributes(write)["gen_ai.tool.call.result"] == "written"  # content is on
        assert attributes(grep)["error.type"] == "failed"
        assert grep.status.code == Status.STATUS_CODE_ERROR
        assert write.status.code == Status.STATUS_CODE_UNSET and "error.type" not in attributes(write)
        assert agent.end_time_unix_nano > agent.start_time_unix_nano > 0

        # The tracer task is a trace; the turn holds the events linked to it.
        (turn,) = by_name["invoke_agent"]
        (edit,) = by_name["execute_tool Edit"]
        (usage,) = by_name["chat claude-sonnet-4"]
        assert {turn.trace_id, edit.trace_id, usage.trace_id} == {trace_id("default", f"task:{ids['task']}")}
        assert edit.parent_span_id == usage.parent_span_id == turn.span_id
        assert "It fails on empty input" in attributes(turn)["gen_ai.input.messages"]
        assert attributes(edit)["gen_ai.tool.call.id"] == "tu-1"
        assert usage.kind == Span.SPAN_KIND_CLIENT
        assert attributes(usage)["gen_ai.usage.input_tokens"] == 120
        assert attributes(usage)["gen_ai.usage.output_tokens"] == 30
        assert attributes(usage)["gen_ai.request.model"] == "claude-sonnet-4"

        # Sessions of Trenchcoat and the runtime API: a session is a trace.
        (read,) = by_name["execute_tool Read"]
        (stop,) = by_name["chat claude-opus-4"]
        assert (
            read.trace_id
            == stop.trace_id
            == trace_id("default", "session:550e8400-e29b-41d4-a716-446655440000")
        )
        assert read.end_time_unix_nano - read.start_time_unix_nano == 1_500_000_000
        assert attributes(read)["gen_ai.tool.call.id"] == "toolu_1"
        assert attributes(stop)["gen_ai.usage.input_tokens"] == 700
        (bash,) = by_name["execute_tool Bash"]
        assert bash.trace_id == trace_id("default", "session:rt-1")
        assert bash.start_time_unix_nano == 1767261600 * 10**9

        cursor = await cursor_of(server)
        assert (cursor.spans_exported, cursor.batches_skipped, cursor.retries) == (len(EXPECTED_NAMES), 0, 0)
        scraped = await server.http.get("/metrics")
        assert scraped.status_code == 200
        figures = {
            sample.name: sample.value
            for family in text_string_to_metric_families(scraped.text)
            for sample in family.samples
        }
        assert figures["agentplane_otlp_export_up"] == 1
        assert figures["agentplane_otlp_export_lag_entries"] == 0
        assert figures["agentplane_otlp_export_spans_total"] == len(EXPECTED_NAMES)


async def test_grpc_receiver_that_fails_and_stalls_then_comes_back(settings: Settings) -> None:
    """UNAVAILABLE and RESOURCE_EXHAUSTED with RetryInfo, then no answer until the
    deadline: every span arrives once, nothing is skipped. Content was not asked
    for: no prompt, answer or tool input leaves."""
    received = Received(["unavailable", "exhausted", "stall"])
    async with grpc_receiver(received) as endpoint, exporting(settings, endpoint, "grpc") as server:
        await record_everything(server.http)
        spans = await received.wait_for(len(EXPECTED_NAMES))
        assert sorted(s.name for s in spans.values()) == EXPECTED_NAMES
        assert received.calls[:4] == ["unavailable", "exhausted", "stall", "ok"]
        assert received.duplicates() == 0
        keys = {key for span in spans.values() for key in attributes(span)}
        assert not {k for k in keys if k.endswith(("messages", "arguments", "result", "instructions"))}
        # RetryInfo said 0.2 s: the exporter waited that long, not its own backoff.
        assert 0.2 <= received.times[1] - received.times[0] < 1.0
        cursor = await cursor_of(server)
        assert cursor.spans_exported == len(EXPECTED_NAMES)
        assert (cursor.retries, cursor.batches_skipped) == (3, 0)


@pytest.mark.parametrize(
    ("protocol", "script"), [("http/protobuf", ["503", "stall"]), ("http/json", ["503"])]
)
async def test_http_receiver_busy_stalled_and_refusing(
    settings: Settings, protocol: str, script: list[str]
) -> None:
    """503 with Retry-After: 1 is waited out; a stalled answer is retried (a late
    acceptance resends the same spans: same ids, same content); a 400 skips its
    batch, counted, and export goes on."""
    received = Received(script)
    received.stall_seconds = 1.5  # past the exporter's 1 s timeout: the receiver keeps it late
    async with http_receiver(received) as endpoint, exporting(settings, endpoint, protocol) as server:
        await record_everything(server.http)
        spans = await received.wait_for(len(EXPECTED_NAMES))
        assert sorted(s.name for s in spans.values()) == EXPECTED_NAMES
        for _ in range(100):  # a stalled request was accepted late; its retry comes too
            if len(received.calls) > len(script):
                break
            await asyncio.sleep(0.05)
        assert received.calls[: len(script) + 1] == [*script, "ok"]
        assert received.times[1] - received.times[0] >= 1.0  # Retry-After: 1
        assert received.headers[0]["content-type"] == (
            "application/json" if protocol == "http/json" else "application/x-protobuf"
        )
        if "stall" in script:
            assert received.duplicates() > 0  # the late acceptance and the retry...
        assert len(received.by_id()) == len(EXPECTED_NAMES)  # ...are the same spans

        before = await cursor_of(server)
        received.script = ["400"]
        await ok(await server.http.post("/sessions", json={"session_id": "lost", "session_name": "x"}))
        tool = {"event_type": "post_tool", "session_name": "x", "timestamp": "2026-01-01T10:00:00Z"}
        await ok(
            await server.http.post(
                "/sessions/lost/events", json={**tool, "session_id": "lost", "tool_name": "Ls"}
            )
        )
        for _ in range(100):
            if "400" in received.calls:
                break
            await asyncio.sleep(0.05)
        after_skip = await cursor_of(server)
        assert after_skip.batches_skipped == before.batches_skipped + 1
        await ok(
            await server.http.post(
                "/sessions/lost/events", json={**tool, "session_id": "lost", "tool_name": "Cat"}
            )
        )
        spans = await received.wait_for(len(EXPECTED_NAMES) + 1)
        assert {"execute_tool Cat"} <= {s.name for s in spans.values()}
        assert "execute_tool Ls" not in {s.name for s in spans.values()}


def _serve(database_url: str, endpoint: str, http_port: int, grpc_port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "AGENTPLANE_DATABASE_URL": database_url,
        "AGENTPLANE_OTLP_EXPORT_INTERVAL_SECONDS": "0.05",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentplane_cli.main",
            "serve",
            "--http-port",
            str(http_port),
            "--grpc-port",
            str(grpc_port),
            "--otlp-export-endpoint",
            endpoint,
            "--otlp-export-protocol",
            "grpc",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def _post_tools(base: str, names: list[str]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/healthz")).status_code == 200:
                    break
            await asyncio.sleep(0.05)
        await http.post("/sessions", json={"session_id": "p-1", "session_name": "p"})
        for name in names:
            event = {
                "event_type": "post_tool",
                "session_id": "p-1",
                "session_name": "p",
                "timestamp": "2026-01-01T10:00:00Z",
                "tool_name": name,
            }
            await ok(await http.post("/sessions/p-1/events", json=event))


async def test_cursor_survives_a_restart_of_the_server(database_url: str, tmp_path: Path) -> None:
    """A real `agentplane serve`: what was acknowledged before SIGTERM is not sent again after."""
    received = Received()
    http_port, grpc_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    async with grpc_receiver(received) as endpoint:
        for names in (["A", "B", "C"], ["D", "E"]):
            proc = _serve(database_url, endpoint, http_port, grpc_port)
            try:
                await _post_tools(base, names)
                await received.wait_for(len(received.by_id()) + len(names))
                await asyncio.sleep(0.2)  # an idle exporter saves its cursor
            finally:
                proc.send_signal(signal.SIGTERM)
                out, _ = await asyncio.to_thread(proc.communicate, timeout=20)
                assert proc.returncode == 0, out.decode()
        assert sorted(s.name for s in received.by_id().values()) == [f"execute_tool {n}" for n in "ABCDE"]
        assert received.duplicates() == 0
    engines = create_engines(database_url)
    try:
        with engines.read.connect() as conn:
            (saved,) = cursors.load_all(conn)
        assert saved.target == f"grpc {endpoint}" and saved.spans_exported == 5
    finally:
        engines.dispose()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AGENTPLANE_OTLP_EXPORT_PROTOCOL": "thrift"}, "is not one of grpc, http/protobuf, http/json"),
        ({"AGENTPLANE_OTLP_EXPORT_HEADERS": "Authorization"}, "'Authorization' is not key=value"),
    ],
)
def test_bad_export_settings_stop_serve_before_it_starts(env: dict[str, str], message: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "agentplane_cli.main",
            "serve",
            "--http-port",
            str(free_port()),
            "--grpc-port",
            str(free_port()),
            "--otlp-export-endpoint",
            "http://127.0.0.1:4318",
        ],
        env={**os.environ, "AGENTPLANE_DATABASE_URL": "sqlite:///unused.db", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert message in result.stderr


async def test_entries_retention_removed_before_export_are_reported_as_a_gap(settings: Settings) -> None:
    """A backend added after retention removed old entries cannot get them: the
    exporter says so (a log line, a counter on /metrics) and exports what is kept."""
    clock = ManualClock(datetime(2026, 1, 10, 12, 0, tzinfo=UTC))

    def tool_event(session: str, output: str) -> dict[str, str]:
        return {
            "event_type": "post_tool",
            "session_id": session,
            "session_name": session,
            "timestamp": clock.now().isoformat(),
            "tool_name": "Bash",
            "tool_output": output,
        }

    async with serving(settings) as server:
        server.core.store.use_clock(clock)
        await ok(await server.http.post("/sessions", json={"session_id": "old", "session_name": "old"}))
        await ok(await server.http.post("/sessions/old/events", json=tool_event("old", "gone")))
        clock.advance(days=2)
        await ok(await server.http.post("/sessions", json={"session_id": "new", "session_name": "new"}))
        await ok(await server.http.post("/sessions/new/events", json=tool_event("new", "kept")))
        await ok(await server.http.put("/v1/retention", json={"retention_seconds": 86400}))
        assert await server.core.retention.run_once() == {"default": 2}

    received = Received()
    async with grpc_receiver(received) as endpoint, exporting(settings, endpoint, "grpc") as server:
        (span,) = (await received.wait_for(1)).values()
        assert span.trace_id == trace_id("default", "session:new")
        await cursor_of(server)
        scraped = await server.http.get("/metrics")
        figures = {
            sample.name: sample.value
            for family in text_string_to_metric_families(scraped.text)
            for sample in family.samples
        }
        assert figures["agentplane_otlp_export_retention_gaps_total"] == 1
        assert figures["agentplane_otlp_export_spans_total"] == 1
