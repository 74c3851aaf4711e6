"""AGH (seed 003): the task queue, session lineage and souls
(service/store/agh/tables.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 19:30:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "agh_tasks",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("scope_workspace", sa.Text(), nullable=True),
        sa.Column("priority", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("metadata", _JSON, nullable=True),
        sa.Column("latest_event_seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "id"),
    )
    op.create_index("ix_agh_tasks_number", "agh_tasks", ["workspace", "number"], unique=True)

    op.create_table(
        "agh_task_runs",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("priority_rank", sa.Integer(), nullable=False),
        sa.Column("previous_run_id", sa.Text(), nullable=True),
        sa.Column("failure_kind", sa.Text(), nullable=True),
        sa.Column("session_id", sa.Text(), nullable=True),
        sa.Column("claimed_by_kind", sa.Text(), nullable=True),
        sa.Column("claimed_by_ref", sa.Text(), nullable=True),
        sa.Column("claim_token_hash", sa.Text(), nullable=True),
        sa.Column("origin_kind", sa.Text(), nullable=False),
        sa.Column("origin_ref", sa.Text(), nullable=False),
        sa.Column("queued_at", sa.BigInteger(), nullable=False),
        sa.Column("claimed_at", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("heartbeat_at", sa.BigInteger(), nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("metadata", _JSON, nullable=True),
        sa.Column("result", _JSON, nullable=True),
        sa.PrimaryKeyConstraint("workspace", "id"),
    )
    # Partial: a run is indexed for claims while queued, for leases while held.
    queued, held = sa.text("status = 'queued'"), sa.text("status IN ('claimed', 'starting', 'running')")
    op.create_index(
        "ix_agh_runs_queue",
        "agh_task_runs",
        ["workspace", sa.text("priority_rank DESC"), "queued_at", "id"],
        sqlite_where=queued,
        postgresql_where=queued,
    )
    op.create_index("ix_agh_runs_task", "agh_task_runs", ["workspace", "task_id", "attempt"])
    op.create_index(
        "ix_agh_runs_held",
        "agh_task_runs",
        ["workspace", "session_id"],
        sqlite_where=held,
        postgresql_where=held,
    )
    op.create_index(
        "ix_agh_runs_lease", "agh_task_runs", ["lease_until"], sqlite_where=held, postgresql_where=held
    )

    op.create_table(
        "agh_task_events",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "task_id", "seq"),
    )

    op.create_table(
        "agh_session_lineage",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("parent_session_id", sa.Text(), nullable=True),
        sa.Column("root_session_id", sa.Text(), nullable=True),
        sa.Column("spawn_depth", sa.Integer(), nullable=False),
        sa.Column("spawn_role", sa.Text(), nullable=True),
        sa.Column("ttl_expires_at", sa.BigInteger(), nullable=True),
        sa.Column("auto_stop_on_parent", sa.Boolean(), nullable=False),
        sa.Column("max_children", sa.Integer(), nullable=False),
        sa.Column("max_depth", sa.Integer(), nullable=False),
        sa.Column("ttl_seconds", sa.BigInteger(), nullable=False),
        sa.Column("max_active_per_workspace", sa.Integer(), nullable=False),
        sa.Column("permissions", _JSON, nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "session_id"),
    )
    op.create_index("ix_agh_lineage_parent", "agh_session_lineage", ["workspace", "parent_session_id"])
    op.create_index("ix_agh_lineage_root", "agh_session_lineage", ["workspace", "root_session_id"])
    op.create_index("ix_agh_lineage_ttl", "agh_session_lineage", ["ttl_expires_at"])

    op.create_table(
        "agh_souls",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("agent_name", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("revision_id", sa.Text(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "agent_name"),
    )


def downgrade() -> None:
    op.drop_table("agh_souls")
    op.drop_index("ix_agh_lineage_ttl", table_name="agh_session_lineage")
    op.drop_index("ix_agh_lineage_root", table_name="agh_session_lineage")
    op.drop_index("ix_agh_lineage_parent", table_name="agh_session_lineage")
    op.drop_table("agh_session_lineage")
    op.drop_table("agh_task_events")
    for index in ("ix_agh_runs_lease", "ix_agh_runs_held", "ix_agh_runs_task", "ix_agh_runs_queue"):
        op.drop_index(index, table_name="agh_task_runs")
    op.drop_table("agh_task_runs")
    op.drop_index("ix_agh_tasks_number", table_name="agh_tasks")
    op.drop_table("agh_tasks")
