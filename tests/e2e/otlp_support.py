"""What the OTLP receiver's tests send and read back, whatever the exporter:
Claude Code's and Codex's telemetry as they emit it (the documented event,
metric and attribute names; ../shared/reference/opentelemetry.md), a real
`agentplane serve`, and reads through agentplane's own routes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.test_serve_process import serve

CLAUDE = {"service.name": "claude-code", "service.version": "2.0.31"}
CODEX = {"service.name": "codex_cli_rs", "service.version": "0.58.0", "env": "dev"}
MODEL = "claude-sonnet-4-5"

# Claude Code's counters, one round per export interval: a round's figures are
# added, then (cumulative, the SDKs' default) every running total is sent again.
# The last round adds nothing: resent totals count nothing more.
CLAUDE_ROUNDS: list[dict[str, float]] = [
    {"cost": 0.5, "input": 1000, "output": 200, "added": 30, "removed": 4, "commits": 1, "prs": 0, "active": 12.5},
    {"cost": 0.25, "input": 500, "output": 100, "added": 10, "removed": 0, "commits": 0, "prs": 1, "active": 2.5},
    {"cost": 0, "input": 0, "output": 0, "added": 0, "removed": 0, "commits": 0, "prs": 0, "active": 0},
]  # fmt: skip
# Streams per round: tokens and lines of code count two each.
CLAUDE_STREAMS = 8


def claude_events(session: str, prompt: str) -> list[tuple[str, dict[str, Any]]]:
    """(body, attributes) of one prompt's events, as Claude Code logs them."""
    common = {"session.id": session, "app.version": "2.0.31", "prompt.id": prompt, "terminal.type": "vscode"}
    return [
        ("claude_code.user_prompt", {**common, "event.name": "user_prompt", "prompt_length": "42"}),
        (
            "claude_code.api_request",
            {
                **common,
                "event.name": "api_request",
                "model": MODEL,
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
        ("claude_code.api_error", {**common, "event.name": "api_error", "model": MODEL,
                                   "error": "overloaded", "status_code": "529", "attempt": "1"}),
    ]  # fmt: skip


def with_unknown_and_bad(session: str, events: list[tuple[str, dict[str, Any]]]) -> None:
    """An event the server does not know (kept as a `record`) and a request
    whose token count is no number (refused alone, reported in partial_success)."""
    events.append(("claude_code.something_new", {"session.id": session, "event.name": "something_new"}))
    events.append(("claude_code.api_request", dict(events[1][1], input_tokens="lots")))


def claude_points(session: str, figures: dict[str, float]) -> list[tuple[str, str, float, dict[str, Any]]]:
    """One round of Claude Code's counters: (metric, unit, amount added, attributes)."""
    base = {"session.id": session, "model": MODEL}
    only = {"session.id": session}
    return [
        ("claude_code.cost.usage", "USD", figures["cost"], base),
        ("claude_code.token.usage", "tokens", int(figures["input"]), {**base, "type": "input"}),
        ("claude_code.token.usage", "tokens", int(figures["output"]), {**base, "type": "output"}),
        ("claude_code.lines_of_code.count", "", int(figures["added"]), {**only, "type": "added"}),
        ("claude_code.lines_of_code.count", "", int(figures["removed"]), {**only, "type": "removed"}),
        ("claude_code.commit.count", "", int(figures["commits"]), only),
        ("claude_code.pull_request.count", "", int(figures["prs"]), only),
        ("claude_code.active_time.total", "s", figures["active"], only),
    ]


def codex_events(conversation: str) -> list[tuple[str, dict[str, Any]]]:
    """A Codex turn's log events (the name in `event.name`, the body empty)."""
    common = {"conversation.id": conversation, "app.version": "0.58.0", "auth_mode": "ChatGPT",
              "model": "gpt-5-codex", "terminal.type": "xterm"}  # fmt: skip
    return [
        ("", {**common, "event.name": "codex.conversation_starts", "provider_name": "openai"}),
        ("", {**common, "event.name": "codex.user_prompt", "prompt_length": 17}),
        ("", {**common, "event.name": "codex.api_request", "duration_ms": 812, "http.response.status_code": 200}),
        ("", {**common, "event.name": "codex.sse_event", "event.kind": "response.completed",
              "input_token_count": 2400, "output_token_count": 310, "cached_token_count": 1800}),
        ("", {**common, "event.name": "codex.tool_result", "tool_name": "shell", "call_id": "c1",
              "duration_ms": 40, "success": "true"}),
    ]  # fmt: skip


@contextmanager
def otlp_server(workdir: Path, database_url: str, *args: str) -> Iterator[tuple[str, str]]:
    """A real `agentplane serve`: (HTTP base URL, gRPC target)."""
    http_port, grpc_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    ports = ("--http-port", str(http_port), "--grpc-port", str(grpc_port))
    with serve(workdir, database_url, *ports, *args, health=f"{base}/healthz"):
        yield base, f"127.0.0.1:{grpc_port}"


def ensure_hook_session(base: str, session: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    """What the Claude Code hook does first: bind the runtime session to a tracer task."""
    resp = httpx.post(
        f"{base}/ingest/v1/sessions/ensure",
        json={"runtimeSource": "claude-plugin", "runtimeSessionId": session, "title": "Fix the parser"},
        headers=headers,
    )
    assert resp.status_code == 200, resp.text
    ensured: dict[str, str] = resp.json()["data"]
    return ensured


def usage(base: str, session: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    resp = httpx.get(f"{base}/v1/telemetry/sessions/{session}/usage", headers=headers)
    assert resp.status_code == 200, resp.text
    session_usage: dict[str, Any] = resp.json()["session"]
    return session_usage


def records(base: str, session: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every telemetry record of a session, paged through."""
    out: list[dict[str, Any]] = []
    token = ""
    while True:
        resp = httpx.get(
            f"{base}/v1/telemetry/records",
            params={"session_id": session, "page_size": 4, "page_token": token},
            headers=headers,
        )
        assert resp.status_code == 200, resp.text
        out += resp.json()["records"]
        token = resp.json()["next_page_token"]
        if not token:
            return out


def check_claude_figures(got: dict[str, Any]) -> None:
    """The usage of a session sent `claude_events(session, ...)` and `CLAUDE_ROUNDS`."""
    assert got["runtime"] == "claude-code" and got["model"] == MODEL
    figures, counters = got["usage"], got["counters"]
    # Cost and tokens: per figure, the larger of the metrics (0.75 USD, 1,500 in,
    # 300 out) and the request event (0.0125 USD, 1,200 in, 340 out); the cache
    # tokens came from the event only. Never summed.
    assert figures["cost_usd"] == pytest.approx(0.75)
    assert (figures["input_tokens"], figures["output_tokens"]) == (1500, 340)
    assert (figures["cache_read_tokens"], figures["cache_creation_tokens"]) == (5000, 800)
    assert (figures["api_requests"], figures["api_errors"]) == (1, 1)
    assert counters["lines_added"] == 40 and counters["lines_removed"] == 4
    assert (counters["commits"], counters["pull_requests"]) == (1, 1)
    assert counters["active_seconds"] == pytest.approx(15.0)
    assert (counters["tool_results"], counters["tool_failures"], counters["tool_decisions"]) == (1, 1, 1)
    assert counters["prompts"] == 1


def check_claude_session(base: str, session: str, ensured: dict[str, str]) -> list[dict[str, Any]]:
    """A session sent `claude_events(session, "p-1")` and `CLAUDE_ROUNDS`, after
    the hook bound it (`ensured`): its usage, task and records; returns the records."""
    got = usage(base, session)
    check_claude_figures(got)
    assert (got["task_id"], got["monitor_session_id"]) == (ensured["taskId"], ensured["sessionId"])
    # The same figures by the monitor session id the hooks made, and per task.
    assert usage(base, ensured["sessionId"])["session_id"] == session
    task = httpx.get(f"{base}/v1/telemetry/tasks/{ensured['taskId']}/usage").json()
    assert task["usage"]["cost_usd"] == pytest.approx(0.75)
    assert [s["session_id"] for s in task["sessions"]] == [session]
    # No session was made for the telemetry: the hooks' monitor session is the only one.
    listed = [s["session_id"] for s in httpx.get(f"{base}/sessions").json()["sessions"]]
    assert session not in listed and ensured["sessionId"] in listed

    found = records(base, session)
    assert [r["kind"] for r in found][:5] == [
        "user_prompt",
        "api_request",
        "tool_decision",
        "tool_result",
        "api_error",
    ]
    request = found[1]["data"]
    assert (request["model"], request["input_tokens"], request["prompt_id"]) == (MODEL, 1200, "p-1")
    assert request["resource"] == CLAUDE
    return found


def check_codex_conversation(base: str, conversation: str) -> None:
    """A conversation sent `codex_events(conversation)`: tokens from the
    completed response's `codex.sse_event`, its records in order."""
    got = usage(base, conversation)
    assert got["runtime"] == "codex" and got["model"] == "gpt-5-codex"
    assert (got["usage"]["input_tokens"], got["usage"]["output_tokens"]) == (2400, 310)
    assert got["usage"]["cache_read_tokens"] == 1800 and got["usage"]["api_requests"] == 1
    assert got["counters"]["prompts"] == 1 and got["counters"]["tool_results"] == 1
    kinds = [r["kind"] for r in records(base, conversation)]
    assert kinds == ["record", "user_prompt", "api_request", "api_usage", "tool_result"]
