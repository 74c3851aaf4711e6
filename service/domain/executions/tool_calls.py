"""Tool calls (seed 001's `db.tools`): the tools an agent uses.

Upstream semantics kept: `start` records a `running` tool call and counts
it in the agent and the execution; `complete` measures the output in UTF-8
bytes, keeps it inline under INLINE_LIMIT_BYTES, and otherwise keeps a
summary (the given one, or the first SUMMARY_CHARS characters); `fail` sets
no duration. Counters are never touched after the start.

Differences, on purpose:
- a large output's full text is kept too, for `get_output` (upstream drops it);
- an output above the server's cap is INVALID_ARGUMENT, nothing written;
- a tool call belongs to its agent's execution, and its agent and that
  execution must both be running (upstream only needs *a* current execution);
- unknown ids are NOT_FOUND, and a tool call completes or fails once;
- the summary counts code points, where upstream's JavaScript `slice` counts
  UTF-16 units (they differ only when astral characters such as emoji are
  among the first 200).
"""

from __future__ import annotations

from typing import Any

from service.base.errors import FieldViolation, InvalidArgument
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
)
from service.domain.executions.reasons import ExecutionsReason
from service.domain.validation import reject_nul_characters
from service.store.executions import queries as q
from service.store.executions.queries import TOOL_CALLS, ToolCallRecord
from service.store.log import Db, Tx
from service.store.store import Store
from service.store.writer import Operation

# Outputs of fewer UTF-8 bytes than this are stored inline (1,023 is, 1,024 is not).
INLINE_LIMIT_BYTES = 1024
# A large output's default summary: its first characters.
SUMMARY_CHARS = 200


def _existing(db: Db, workspace: str, tool_call_id: str) -> ToolCallRecord:
    record = TOOL_CALLS.get(db, workspace, tool_call_id)
    if record is None:
        raise not_found("tool call", "tool_call_id", tool_call_id)
    return record


def _running(db: Db, workspace: str, tool_call_id: str) -> ToolCallRecord:
    record = _existing(db, workspace, tool_call_id)
    if record.status != RUNNING:
        raise not_running("tool call", "tool_call_id", tool_call_id, record.status)
    return record


def start_op(workspace: str, agent_id: str, tool_name: str, input: Any = None) -> Operation[ToolCallRecord]:
    """The write starting a tool call of a running agent (checked here, before
    it is queued); `input` is a JSON object (None for {})."""
    reject(json_object("input", input))
    reject_nul_characters({"tool_name": tool_name, "input": input})

    def op(tx: Tx) -> ToolCallRecord:
        found = q.agent_and_execution(tx, workspace, agent_id)
        if found is None:
            raise not_found("agent", "agent_id", agent_id)
        agent_status, execution_id, execution_status = found
        if execution_status != RUNNING:
            raise not_running("execution", "execution_id", execution_id, execution_status)
        if agent_status != RUNNING:
            raise not_running("agent", "agent_id", agent_id, agent_status)
        now = now_us()
        record = ToolCallRecord(
            id=new_id(),
            agent_id=agent_id,
            execution_id=execution_id,
            tool_name=tool_name,
            input=input or {},
            output_inline=None,
            output_summary=None,
            output_size_bytes=None,
            output_path=None,
            output_git_hash=None,
            error=None,
            status=RUNNING,
            started_at=now,
            completed_at=None,
            created_at=now,
            duration_ms=None,
        )
        seq = announce(tx, workspace, "tool_call.started", record, now)
        TOOL_CALLS.insert(tx, workspace, record, seq=seq, output_full=None)
        q.count_tool_call_start(tx, workspace, execution_id, agent_id)
        return record

    return op


async def start_tool_call(
    store: Store, workspace: str, agent_id: str, tool_name: str, input: Any = None
) -> ToolCallRecord:
    """A new running tool call of a running agent; `input` is a JSON object (None for {})."""
    return await store.write(start_op(workspace, agent_id, tool_name, input))


def complete_op(
    workspace: str, tool_call_id: str, output: str, summary: str | None = None, *, max_output_bytes: int
) -> Operation[ToolCallRecord]:
    """The write completing a running tool call with its output (see the
    module's notes; checked here, before it is queued)."""
    size = len(output.encode())
    if size > max_output_bytes:
        raise InvalidArgument(
            f"output: {size} bytes is more than the {max_output_bytes} this server accepts",
            reason=ExecutionsReason.OUTPUT_TOO_LARGE,
            violations=[FieldViolation("output", f"must be at most {max_output_bytes} bytes (UTF-8)")],
            metadata={"size_bytes": str(size), "limit_bytes": str(max_output_bytes)},
        )
    reject_nul_characters({"output": output, "summary": summary})
    inline = size < INLINE_LIMIT_BYTES
    if not inline and summary is None:
        summary = output[:SUMMARY_CHARS]

    def op(tx: Tx) -> ToolCallRecord:
        record = _running(tx, workspace, tool_call_id)
        now = now_us()
        record.status, record.completed_at = COMPLETED, now
        record.duration_ms = elapsed_ms(record.started_at, now)
        record.output_inline = output if inline else None
        record.output_summary, record.output_size_bytes = summary, size
        TOOL_CALLS.save(tx, workspace, record, output_full=None if inline else output)
        announce(tx, workspace, "tool_call.completed", record, now)
        return record

    return op


async def complete_tool_call(
    store: Store,
    workspace: str,
    tool_call_id: str,
    output: str,
    summary: str | None = None,
    *,
    max_output_bytes: int,
) -> ToolCallRecord:
    """Complete a running tool call with its output (see the module's notes)."""
    return await store.write(
        complete_op(workspace, tool_call_id, output, summary, max_output_bytes=max_output_bytes)
    )


def fail_op(workspace: str, tool_call_id: str, error: str) -> Operation[ToolCallRecord]:
    """The write failing a running tool call: no duration."""
    reject_nul_characters({"error": error})

    def op(tx: Tx) -> ToolCallRecord:
        record = _running(tx, workspace, tool_call_id)
        now = now_us()
        record.status, record.completed_at, record.error = FAILED, now, error
        TOOL_CALLS.save(tx, workspace, record, output_full=None)
        announce(tx, workspace, "tool_call.failed", record, now)
        return record

    return op


async def fail_tool_call(store: Store, workspace: str, tool_call_id: str, error: str) -> ToolCallRecord:
    """Fail a running tool call: no duration."""
    return await store.write(fail_op(workspace, tool_call_id, error))


async def get_tool_call(store: Store, workspace: str, tool_call_id: str) -> ToolCallRecord:
    return await store.read(lambda conn: _existing(conn, workspace, tool_call_id))


async def list_tool_calls(store: Store, workspace: str, agent_id: str) -> list[ToolCallRecord]:
    """An agent's tool calls, oldest first; NOT_FOUND for an unknown agent."""

    def read(conn: Any) -> list[ToolCallRecord]:
        if q.agent_and_execution(conn, workspace, agent_id) is None:
            raise not_found("agent", "agent_id", agent_id)
        return q.list_tool_calls(conn, workspace, agent_id)

    return await store.read(read)


async def get_output(store: Store, workspace: str, tool_call_id: str) -> str | None:
    """The full output, inline or not; None while there is none."""

    def read(conn: Any) -> str | None:
        found = q.tool_call_output(conn, workspace, tool_call_id)
        if found is None:
            raise not_found("tool call", "tool_call_id", tool_call_id)
        return found[1]

    return await store.read(read)
