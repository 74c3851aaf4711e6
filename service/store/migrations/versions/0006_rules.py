"""Verification rules (seed 000): rules, verdicts and enforcements
(service/store/tracer/rule_tables.py).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 21:30:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
_ORDERED_TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ACTIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "tracer_rules",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("seq", _BIG_ID, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("phrases", _JSON, nullable=True),
        sa.Column("trigger_on", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=True),
        sa.Column("command_matches", _JSON, nullable=True),
        sa.Column("pattern", sa.Text(), nullable=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=True),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("created_at", _ORDERED_TEXT, nullable=False),
        sa.Column("deleted_at", sa.Text(), nullable=True),
        sa.Column("changed_seq", _BIG_ID, nullable=False),
        sa.PrimaryKeyConstraint("workspace", "id"),
    )
    op.create_index(
        "ix_tracer_rules_active",
        "tracer_rules",
        ["workspace", "task_id"],
        sqlite_where=_ACTIVE,
        postgresql_where=_ACTIVE,
    )
    op.create_index("ix_tracer_rules_signature", "tracer_rules", ["workspace", "signature"])
    op.create_index("ix_tracer_rules_changed", "tracer_rules", ["workspace", "changed_seq"])

    op.create_table(
        "tracer_verdicts",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("turn_id", sa.Text(), nullable=False),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("detail", _JSON, nullable=True),
        sa.Column("evaluated_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "turn_id", "rule_id"),
    )
    op.create_index("ix_tracer_verdicts_task", "tracer_verdicts", ["workspace", "task_id"])
    op.create_index("ix_tracer_verdicts_rule", "tracer_verdicts", ["workspace", "rule_id"])

    op.create_table(
        "tracer_rule_enforcements",
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("match_kind", sa.Text(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=True),
        sa.Column("turn_id", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "event_id", "rule_id", "match_kind"),
    )
    op.create_index(
        "ix_tracer_enforcements_rule", "tracer_rule_enforcements", ["workspace", "rule_id", "task_id"]
    )


def downgrade() -> None:
    op.drop_table("tracer_rule_enforcements")
    op.drop_table("tracer_verdicts")
    op.drop_table("tracer_rules")
