"""Executions, agents and tool calls (seed 001).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 18:50:00.000000
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
    )


def _times() -> list[sa.Column[int]]:
    """started_at, completed_at, created_at: microseconds since the epoch (UTC)."""
    return [
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.Column("completed_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "executions",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("file_path", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("config", _json(), nullable=False),
        sa.Column("result", _json(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        *_times(),
        sa.Column("total_agents", sa.BigInteger(), nullable=False),
        sa.Column("total_tool_calls", sa.BigInteger(), nullable=False),
        sa.Column("total_tokens_used", sa.BigInteger(), nullable=False),
        sa.Column("current_agent_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("workspace", "id"),
    )
    op.create_index("ix_executions_seq", "executions", ["workspace", "seq"])

    op.create_table(
        "agents",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("execution_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("phase_id", sa.Text(), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("system_prompt", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("result_structured", _json(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("tokens_input", sa.BigInteger(), nullable=True),
        sa.Column("tokens_output", sa.BigInteger(), nullable=True),
        sa.Column("tool_calls_count", sa.BigInteger(), nullable=False),
        *_times(),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("log_path", sa.Text(), nullable=True),
        sa.Column("stream_summary", _json(), nullable=True),
        sa.ForeignKeyConstraint(["workspace", "execution_id"], ["executions.workspace", "executions.id"]),
        sa.PrimaryKeyConstraint("workspace", "id"),
    )
    op.create_index("ix_agents_execution", "agents", ["workspace", "execution_id", "seq"])

    op.create_table(
        "tool_calls",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("agent_id", sa.Text(), nullable=False),
        sa.Column("execution_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("tool_name", sa.Text(), nullable=False),
        sa.Column("input", _json(), nullable=False),
        sa.Column("output_inline", sa.Text(), nullable=True),
        sa.Column("output_summary", sa.Text(), nullable=True),
        sa.Column("output_size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("output_path", sa.Text(), nullable=True),
        sa.Column("output_git_hash", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        *_times(),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("output_full", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["workspace", "agent_id"], ["agents.workspace", "agents.id"]),
        sa.PrimaryKeyConstraint("workspace", "id"),
    )
    op.create_index("ix_tool_calls_agent", "tool_calls", ["workspace", "agent_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_tool_calls_agent", table_name="tool_calls")
    op.drop_table("tool_calls")
    op.drop_index("ix_agents_execution", table_name="agents")
    op.drop_table("agents")
    op.drop_index("ix_executions_seq", table_name="executions")
    op.drop_table("executions")
