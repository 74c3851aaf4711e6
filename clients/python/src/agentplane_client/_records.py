"""The records of the agents API (seed 001) as small typed objects.

`Execution`, `Agent`, `ToolCall` and `StreamSummary` carry the seed's
snake_case fields; times are timezone-aware `datetime`s (UTC) and unset
values are None. They are built from the generated messages
(`agentplane.v1.executions_pb2`) by `execution`, `agent` and `tool_call`.
Also here: the conversions of caller values into request fields, shared by
the sync and async sub-clients.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Literal, cast

import grpc
from agentplane.v1 import executions_pb2 as pb
from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message

from agentplane_client._errors import FailedPreconditionError

Status = Literal["pending", "running", "completed", "failed", "cancelled"]
"""An execution's or an agent's status."""
ToolCallStatus = Literal["pending", "running", "completed", "failed"]
"""A tool call's status."""


@dataclass(frozen=True)
class StreamSummary:
    """What an agent's output stream contained (the seed's `textBlocks`, ...)."""

    text_blocks: int = 0
    reasoning_blocks: int = 0
    tool_calls: int = 0
    tool_results: int = 0
    errors: int = 0


@dataclass(frozen=True)
class Execution:
    """An orchestrator run, with counters over its agents and tool calls."""

    id: str
    name: str | None
    file_path: str | None
    status: Status
    config: dict[str, Any]
    result: Any
    error: str | None
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    total_agents: int
    total_tool_calls: int
    total_tokens_used: int
    current_agent_id: str | None


@dataclass(frozen=True)
class Agent:
    """One Claude invocation (the seed's `Agent`)."""

    id: str
    execution_id: str
    phase_id: str | None
    prompt: str
    model: str
    system_prompt: str | None
    status: Status
    result: str | None
    result_structured: dict[str, Any] | None
    error: str | None
    tokens_input: int | None
    tokens_output: int | None
    tool_calls_count: int
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    duration_ms: int | None
    log_path: str | None
    stream_summary: StreamSummary | None


@dataclass(frozen=True)
class ToolCall:
    """One use of a tool by an agent (the seed's `ToolCall`). `output_inline`
    holds outputs under 1,024 UTF-8 bytes; a larger output is read with
    `tools.get_output`."""

    id: str
    agent_id: str
    execution_id: str
    tool_name: str
    input: dict[str, Any]
    output_inline: str | None
    output_summary: str | None
    output_size_bytes: int | None
    output_path: str | None
    output_git_hash: str | None
    error: str | None
    status: ToolCallStatus
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    duration_ms: int | None


def _plain(value: Any) -> Any:
    """A JSON value as protobuf decoded it, with integral numbers as ints
    (a Struct keeps every number as a double: 3 arrives as 3.0)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _field(msg: Message, name: str) -> Any:
    """A message field as the record field of the same name takes it."""
    fd = msg.DESCRIPTOR.fields_by_name[name]
    if fd.has_presence and not msg.HasField(name):
        return None
    value = getattr(msg, name)
    kind = fd.message_type.full_name if fd.message_type is not None else ""
    if kind == "google.protobuf.Timestamp":
        return value.ToDatetime(tzinfo=UTC)
    if kind == "agentplane.v1.StreamSummary":
        return StreamSummary(**{f.name: getattr(value, f.name) for f in fields(StreamSummary)})
    if kind:  # google.protobuf.Struct or Value
        return _plain(json_format.MessageToDict(value))
    return value


def _record(cls: type[Any], msg: Message) -> Any:
    return cls(**{f.name: _field(msg, f.name) for f in fields(cls)})


def execution(msg: pb.Execution) -> Execution:
    return cast(Execution, _record(Execution, msg))


def agent(msg: pb.Agent) -> Agent:
    return cast(Agent, _record(Agent, msg))


def tool_call(msg: pb.ToolCall) -> ToolCall:
    return cast(ToolCall, _record(ToolCall, msg))


# Caller values -> request fields.


def json_value(value: Any, what: str) -> struct_pb2.Value:
    """A JSON value as a google.protobuf.Value; ValueError if it is not JSON.
    (A value the server refuses, such as a list where an object is needed, is
    passed on for the server to name the field.)"""
    try:
        return json_format.ParseDict(dict(value) if isinstance(value, Mapping) else value, struct_pb2.Value())
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not a JSON value: {exc}") from None


def agent_tokens(tokens: Mapping[str, int] | None) -> pb.AgentTokens | None:
    """The seed's `{"input": ..., "output": ...}` (a missing key counts 0)."""
    if tokens is None:
        return None
    unknown = set(tokens) - {"input", "output"}
    if unknown:
        raise ValueError(f"tokens takes the keys 'input' and 'output', not {sorted(unknown)}")
    return pb.AgentTokens(input=tokens.get("input", 0), output=tokens.get("output", 0))


_SEED_SUMMARY_KEYS = {
    "textBlocks": "text_blocks",
    "reasoningBlocks": "reasoning_blocks",
    "toolCalls": "tool_calls",
    "toolResults": "tool_results",
    "errors": "errors",
}


def stream_summary(summary: StreamSummary | Mapping[str, int]) -> pb.StreamSummary:
    """A StreamSummary, or a mapping with the seed's camelCase keys (or snake_case ones)."""
    if isinstance(summary, StreamSummary):
        return pb.StreamSummary(**{f.name: getattr(summary, f.name) for f in fields(StreamSummary)})
    known = set(_SEED_SUMMARY_KEYS) | set(_SEED_SUMMARY_KEYS.values())
    unknown = set(summary) - known
    if unknown:
        raise ValueError(f"unknown stream summary keys {sorted(unknown)}; known: {sorted(known)}")
    return pb.StreamSummary(**{_SEED_SUMMARY_KEYS.get(k, k): v for k, v in summary.items()})


class CurrentExecution:
    """The client's current execution: upstream's per-handle pointer. Set by
    `executions.start`, cleared when that execution completes, fails or is
    cancelled through this client; agents and tool calls need one."""

    def __init__(self) -> None:
        self.id: str | None = None

    def require(self) -> str:
        """The current execution's id; FailedPreconditionError("No active execution") if none."""
        if self.id is None:
            raise FailedPreconditionError(
                grpc.StatusCode.FAILED_PRECONDITION, "No active execution", reason="NO_ACTIVE_EXECUTION"
            )
        return self.id

    def clear(self, execution_id: str) -> None:
        if self.id == execution_id:
            self.id = None
