"""Channels (seed 003): channels, messages and members' read positions
(service/store/agh/channel_tables.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 21:30:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "channels",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column("workflow_id", sa.Text(), nullable=True),
        sa.Column("allowed_message_kinds", _JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_activity_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "id"),
    )
    op.create_index("ix_channels_run", "channels", ["workspace", "run_id"])

    op.create_table(
        "channel_messages",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("from_session_id", sa.Text(), nullable=False),
        sa.Column("to_session_id", sa.Text(), nullable=True),
        sa.Column("reply_to", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_channel_messages_channel", "channel_messages", ["workspace", "channel_id", "seq"])
    op.create_index("ix_channel_messages_id", "channel_messages", ["workspace", "message_id"], unique=True)

    op.create_table(
        "channel_members",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("agent_name", sa.Text(), nullable=False),
        sa.Column("read_seq", sa.BigInteger(), nullable=False),
        sa.Column("joined_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "channel_id", "session_id"),
    )
    op.create_index("ix_channel_members_session", "channel_members", ["workspace", "session_id"])


def downgrade() -> None:
    op.drop_table("channel_members")
    op.drop_table("channel_messages")
    op.drop_table("channels")
