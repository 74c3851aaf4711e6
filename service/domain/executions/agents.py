"""Agents (seed 001's `db.agents`): Claude invocations inside an execution.

Upstream semantics kept: `start` records a `running` agent and counts it in
its execution; `complete` stores the result, the structured result and the
tokens (null when not given), sets `duration_ms`, and adds the tokens to the
agent's own execution; `fail` sets no duration and touches no counter.

The "current agent" is upstream's in-memory pointer made durable, per
execution: `start` sets it, and completing or failing *that* agent clears it
(completing another one leaves it). Stricter than upstream: unknown ids are
NOT_FOUND rather than ignored, and an agent completes or fails once
(FAILED_PRECONDITION afterwards, where upstream overwrites the row and adds
the tokens again).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from service.base.errors import FieldViolation
from service.domain.executions.executions import (
    COMPLETED,
    FAILED,
    RUNNING,
    announce,
    elapsed_ms,
    json_object,
    new_id,
    not_found,
    not_running,
    now_us,
    reject,
    require_running,
)
from service.domain.validation import reject_nul_characters
from service.store.executions import queries as q
from service.store.executions.queries import AGENTS, EXECUTIONS, AgentRecord
from service.store.log import Db, Tx
from service.store.store import Store

DEFAULT_MODEL = "sonnet"
# Token counts stay within the integers JSON carries exactly.
MAX_TOKENS = 2**53 - 1
# A stream summary's counts by proto name, and the seed's camelCase names
# they are stored and logged under.
STREAM_SUMMARY_KEYS = {
    "text_blocks": "textBlocks",
    "reasoning_blocks": "reasoningBlocks",
    "tool_calls": "toolCalls",
    "tool_results": "toolResults",
    "errors": "errors",
}


def counts(prefix: str, values: Mapping[str, int]) -> Iterable[FieldViolation]:
    """Violations for counts that are negative or too large to keep exactly."""
    for key, value in values.items():
        if not 0 <= value <= MAX_TOKENS:
            yield FieldViolation(f"{prefix}.{key}", f"must be between 0 and {MAX_TOKENS}")


def _existing(db: Db, workspace: str, agent_id: str) -> AgentRecord:
    record = AGENTS.get(db, workspace, agent_id)
    if record is None:
        raise not_found("agent", "agent_id", agent_id)
    return record


def _running(db: Db, workspace: str, agent_id: str) -> AgentRecord:
    record = _existing(db, workspace, agent_id)
    if record.status != RUNNING:
        raise not_running("agent", "agent_id", agent_id, record.status)
    return record


async def start_agent(
    store: Store,
    workspace: str,
    execution_id: str,
    prompt: str,
    model: str = DEFAULT_MODEL,
    system_prompt: str | None = None,
    log_path: str | None = None,
    phase_id: str | None = None,
) -> AgentRecord:
    """A new running agent in a running execution, which counts it and makes
    it its current agent. An empty `model` means DEFAULT_MODEL."""
    reject_nul_characters(
        {
            "prompt": prompt,
            "model": model,
            "system_prompt": system_prompt,
            "log_path": log_path,
            "phase_id": phase_id,
        }
    )

    def op(tx: Tx) -> AgentRecord:
        require_running(tx, workspace, execution_id)
        now = now_us()
        record = AgentRecord(
            id=new_id(),
            execution_id=execution_id,
            phase_id=phase_id,
            prompt=prompt,
            model=model or DEFAULT_MODEL,
            system_prompt=system_prompt,
            status=RUNNING,
            result=None,
            result_structured=None,
            error=None,
            tokens_input=None,
            tokens_output=None,
            tool_calls_count=0,
            started_at=now,
            completed_at=None,
            created_at=now,
            duration_ms=None,
            log_path=log_path,
            stream_summary=None,
        )
        seq = announce(tx, workspace, "agent.started", record, now)
        AGENTS.insert(tx, workspace, record, seq=seq)
        q.count_agent_start(tx, workspace, execution_id, record.id)
        return record

    return await store.write(op)


async def complete_agent(
    store: Store,
    workspace: str,
    agent_id: str,
    result: str | None,
    result_structured: Any = None,
    tokens: tuple[int, int] | None = None,
) -> AgentRecord:
    """Complete a running agent; `tokens` is (input, output)."""
    reject(
        [
            *json_object("result_structured", result_structured),
            *(counts("tokens", {"input": tokens[0], "output": tokens[1]}) if tokens else []),
        ]
    )
    reject_nul_characters({"result": result, "result_structured": result_structured})

    def op(tx: Tx) -> AgentRecord:
        record = _running(tx, workspace, agent_id)
        now = now_us()
        record.status, record.completed_at = COMPLETED, now
        record.duration_ms = elapsed_ms(record.started_at, now)
        record.result, record.result_structured = result, result_structured
        record.tokens_input, record.tokens_output = tokens if tokens else (None, None)
        AGENTS.save(tx, workspace, record)
        q.count_agent_end(tx, workspace, record.execution_id, agent_id, sum(tokens) if tokens else 0)
        announce(tx, workspace, "agent.completed", record, now)
        return record

    return await store.write(op)


async def fail_agent(store: Store, workspace: str, agent_id: str, error: str) -> AgentRecord:
    """Fail a running agent: no duration, no tokens."""
    reject_nul_characters({"error": error})

    def op(tx: Tx) -> AgentRecord:
        record = _running(tx, workspace, agent_id)
        now = now_us()
        record.status, record.completed_at, record.error = FAILED, now, error
        AGENTS.save(tx, workspace, record)
        q.count_agent_end(tx, workspace, record.execution_id, agent_id, 0)
        announce(tx, workspace, "agent.failed", record, now)
        return record

    return await store.write(op)


async def set_stream_summary(
    store: Store, workspace: str, agent_id: str, summary: Mapping[str, int]
) -> AgentRecord:
    """Replace the agent's stream summary (in any status)."""
    reject(counts("stream_summary", summary))

    def op(tx: Tx) -> AgentRecord:
        record = _existing(tx, workspace, agent_id)
        record.stream_summary = {seed: summary.get(key, 0) for key, seed in STREAM_SUMMARY_KEYS.items()}
        AGENTS.save(tx, workspace, record)
        announce(tx, workspace, "agent.stream_summary", record, now_us())
        return record

    return await store.write(op)


async def get_agent(store: Store, workspace: str, agent_id: str) -> AgentRecord:
    return await store.read(lambda conn: _existing(conn, workspace, agent_id))


async def list_agents(store: Store, workspace: str, execution_id: str) -> list[AgentRecord]:
    """An execution's agents, oldest first; NOT_FOUND for an unknown execution."""

    def read(conn: Any) -> list[AgentRecord]:
        if q.execution_status(conn, workspace, execution_id) is None:
            raise not_found("execution", "execution_id", execution_id)
        return q.list_agents(conn, workspace, execution_id)

    return await store.read(read)


async def current_agent(store: Store, workspace: str, execution_id: str) -> AgentRecord | None:
    """The execution's current agent, or None."""

    def read(conn: Any) -> AgentRecord | None:
        execution = EXECUTIONS.get(conn, workspace, execution_id)
        if execution is None:
            raise not_found("execution", "execution_id", execution_id)
        if execution.current_agent_id is None:
            return None
        return AGENTS.get(conn, workspace, execution.current_agent_id)

    return await store.read(read)
