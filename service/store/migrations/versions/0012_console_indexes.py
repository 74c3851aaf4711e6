"""The console's indexes (service/store/console/indexes.py): each list of
the console pages on one.

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-05 22:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None

_HAS_SESSION = sa.text("session_id IS NOT NULL")

# (name, table, columns)
_PLAIN = (
    ("ix_console_sessions_created", "sessions", ["workspace", "created_at", "session_id"]),
    ("ix_console_tracer_sessions_seq", "tracer_sessions", ["workspace", "seq"]),
    ("ix_console_tracer_events_session", "tracer_events", ["workspace", "session_id", "seq"]),
    ("ix_console_tool_calls_execution", "tool_calls", ["workspace", "execution_id", "seq"]),
    ("ix_console_verdicts_rule_time", "tracer_verdicts", ["workspace", "rule_id", "evaluated_at", "turn_id"]),
    ("ix_console_verdicts_time", "tracer_verdicts", ["workspace", "evaluated_at"]),
    ("ix_console_channels_activity", "channels", ["workspace", "last_activity_at", "id"]),
)


def upgrade() -> None:
    for name, table, columns in _PLAIN:
        op.create_index(name, table, columns)
    op.create_index(
        "ix_console_log_session_seq",
        "log_entries",
        ["workspace", "session_id", "seq"],
        sqlite_where=_HAS_SESSION,
        postgresql_where=_HAS_SESSION,
    )


def downgrade() -> None:
    op.drop_index("ix_console_log_session_seq", table_name="log_entries")
    for name, table, _ in reversed(_PLAIN):
        op.drop_index(name, table_name=table)
