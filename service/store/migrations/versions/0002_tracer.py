"""Agent Tracer (seed 000): tasks, monitor sessions, runtime bindings, turns
and timeline events (service/store/tracer/tables.py).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 19:00:00.000000
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _ordered_text() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def _big_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _tokens() -> list[sa.Column[Any]]:
    return [
        *(
            sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
            for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_create_tokens")
        ),
        sa.Column("cost_usd", sa.Float(), nullable=False, server_default="0"),
        sa.Column("token_events", sa.BigInteger(), nullable=False, server_default="0"),
    ]


def upgrade() -> None:
    op.create_table(
        "tracer_tasks",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("seq", _big_id(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("slug", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("task_kind", sa.Text(), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("workspace_path", sa.Text(), nullable=True),
        sa.Column("runtime_source", sa.Text(), nullable=True),
        sa.Column("parent_task_id", sa.Text(), nullable=True),
        sa.Column("parent_session_id", sa.Text(), nullable=True),
        sa.Column("background_task_id", sa.Text(), nullable=True),
        sa.Column("created_at", _ordered_text(), nullable=False),
        sa.Column("updated_at", _ordered_text(), nullable=False),
        sa.Column("last_session_started_at", sa.Text(), nullable=True),
        sa.Column("last_activity_at", _ordered_text(), nullable=False),
        *_tokens(),
        sa.PrimaryKeyConstraint("workspace", "id"),
    )
    op.create_index("ix_tracer_tasks_seq", "tracer_tasks", ["workspace", "seq"])
    op.create_index("ix_tracer_tasks_parent", "tracer_tasks", ["workspace", "parent_task_id"])
    op.create_index("ix_tracer_tasks_stale", "tracer_tasks", ["status", "last_activity_at"])

    op.create_table(
        "tracer_sessions",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("seq", _big_id(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("started_at", _ordered_text(), nullable=False),
        sa.Column("ended_at", sa.Text(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        *_tokens(),
        sa.PrimaryKeyConstraint("workspace", "id"),
    )
    op.create_index("ix_tracer_sessions_task", "tracer_sessions", ["workspace", "task_id", "seq"])

    op.create_table(
        "tracer_bindings",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("runtime_source", sa.Text(), nullable=False),
        sa.Column("runtime_session_id", sa.Text(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column("monitor_session_id", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "runtime_source", "runtime_session_id"),
    )

    op.create_table(
        "tracer_turns",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("seq", _big_id(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column("turn_index", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("started_at", sa.Text(), nullable=False),
        sa.Column("ended_at", sa.Text(), nullable=True),
        sa.Column("asked_text", sa.Text(), nullable=True),
        sa.Column("assistant_text", sa.Text(), nullable=True),
        sa.Column("aggregate_verdict", sa.Text(), nullable=True),
        sa.Column("rules_evaluated_count", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("workspace", "id"),
    )
    op.create_index(
        "ux_tracer_turns_index", "tracer_turns", ["workspace", "session_id", "turn_index"], unique=True
    )
    op.create_index("ix_tracer_turns_open", "tracer_turns", ["workspace", "session_id", "status"])
    op.create_index("ix_tracer_turns_task", "tracer_turns", ["workspace", "task_id", "seq"])

    op.create_table(
        "tracer_events",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("seq", _big_id(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=True),
        sa.Column("turn_id", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("lane", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.Text(), nullable=True),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("workspace", "id"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_tracer_events_timeline", "tracer_events", ["workspace", "task_id", "seq"])
    op.create_index("ix_tracer_events_turn", "tracer_events", ["workspace", "turn_id"])
    op.create_index(
        "ux_tracer_events_dedupe",
        "tracer_events",
        ["workspace", "dedupe_key"],
        unique=True,
        sqlite_where=sa.text("dedupe_key IS NOT NULL"),
        postgresql_where=sa.text("dedupe_key IS NOT NULL"),
    )


def downgrade() -> None:
    for table in ("tracer_events", "tracer_turns", "tracer_bindings", "tracer_sessions", "tracer_tasks"):
        op.drop_table(table)
