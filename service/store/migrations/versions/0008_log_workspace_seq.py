"""An index serving a workspace's log entries in `seq` order, so a reader
catching up pages through `(workspace, seq)` ranges directly instead of
sorting the workspace's whole log for every page.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 19:10:00.000000
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_log_workspace_seq", "log_entries", ["workspace", "seq"])


def downgrade() -> None:
    op.drop_index("ix_log_workspace_seq", table_name="log_entries")
