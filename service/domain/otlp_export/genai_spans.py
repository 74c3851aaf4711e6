"""Which log entries are GenAI spans, and what each one says (the GenAI
semantic conventions: `chat`, `invoke_agent`, `execute_tool`).

One entry makes at most one span, from its own data alone: the exporter
keeps no state between entries, so any batch can be sent again after a
crash and comes out the same. A span's ids are derived from what it stands
for (the turn, agent, tool call or event), never generated, so a resend
carries the same ids and a backend keeps one copy; its parent and its trace
are derived the same way from the ids the entry names (a tool call's agent,
a turn's task), so no lookup is needed to link them.

The mapping is a table, `MAPPERS`: (entry type, entry name or None for
any) -> a function of the entry's data. Adding a kind of entry is one
function and one row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

CHAT, INVOKE_AGENT, EXECUTE_TOOL = "chat", "invoke_agent", "execute_tool"

Attribute = str | int | float | bool


@dataclass(slots=True)
class GenAiSpan:
    """A span before it is encoded. Keys are stable names of what the span,
    its parent and its trace stand for (`turn:<id>`); the encoder hashes
    them with the workspace into OTLP ids."""

    trace_key: str
    span_key: str
    parent_key: str | None
    # `gen_ai.operation.name`, which the encoder sets.
    operation: str
    # What the span name adds to the operation: the model, tool or agent.
    subject: str | None
    start: str | int | None
    end: str | int | None
    attributes: dict[str, Attribute]
    error_type: str | None = None
    # Opt-in content (AGENTPLANE_OTLP_EXPORT_CONTENT): attribute -> text,
    # made only when asked for (serialising tool inputs costs more than the span).
    content: Callable[[], dict[str, str]] = dict

    @property
    def name(self) -> str:
        return f"{self.operation} {self.subject}" if self.subject else self.operation


def _int(value: Any) -> int | None:
    """An integer, also one that came through a Struct as a double (1000.0)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _usage(attrs: dict[str, Attribute], **tokens: Any) -> None:
    """gen_ai.usage.* from whichever counts the entry has (`__` stands for a dot)."""
    for name, value in tokens.items():
        if (count := _int(value)) is not None:
            attrs[f"gen_ai.usage.{name.replace('__', '.')}"] = count


def _put(attrs: dict[str, Attribute], name: str, value: Any) -> None:
    if (text := _text(value)) is not None:
        attrs[name] = text


def _messages(role: str, text: Any) -> str | None:
    """A message as `gen_ai.input.messages` / `gen_ai.output.messages` hold it."""
    if not _text(text):
        return None
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}], ensure_ascii=False)


def _content(**texts: Any) -> dict[str, str]:
    return {k.replace("__", "."): v for k, v in texts.items() if isinstance(v, str) and v}


def _json_text(value: Any) -> str | None:
    if value is None or value == {} or value == "":
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


# --- Agent Tracer (seed 000): a task is a trace, a turn an agent invocation.


def tracer_turn(data: dict[str, Any]) -> GenAiSpan | None:
    turn = data.get("turn") or {}
    if not _text(turn.get("id")) or not _text(turn.get("taskId")):
        return None
    attrs: dict[str, Attribute] = {}
    _put(attrs, "gen_ai.conversation.id", turn.get("sessionId"))
    if (index := _int(turn.get("turnIndex"))) is not None:
        attrs["agentplane.turn.index"] = index
    _put(attrs, "agentplane.turn.close_reason", data.get("reason"))
    return GenAiSpan(
        trace_key=f"task:{turn['taskId']}",
        span_key=f"turn:{turn['id']}",
        parent_key=None,
        operation=INVOKE_AGENT,
        subject=None,
        start=turn.get("startedAt"),
        end=turn.get("endedAt"),
        attributes=attrs,
        content=lambda: _content(
            gen_ai__input__messages=_messages("user", turn.get("askedText")),
            gen_ai__output__messages=_messages("assistant", turn.get("assistantText")),
        ),
    )


def _tracer_event_span(data: dict[str, Any], operation: str, subject: str | None) -> GenAiSpan | None:
    if not _text(data.get("id")) or not _text(data.get("taskId")):
        return None
    attrs: dict[str, Attribute] = {}
    _put(attrs, "gen_ai.conversation.id", data.get("sessionId"))
    turn = _text(data.get("turnId"))
    return GenAiSpan(
        trace_key=f"task:{data['taskId']}",
        span_key=f"event:{data['id']}",
        parent_key=f"turn:{turn}" if turn else None,
        operation=operation,
        subject=subject,
        start=data.get("createdAt"),
        end=data.get("createdAt"),
        attributes=attrs,
    )


def tracer_token_usage(data: dict[str, Any]) -> GenAiSpan | None:
    meta = data.get("metadata") or {}
    model = _text(meta.get("model"))
    span = _tracer_event_span(data, CHAT, model)
    if span is not None:
        _put(span.attributes, "gen_ai.request.model", model)
        _usage(
            span.attributes,
            input_tokens=meta.get("inputTokens"),
            output_tokens=meta.get("outputTokens"),
            cache_read__input_tokens=meta.get("cacheReadTokens"),
            cache_creation__input_tokens=meta.get("cacheCreateTokens"),
        )
    return span


def tracer_tool(data: dict[str, Any]) -> GenAiSpan | None:
    meta = data.get("metadata") or {}
    tool = _text(meta.get("toolName")) or _text(data.get("title"))
    span = _tracer_event_span(data, EXECUTE_TOOL, tool)
    if span is not None:
        _put(span.attributes, "gen_ai.tool.name", tool)
        _put(span.attributes, "gen_ai.tool.call.id", meta.get("toolUseId"))
        body = data.get("body")
        span.content = lambda: _content(gen_ai__tool__call__arguments=_text(body))
    return span


# --- Agents API (seed 001): an execution is a trace, its agents invoke_agent
# spans under it, their tool calls execute_tool spans under them.


def execution_span(data: dict[str, Any]) -> GenAiSpan | None:
    ex = data.get("execution") or {}
    if not _text(ex.get("id")):
        return None
    attrs: dict[str, Attribute] = {}
    _put(attrs, "gen_ai.agent.name", ex.get("name"))
    attrs["gen_ai.agent.id"] = ex["id"]
    _usage(attrs, total_tokens=ex.get("total_tokens_used"))
    _put(attrs, "agentplane.status", ex.get("status"))
    return GenAiSpan(
        trace_key=f"execution:{ex['id']}",
        span_key=f"execution:{ex['id']}",
        parent_key=None,
        operation=INVOKE_AGENT,
        subject=_text(ex.get("name")),
        start=ex.get("started_at"),
        end=ex.get("completed_at"),
        attributes=attrs,
        error_type=_error_type(ex.get("status"), ex.get("error")),
    )


def agent_span(data: dict[str, Any]) -> GenAiSpan | None:
    agent = data.get("agent") or {}
    if not _text(agent.get("id")) or not _text(agent.get("execution_id")):
        return None
    model = _text(agent.get("model"))
    attrs: dict[str, Attribute] = {}
    attrs["gen_ai.agent.id"] = agent["id"]
    _put(attrs, "gen_ai.request.model", model)
    _usage(attrs, input_tokens=agent.get("tokens_input"), output_tokens=agent.get("tokens_output"))
    return GenAiSpan(
        trace_key=f"execution:{agent['execution_id']}",
        span_key=f"agent:{agent['id']}",
        parent_key=f"execution:{agent['execution_id']}",
        operation=INVOKE_AGENT,
        subject=model,
        start=agent.get("started_at"),
        end=agent.get("completed_at"),
        attributes=attrs,
        error_type=_error_type(agent.get("status"), agent.get("error")),
        content=lambda: _content(
            gen_ai__system_instructions=_text(agent.get("system_prompt")),
            gen_ai__input__messages=_messages("user", agent.get("prompt")),
            gen_ai__output__messages=_messages("assistant", agent.get("result")),
        ),
    )


def tool_call_span(data: dict[str, Any]) -> GenAiSpan | None:
    call = data.get("tool_call") or {}
    if not _text(call.get("id")) or not _text(call.get("execution_id")):
        return None
    tool = _text(call.get("tool_name"))
    attrs: dict[str, Attribute] = {}
    _put(attrs, "gen_ai.tool.name", tool)
    attrs["gen_ai.tool.call.id"] = call["id"]
    agent = _text(call.get("agent_id"))
    return GenAiSpan(
        trace_key=f"execution:{call['execution_id']}",
        span_key=f"tool_call:{call['id']}",
        parent_key=f"agent:{agent}" if agent else None,
        operation=EXECUTE_TOOL,
        subject=tool,
        start=call.get("started_at"),
        end=call.get("completed_at"),
        attributes=attrs,
        error_type=_error_type(call.get("status"), call.get("error")),
        content=lambda: _content(
            gen_ai__tool__call__arguments=_json_text(call.get("input")),
            gen_ai__tool__call__result=_text(call.get("output_inline")) or _text(call.get("output_summary")),
        ),
    )


# --- Trenchcoat (seed 002) and Agent Runtime (seed 004): a session is a
# trace; events carry their own time (and a tool result its duration).


def trenchcoat_tool_result(data: dict[str, Any], event_id: str) -> GenAiSpan | None:
    body = data.get("data") or {}
    tool = _text(body.get("tool_name"))
    attrs: dict[str, Attribute] = {}
    _put(attrs, "gen_ai.tool.name", tool)
    _put(attrs, "gen_ai.tool.call.id", body.get("tool_use_id"))
    _put(attrs, "gen_ai.conversation.id", data.get("session_id"))
    failed = body.get("success") is False or body.get("is_error") is True or _text(body.get("error"))
    return GenAiSpan(
        trace_key=f"session:{data.get('session_id')}",
        span_key=f"event:{event_id}",
        parent_key=None,
        operation=EXECUTE_TOOL,
        subject=tool,
        start=_minus_ms(data.get("timestamp"), _int(body.get("duration_ms"))),
        end=data.get("timestamp"),
        attributes=attrs,
        error_type="tool_error" if failed else None,
        content=lambda: _content(
            gen_ai__tool__call__arguments=_json_text(body.get("tool_input")),
            gen_ai__tool__call__result=_json_text(body.get("tool_output") or body.get("tool_response")),
        ),
    )


def trenchcoat_assistant_stop(data: dict[str, Any], event_id: str) -> GenAiSpan | None:
    body = data.get("data") or {}
    model = _text(body.get("model"))
    attrs: dict[str, Attribute] = {}
    _put(attrs, "gen_ai.request.model", model)
    _put(attrs, "gen_ai.conversation.id", data.get("session_id"))
    _usage(
        attrs,
        input_tokens=body.get("input_tokens"),
        output_tokens=body.get("output_tokens"),
        cache_read__input_tokens=body.get("cache_read_tokens"),
        cache_creation__input_tokens=body.get("cache_creation_tokens"),
    )
    if (reason := _text(body.get("stop_reason"))) is not None:
        attrs["gen_ai.response.finish_reasons"] = reason
    return GenAiSpan(
        trace_key=f"session:{data.get('session_id')}",
        span_key=f"event:{event_id}",
        parent_key=None,
        operation=CHAT,
        subject=model,
        start=data.get("timestamp"),
        end=data.get("timestamp"),
        attributes=attrs,
    )


def runtime_post_tool(data: dict[str, Any], event_id: str) -> GenAiSpan | None:
    tool = _text(data.get("tool_name"))
    attrs: dict[str, Attribute] = {}
    _put(attrs, "gen_ai.tool.name", tool)
    _put(attrs, "gen_ai.conversation.id", data.get("session_id"))
    exit_code = _int(data.get("exit_code"))
    failed = _text(data.get("error")) or (exit_code is not None and exit_code != 0)
    return GenAiSpan(
        trace_key=f"session:{data.get('session_id')}",
        span_key=f"event:{event_id}",
        parent_key=None,
        operation=EXECUTE_TOOL,
        subject=tool,
        start=data.get("timestamp"),
        end=data.get("timestamp"),
        attributes=attrs,
        error_type="tool_error" if failed else None,
        content=lambda: _content(
            gen_ai__tool__call__arguments=_json_text(data.get("tool_input")),
            gen_ai__tool__call__result=_json_text(data.get("tool_output")),
        ),
    )


# --- OTLP telemetry received from Claude Code and Codex (`telemetry.*`
# entries, service.domain.telemetry): a runtime session is a trace, as for
# the hooks' events, so both land in the same trace when the ids agree.


def _telemetry_span(data: dict[str, Any], event_id: str, operation: str, subject: str | None) -> GenAiSpan:
    attrs: dict[str, Attribute] = {}
    _put(attrs, "gen_ai.conversation.id", data.get("session_id"))
    _put(attrs, "agentplane.runtime", data.get("runtime"))
    _put(attrs, "agentplane.prompt.id", data.get("prompt_id"))
    return GenAiSpan(
        trace_key=f"session:{data.get('session_id')}",
        span_key=f"event:{event_id}",
        parent_key=None,
        operation=operation,
        subject=subject,
        start=_minus_ms(data.get("time"), _int(data.get("duration_ms"))),
        end=data.get("time"),
        attributes=attrs,
    )


def telemetry_model_call(data: dict[str, Any], event_id: str) -> GenAiSpan | None:
    """`api_request`, `api_usage` (Codex's token counts) and `api_error`."""
    model = _text(data.get("model"))
    span = _telemetry_span(data, event_id, CHAT, model)
    _put(span.attributes, "gen_ai.request.model", model)
    _usage(
        span.attributes,
        input_tokens=data.get("input_tokens"),
        output_tokens=data.get("output_tokens"),
        cache_read__input_tokens=data.get("cache_read_tokens"),
        cache_creation__input_tokens=data.get("cache_creation_tokens"),
    )
    if isinstance(data.get("cost_usd"), int | float) and not isinstance(data.get("cost_usd"), bool):
        span.attributes["gen_ai.usage.cost"] = float(data["cost_usd"])
    if data.get("kind") == "api_error":
        status = data.get("status_code")
        span.error_type = str(status) if isinstance(status, int | str) and status != "" else "api_error"
    return span


def telemetry_tool_result(data: dict[str, Any], event_id: str) -> GenAiSpan | None:
    tool = _text(data.get("tool_name"))
    span = _telemetry_span(data, event_id, EXECUTE_TOOL, tool)
    _put(span.attributes, "gen_ai.tool.name", tool)
    if data.get("success") in (False, "false") or _text(data.get("error")):
        span.error_type = "tool_error"
    return span


# --- AGH (seed 003): a queued task is a trace, each run an agent invocation.


def agh_run(data: dict[str, Any]) -> GenAiSpan | None:
    task, run = data.get("task") or {}, data.get("run") or {}
    if not _text(task.get("id")) or not _text(run.get("id")):
        return None
    agent = _text(run.get("claimed_by_ref"))
    attrs: dict[str, Attribute] = {}
    _put(attrs, "gen_ai.agent.name", agent)
    _put(attrs, "gen_ai.conversation.id", run.get("session_id"))
    if (attempt := _int(run.get("attempt"))) is not None:
        attrs["agentplane.run.attempt"] = attempt
    return GenAiSpan(
        trace_key=f"agh_task:{task['id']}",
        span_key=f"agh_run:{run['id']}",
        parent_key=None,
        operation=INVOKE_AGENT,
        subject=agent,
        start=run.get("started_at") or run.get("claimed_at"),
        end=run.get("ended_at"),
        attributes=attrs,
        error_type=_text(run.get("failure_kind")) or _error_type(run.get("status"), run.get("error")),
    )


def _error_type(status: Any, error: Any) -> str | None:
    """`error.type` of a record that failed: its status (`failed`, `cancelled`)."""
    if status in ("failed", "cancelled", "canceled", "error") or _text(error):
        return status if isinstance(status, str) and status not in ("completed", "running") else "error"
    return None


def _minus_ms(when: Any, ms: int | None) -> str | int | None:
    """`when` moved back by `ms` milliseconds, in Unix nanoseconds."""
    if not isinstance(when, str) or ms is None:
        return when if isinstance(when, str) else None
    ns = unix_nanos(when)
    return None if ns is None else ns - ms * 1_000_000


def unix_nanos(when: str | int | None) -> int | None:
    """RFC 3339 text (or nanoseconds already) as Unix nanoseconds; None when unreadable."""
    if when is None or isinstance(when, int):
        return when
    try:
        moment = datetime.fromisoformat(when)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


# Mappers of entries whose data names the record (one span per record).
RecordMapper = Callable[[dict[str, Any]], GenAiSpan | None]
# Mappers of events, whose span is the entry itself (its event id is its identity).
EventMapper = Callable[[dict[str, Any], str], GenAiSpan | None]


def _by_record(fn: RecordMapper) -> EventMapper:
    return lambda data, _event_id: fn(data)


# (entry type, entry name or None for any name) -> mapper.
MAPPERS: dict[tuple[str, str | None], EventMapper] = {
    ("tracer.turn.closed", None): _by_record(tracer_turn),
    ("tracer.event.logged", "token.usage"): _by_record(tracer_token_usage),
    ("tracer.event.logged", "tool.used"): _by_record(tracer_tool),
    ("tracer.event.logged", "terminal.command"): _by_record(tracer_tool),
    ("execution.completed", None): _by_record(execution_span),
    ("execution.failed", None): _by_record(execution_span),
    ("execution.cancelled", None): _by_record(execution_span),
    ("agent.completed", None): _by_record(agent_span),
    ("agent.failed", None): _by_record(agent_span),
    ("tool_call.completed", None): _by_record(tool_call_span),
    ("tool_call.failed", None): _by_record(tool_call_span),
    ("trenchcoat.event", "tool_result"): trenchcoat_tool_result,
    ("trenchcoat.event", "assistant_stop"): trenchcoat_assistant_stop,
    ("runtime.event", "post_tool"): runtime_post_tool,
    ("telemetry.api_request", None): telemetry_model_call,
    ("telemetry.api_usage", None): telemetry_model_call,
    ("telemetry.api_error", None): telemetry_model_call,
    ("telemetry.tool_result", None): telemetry_tool_result,
    ("task_run.completed", None): _by_record(agh_run),
    ("task_run.failed", None): _by_record(agh_run),
}


def span_of(type: str, name: str | None, event_id: str, data: dict[str, Any]) -> GenAiSpan | None:
    """The span a log entry stands for, or None."""
    mapper = MAPPERS.get((type, name)) or MAPPERS.get((type, None))
    return mapper(data, event_id) if mapper is not None else None


def exported_kinds() -> dict[str, list[str] | None]:
    """entry type -> the names exported (None: every name), so the exporter
    reads only entries that map."""
    kinds: dict[str, list[str] | None] = {}
    for type, name in MAPPERS:
        if name is None:
            kinds[type] = None
        elif (names := kinds.setdefault(type, [])) is not None:
            names.append(name)
    return kinds
