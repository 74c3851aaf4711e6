"""API keys, and the session activity that ingested telemetry records.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 19:00:00.000000
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ORDERED_TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")

# (name, type, server default) of the columns added to `sessions`.
_SESSION_COLUMNS: list[tuple[str, Any, str | None]] = [
    ("started_at", _ORDERED_TEXT, None),
    ("ended_at", _ORDERED_TEXT, None),
    ("duration_ms", sa.BigInteger(), None),
    ("event_count", sa.Integer(), "0"),
    ("tool_count", sa.Integer(), "0"),
    ("input_tokens", sa.BigInteger(), None),
    ("output_tokens", sa.BigInteger(), None),
    ("cache_creation_tokens", sa.BigInteger(), None),
    ("cache_read_tokens", sa.BigInteger(), None),
    ("model", sa.Text(), None),
    ("stop_reason", sa.Text(), None),
]


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id"),
        sa.UniqueConstraint("key_hash"),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index("ix_api_keys_workspace", ["workspace", "created_at"], unique=False)
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        for name, type_, default in _SESSION_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=default is None, server_default=default))


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        for name, _, _ in reversed(_SESSION_COLUMNS):
            batch_op.drop_column(name)
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_api_keys_workspace")
    op.drop_table("api_keys")
