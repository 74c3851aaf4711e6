"""Telemetry (the OTLP receiver): usage per runtime session and per session
and day, and the last point of each cumulative metric stream
(service/store/telemetry/tables.py).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 22:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_ORDERED = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "telemetry_sessions",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("runtime", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("first_seen_at", _ORDERED, nullable=False),
        sa.Column("last_seen_at", _ORDERED, nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("cache_read_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("cache_creation_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("metric_input_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("metric_output_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("metric_cache_read_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("metric_cache_creation_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("api_requests", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("api_errors", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("cost_usd", sa.Float(), nullable=False, server_default="0"),
        sa.Column("metric_cost_usd", sa.Float(), nullable=False, server_default="0"),
        sa.Column("records", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("tool_results", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("tool_failures", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("tool_decisions", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("tool_rejections", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("prompts", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("lines_added", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("lines_removed", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("commits", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("pull_requests", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("active_seconds", sa.Float(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("workspace", "session_id"),
    )
    op.create_index("ix_telemetry_sessions_last", "telemetry_sessions", ["workspace", "last_seen_at"])
    op.create_table(
        "telemetry_days",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("day", sa.Text(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("cache_read_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("cache_creation_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("metric_input_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("metric_output_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("metric_cache_read_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("metric_cache_creation_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("api_requests", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("api_errors", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("cost_usd", sa.Float(), nullable=False, server_default="0"),
        sa.Column("metric_cost_usd", sa.Float(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("workspace", "day", "session_id"),
    )
    op.create_table(
        "telemetry_metric_streams",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("start_time_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("time_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "stream"),
    )


def downgrade() -> None:
    op.drop_table("telemetry_metric_streams")
    op.drop_table("telemetry_days")
    op.drop_index("ix_telemetry_sessions_last", table_name="telemetry_sessions")
    op.drop_table("telemetry_sessions")
