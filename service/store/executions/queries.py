"""Queries on the executions, agents and tool_calls projections (seed 001).

Records mirror the columns (times in microseconds since the epoch, JSON
columns decoded). Every statement is built once and run on the driver's
cursor: a tool call's start and completion are the hottest writes of this
area, a handful of statements each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, case, delete, literal_column, select, update

from service.store.executions.tables import agents, executions, tool_calls
from service.store.fastpath import Projection, RawStatement, cursor_of
from service.store.log import Db, Tx


@dataclass
class ExecutionRecord:
    id: str
    name: str | None
    file_path: str | None
    status: str
    config: dict[str, Any]
    result: Any
    error: str | None
    started_at: int | None
    completed_at: int | None
    created_at: int
    total_agents: int = 0
    total_tool_calls: int = 0
    total_tokens_used: int = 0
    current_agent_id: str | None = None


@dataclass
class AgentRecord:
    id: str
    execution_id: str
    phase_id: str | None
    prompt: str
    model: str
    system_prompt: str | None
    status: str
    result: str | None
    result_structured: dict[str, Any] | None
    error: str | None
    tokens_input: int | None
    tokens_output: int | None
    tool_calls_count: int
    started_at: int | None
    completed_at: int | None
    created_at: int
    duration_ms: int | None
    log_path: str | None
    stream_summary: dict[str, int] | None


@dataclass
class ToolCallRecord:
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
    status: str
    started_at: int | None
    completed_at: int | None
    created_at: int
    duration_ms: int | None


# `seq` is written on insert only; the counters and the current agent are
# changed by their own statements below, never by `save`.
EXECUTIONS = Projection(
    executions,
    ExecutionRecord,
    json=("config", "result"),
    mutable=("status", "result", "error", "started_at", "completed_at"),
    extra=("seq",),
)
AGENTS = Projection(
    agents,
    AgentRecord,
    json=("result_structured", "stream_summary"),
    mutable=(
        "status",
        "result",
        "result_structured",
        "error",
        "tokens_input",
        "tokens_output",
        "completed_at",
        "duration_ms",
        "stream_summary",
    ),
    extra=("seq",),
)
# A large output's full text (`output_full`) is written with the completion
# and read only by `tool_call_output`.
TOOL_CALLS = Projection(
    tool_calls,
    ToolCallRecord,
    json=("input",),
    mutable=(
        "status",
        "output_inline",
        "output_summary",
        "output_size_bytes",
        "error",
        "completed_at",
        "duration_ms",
        "output_full",
    ),
    extra=("seq", "output_full"),
)

_WS: Any = bindparam("workspace")
# A literal, not a bound value: RawStatement passes only the parameters it is given.
ONE: Any = literal_column("1")

_LIST_EXECUTIONS = EXECUTIONS.select(executions.c.workspace == _WS, executions.c.seq.desc(), limit=True)
_LIST_AGENTS = AGENTS.select(
    (agents.c.workspace == _WS) & (agents.c.execution_id == bindparam("execution_id")), agents.c.seq
)
_LIST_TOOL_CALLS = TOOL_CALLS.select(
    (tool_calls.c.workspace == _WS) & (tool_calls.c.agent_id == bindparam("agent_id")), tool_calls.c.seq
)
_EXECUTION_STATUS = RawStatement(select(executions.c.status).where(EXECUTIONS.by_id))
# What starting a tool call checks: the agent's status, its execution and that one's status.
_AGENT_AND_EXECUTION = RawStatement(
    select(agents.c.status, agents.c.execution_id, executions.c.status)
    .join(
        executions,
        (executions.c.workspace == agents.c.workspace) & (executions.c.id == agents.c.execution_id),
    )
    .where(AGENTS.by_id)
)
_TOOL_CALL_OUTPUT = RawStatement(
    select(tool_calls.c.status, tool_calls.c.output_inline, tool_calls.c.output_full).where(TOOL_CALLS.by_id)
)
_AGENT_STARTED = RawStatement(
    update(executions)
    .where(EXECUTIONS.by_id)
    .values(total_agents=executions.c.total_agents + ONE, current_agent_id=bindparam("agent_id"))
)
_AGENT_FINISHED = RawStatement(
    update(executions)
    .where(EXECUTIONS.by_id)
    .values(
        total_tokens_used=executions.c.total_tokens_used + bindparam("tokens"),
        current_agent_id=case(
            (executions.c.current_agent_id == bindparam("agent_id"), None),
            else_=executions.c.current_agent_id,
        ),
    )
)
_TOOL_CALL_STARTED_EXECUTION = RawStatement(
    update(executions).where(EXECUTIONS.by_id).values(total_tool_calls=executions.c.total_tool_calls + ONE)
)
_TOOL_CALL_STARTED_AGENT = RawStatement(
    update(agents).where(AGENTS.by_id).values(tool_calls_count=agents.c.tool_calls_count + ONE)
)


def list_executions(db: Db, workspace: str, limit: int) -> list[ExecutionRecord]:
    """The newest `limit` executions, newest first."""
    return EXECUTIONS.read(db, _LIST_EXECUTIONS, {"workspace": workspace, "limit": limit, "offset": 0})


def list_agents(db: Db, workspace: str, execution_id: str) -> list[AgentRecord]:
    """An execution's agents in creation order."""
    return AGENTS.read(db, _LIST_AGENTS, {"workspace": workspace, "execution_id": execution_id})


def list_tool_calls(db: Db, workspace: str, agent_id: str) -> list[ToolCallRecord]:
    """An agent's tool calls in creation order."""
    return TOOL_CALLS.read(db, _LIST_TOOL_CALLS, {"workspace": workspace, "agent_id": agent_id})


def execution_status(db: Db, workspace: str, execution_id: str) -> str | None:
    cur = cursor_of(db)
    row = cur.one(_EXECUTION_STATUS, {"workspace": workspace, "id": execution_id})
    return None if row is None else str(row[0])


def agent_and_execution(db: Db, workspace: str, agent_id: str) -> tuple[str, str, str] | None:
    """(agent status, execution id, execution status), or None for an unknown agent."""
    cur = cursor_of(db)
    row: Sequence[Any] | None = cur.one(_AGENT_AND_EXECUTION, {"workspace": workspace, "id": agent_id})
    return None if row is None else (row[0], row[1], row[2])


def tool_call_output(db: Db, workspace: str, tool_call_id: str) -> tuple[str, str | None] | None:
    """(status, full output or None), or None for an unknown tool call."""
    cur = cursor_of(db)
    row = cur.one(_TOOL_CALL_OUTPUT, {"workspace": workspace, "id": tool_call_id})
    if row is None:
        return None
    status, inline, full = row
    return status, inline if inline is not None else full


def count_agent_start(db: Db, workspace: str, execution_id: str, agent_id: str) -> None:
    """One more agent in the execution, and it is the current one."""
    cur = cursor_of(db)
    cur.run(_AGENT_STARTED, {"workspace": workspace, "id": execution_id, "agent_id": agent_id})


def count_agent_end(db: Db, workspace: str, execution_id: str, agent_id: str, tokens: int) -> None:
    """Add the agent's tokens to its execution; it is no longer the current agent."""
    cur = cursor_of(db)
    params = {"workspace": workspace, "id": execution_id, "agent_id": agent_id, "tokens": tokens}
    cur.run(_AGENT_FINISHED, params)


def count_tool_call_start(db: Db, workspace: str, execution_id: str, agent_id: str) -> None:
    """One more tool call in the execution and in the agent."""
    cur = cursor_of(db)
    cur.run(_TOOL_CALL_STARTED_EXECUTION, {"workspace": workspace, "id": execution_id})
    cur.run(_TOOL_CALL_STARTED_AGENT, {"workspace": workspace, "id": agent_id})


def forget_range(tx: Tx, workspace: str, after: int, upto: int) -> None:
    """Remove the tool calls (inputs, outputs) started by the log entries
    `after < seq <= upto` (retention); executions and agents, with their
    counters and tokens, stay."""
    tx.conn.execute(
        delete(tool_calls).where(
            tool_calls.c.workspace == workspace, tool_calls.c.seq > after, tool_calls.c.seq <= upto
        )
    )
