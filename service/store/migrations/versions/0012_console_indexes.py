"""The console's indexes (service/store/console/indexes.py): each list of
the console pages on one.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 22:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# Partial indexes on the log (service/store/console/indexes.py says why).
_PARTIAL = (
    (
        "ix_console_log_errors",
        ["workspace", "seq"],
        "type IN ('execution.failed', 'agent.failed', 'tool_call.failed', 'task_run.failed', "
        "'task_run.lease_expired') OR (type = 'runtime.event' AND name LIKE '%error%')",
    ),
    ("ix_console_log_usage", ["workspace", "seq"], "type = 'tracer.event.logged' AND name = 'token.usage'"),
)

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
    for name, columns, where in _PARTIAL:
        condition = sa.text(where)
        op.create_index(name, "log_entries", columns, sqlite_where=condition, postgresql_where=condition)


def downgrade() -> None:
    for name, _, _ in reversed(_PARTIAL):
        op.drop_index(name, table_name="log_entries")
    for name, table, _ in reversed(_PLAIN):
        op.drop_index(name, table_name=table)
