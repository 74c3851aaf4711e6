"""The OTLP exporter's cursor: one row per export target
(service/store/otlp_export/tables.py).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 22:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "otlp_export_cursors",
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("spans_exported", sa.BigInteger(), nullable=False),
        sa.Column("spans_rejected", sa.BigInteger(), nullable=False),
        sa.Column("batches_skipped", sa.BigInteger(), nullable=False),
        sa.Column("retries", sa.BigInteger(), nullable=False),
        sa.Column("retention_gaps", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target"),
    )


def downgrade() -> None:
    op.drop_table("otlp_export_cursors")
