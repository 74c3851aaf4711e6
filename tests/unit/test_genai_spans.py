"""The log -> GenAI span table for the entries the end-to-end export test does
not write: OTLP telemetry received from Claude Code and Codex (the
`telemetry.*` entries of the receiver) and AGH runs; and the kinds the
exporter reads."""

from __future__ import annotations

from service.domain.otlp_export.genai_spans import MAPPERS, exported_kinds, span_of, unix_nanos

SESSION = "3f0c9d3e-cc11-4a7e-9b9b-0d6f0f2a1c55"


def test_claude_code_api_request_is_a_chat_span_with_usage_and_cost() -> None:
    data = {
        "kind": "api_request",
        "runtime": "claude-code",
        "event": "claude_code.api_request",
        "session_id": SESSION,
        "time": "2026-01-01T10:00:02.500000+00:00",
        "prompt_id": "p-1",
        "model": "claude-sonnet-4-5",
        "input_tokens": 1200,
        "output_tokens": 300,
        "cache_read_tokens": 800,
        "cache_creation_tokens": 0,
        "cost_usd": 0.0123,
        "duration_ms": 2500,
    }
    span = span_of("telemetry.api_request", None, "ev-1", data)
    assert span is not None
    assert span.name == "chat claude-sonnet-4-5"
    assert (span.trace_key, span.span_key) == (f"session:{SESSION}", "event:ev-1")
    assert span.operation == "chat"
    assert span.attributes == {
        "gen_ai.conversation.id": SESSION,
        "agentplane.runtime": "claude-code",
        "agentplane.prompt.id": "p-1",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 300,
        "gen_ai.usage.cache_read.input_tokens": 800,
        "gen_ai.usage.cache_creation.input_tokens": 0,
        "gen_ai.usage.cost": 0.0123,
    }
    assert unix_nanos(span.end) - unix_nanos(span.start) == 2_500_000_000  # type: ignore[operator]
    assert span.error_type is None


def test_api_error_and_failed_tool_result_carry_error_type() -> None:
    error = span_of(
        "telemetry.api_error",
        None,
        "ev-2",
        {
            "kind": "api_error",
            "session_id": SESSION,
            "time": "2026-01-01T10:00:00Z",
            "model": "m",
            "status_code": 529,
        },
    )
    assert error is not None and error.error_type == "529" and error.operation == "chat"
    tool = span_of(
        "telemetry.tool_result",
        None,
        "ev-3",
        {
            "kind": "tool_result",
            "session_id": SESSION,
            "time": "2026-01-01T10:00:00Z",
            "tool_name": "Bash",
            "success": False,
            "duration_ms": 40,
        },
    )
    assert tool is not None and tool.name == "execute_tool Bash" and tool.error_type == "tool_error"
    assert tool.attributes["gen_ai.tool.name"] == "Bash"


def test_agh_run_is_an_agent_invocation_in_its_task_trace() -> None:
    data = {
        "task": {"id": "t-1"},
        "run": {
            "id": "r-1",
            "attempt": 2,
            "status": "failed",
            "claimed_by_ref": "reviewer",
            "started_at": "2026-01-01T10:00:00Z",
            "ended_at": "2026-01-01T10:01:00Z",
            "failure_kind": "lease_expired",
            "session_id": "s-1",
        },
    }
    span = span_of("task_run.failed", None, "ev-4", data)
    assert span is not None
    assert (span.name, span.trace_key, span.span_key) == (
        "invoke_agent reviewer",
        "agh_task:t-1",
        "agh_run:r-1",
    )
    assert span.error_type == "lease_expired"
    assert span.attributes["gen_ai.agent.name"] == "reviewer"


def test_entries_of_other_kinds_make_no_span_and_are_not_read() -> None:
    assert span_of("telemetry.metric", None, "ev-5", {"name": "claude_code.cost.usage"}) is None
    assert span_of("trenchcoat.event", "session_start", "ev-6", {}) is None
    kinds = exported_kinds()
    assert kinds["trenchcoat.event"] == ["tool_result", "assistant_stop"]
    assert kinds["telemetry.api_request"] is None
    assert "telemetry.metric" not in kinds
    assert len(MAPPERS) == sum(1 if names is None else len(names) for names in kinds.values())
