"""The executions family's tables: executions, agents and tool calls (seed
001; migration 0003)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKeyConstraint, Index, Text
from sqlmodel import Field, SQLModel

from service.store.tables import NullableJson

# Times are microseconds since the Unix epoch (UTC): exact, the same on both
# backends, and cheap to compare and subtract for `duration_ms`. `seq` is the
# log position of the entry that created the row, so ordering by it is
# creation order with no ties. JSON columns keep SQL NULL for "none".


class ExecutionRow(SQLModel, table=True):
    """An orchestrator run, with counters over its agents and tool calls."""

    __tablename__ = "executions"
    __table_args__ = (Index("ix_executions_seq", "workspace", "seq"),)

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    id: str = Field(sa_column=Column(Text, primary_key=True))
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    name: str | None = Field(default=None, sa_column=Column(Text))
    file_path: str | None = Field(default=None, sa_column=Column(Text))
    status: str = Field(sa_column=Column(Text, nullable=False))
    config: Any = Field(sa_column=Column(NullableJson, nullable=False))
    result: Any = Field(default=None, sa_column=Column(NullableJson))
    error: str | None = Field(default=None, sa_column=Column(Text))
    started_at: int | None = Field(default=None, sa_column=Column(BigInteger))
    completed_at: int | None = Field(default=None, sa_column=Column(BigInteger))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    total_agents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    total_tool_calls: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    total_tokens_used: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    # The most recently started agent until it completes or fails.
    current_agent_id: str | None = Field(default=None, sa_column=Column(Text))


class AgentRow(SQLModel, table=True):
    """One Claude invocation inside an execution."""

    __tablename__ = "agents"
    __table_args__ = (
        ForeignKeyConstraint(["workspace", "execution_id"], ["executions.workspace", "executions.id"]),
        Index("ix_agents_execution", "workspace", "execution_id", "seq"),
    )

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    id: str = Field(sa_column=Column(Text, primary_key=True))
    execution_id: str = Field(sa_column=Column(Text, nullable=False))
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    phase_id: str | None = Field(default=None, sa_column=Column(Text))
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    model: str = Field(sa_column=Column(Text, nullable=False))
    system_prompt: str | None = Field(default=None, sa_column=Column(Text))
    status: str = Field(sa_column=Column(Text, nullable=False))
    result: str | None = Field(default=None, sa_column=Column(Text))
    result_structured: Any = Field(default=None, sa_column=Column(NullableJson))
    error: str | None = Field(default=None, sa_column=Column(Text))
    tokens_input: int | None = Field(default=None, sa_column=Column(BigInteger))
    tokens_output: int | None = Field(default=None, sa_column=Column(BigInteger))
    tool_calls_count: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    started_at: int | None = Field(default=None, sa_column=Column(BigInteger))
    completed_at: int | None = Field(default=None, sa_column=Column(BigInteger))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    duration_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    log_path: str | None = Field(default=None, sa_column=Column(Text))
    stream_summary: Any = Field(default=None, sa_column=Column(NullableJson))


class ToolCallRow(SQLModel, table=True):
    """One use of a tool by an agent. A large output's full text is kept in
    `output_full` (last, so that reading the other columns skips it)."""

    __tablename__ = "tool_calls"
    __table_args__ = (
        ForeignKeyConstraint(["workspace", "agent_id"], ["agents.workspace", "agents.id"]),
        Index("ix_tool_calls_agent", "workspace", "agent_id", "seq"),
        # In log order, for retention (forget_range).
        Index("ix_tool_calls_seq", "workspace", "seq"),
    )

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    id: str = Field(sa_column=Column(Text, primary_key=True))
    agent_id: str = Field(sa_column=Column(Text, nullable=False))
    execution_id: str = Field(sa_column=Column(Text, nullable=False))
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    tool_name: str = Field(sa_column=Column(Text, nullable=False))
    input: Any = Field(sa_column=Column(NullableJson, nullable=False))
    output_inline: str | None = Field(default=None, sa_column=Column(Text))
    output_summary: str | None = Field(default=None, sa_column=Column(Text))
    output_size_bytes: int | None = Field(default=None, sa_column=Column(BigInteger))
    output_path: str | None = Field(default=None, sa_column=Column(Text))
    output_git_hash: str | None = Field(default=None, sa_column=Column(Text))
    error: str | None = Field(default=None, sa_column=Column(Text))
    status: str = Field(sa_column=Column(Text, nullable=False))
    started_at: int | None = Field(default=None, sa_column=Column(BigInteger))
    completed_at: int | None = Field(default=None, sa_column=Column(BigInteger))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    duration_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    output_full: str | None = Field(default=None, sa_column=Column(Text))


executions = ExecutionRow.__table__  # type: ignore[attr-defined]
agents = AgentRow.__table__  # type: ignore[attr-defined]
tool_calls = ToolCallRow.__table__  # type: ignore[attr-defined]
