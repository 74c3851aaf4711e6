"""Retention and quotas: workspace policies, per-workspace usage (day count,
stored payload, retention horizon), and (workspace, seq) indexes on the
rows retention removes with their log entries (service/store/retention/).

The usage of existing workspaces is counted once here: their entries' JSON
characters (compact, as the writer counts them; PostgreSQL's JSONB text has
spaces, so there it is an estimate that retention's own counts then correct).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 22:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspace_policies",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("retention_seconds", sa.BigInteger(), nullable=True),
        sa.Column("retention_bytes", sa.BigInteger(), nullable=True),
        sa.Column("quota_events_per_day", sa.BigInteger(), nullable=True),
        sa.Column("quota_stored_bytes", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workspace"),
    )
    op.create_table(
        "workspace_usage",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("day", sa.Text(), nullable=False),
        sa.Column("day_events", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("horizon_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("workspace"),
    )
    op.create_index("ix_tracer_events_seq", "tracer_events", ["workspace", "seq"])
    op.create_index("ix_tool_calls_seq", "tool_calls", ["workspace", "seq"])
    op.create_index("ix_agh_task_events_seq", "agh_task_events", ["workspace", "seq"])
    size = "length(data)" if op.get_bind().dialect.name == "sqlite" else "length(data::text)"
    op.execute(
        "INSERT INTO workspace_usage (workspace, day, day_events, stored_bytes, horizon_seq) "
        f"SELECT workspace, '', 0, sum({size}), 0 FROM log_entries GROUP BY workspace"
    )


def downgrade() -> None:
    op.drop_index("ix_agh_task_events_seq", table_name="agh_task_events")
    op.drop_index("ix_tool_calls_seq", table_name="tool_calls")
    op.drop_index("ix_tracer_events_seq", table_name="tracer_events")
    op.drop_table("workspace_usage")
    op.drop_table("workspace_policies")
