"""The indexes the console's lists page on (migration 0012), declared on the
families' tables from here so that each list's query and its index sit side
by side. Each starts with `workspace`: every console query filters by it."""

from __future__ import annotations

from sqlalchemy import Index, text

from service.store.agh.channel_tables import channels
from service.store.executions.tables import tool_calls
from service.store.tables import log_entries, sessions
from service.store.tracer.rule_tables import tracer_verdicts
from service.store.tracer.tables import tracer_events, tracer_sessions

# Entries that record a failure, and the tracer's token usage: the overview's
# "today" reads them alone. Partial indexes, so a write pays only for its own
# kind (the queries repeat these conditions literally so both databases use them).
ERRORS = (
    "type IN ('execution.failed', 'agent.failed', 'tool_call.failed', 'task_run.failed', "
    "'task_run.lease_expired') OR (type = 'runtime.event' AND name LIKE '%error%')"
)
TOKEN_USAGE = "type = 'tracer.event.logged' AND name = 'token.usage'"

INDEXES = (
    # ListConsoleSessions: runtime sessions newest first.
    Index("ix_console_sessions_created", sessions.c.workspace, sessions.c.created_at, sessions.c.session_id),
    # ListConsoleSessions: monitor sessions newest first.
    Index("ix_console_tracer_sessions_seq", tracer_sessions.c.workspace, tracer_sessions.c.seq),
    # GetConsoleTimeline of a monitor session.
    Index(
        "ix_console_tracer_events_session",
        tracer_events.c.workspace,
        tracer_events.c.session_id,
        tracer_events.c.seq,
    ),
    # GetConsoleOverview: today's errors and token usage.
    Index(
        "ix_console_log_errors",
        log_entries.c.workspace,
        log_entries.c.seq,
        sqlite_where=text(ERRORS),
        postgresql_where=text(ERRORS),
    ),
    Index(
        "ix_console_log_usage",
        log_entries.c.workspace,
        log_entries.c.seq,
        sqlite_where=text(TOKEN_USAGE),
        postgresql_where=text(TOKEN_USAGE),
    ),
    # GetConsoleTimeline of an execution: its tool calls in order.
    Index(
        "ix_console_tool_calls_execution", tool_calls.c.workspace, tool_calls.c.execution_id, tool_calls.c.seq
    ),
    # ListConsoleRuleVerdicts: one rule's verdicts newest first.
    Index(
        "ix_console_verdicts_rule_time",
        tracer_verdicts.c.workspace,
        tracer_verdicts.c.rule_id,
        tracer_verdicts.c.evaluated_at,
        tracer_verdicts.c.turn_id,
    ),
    # GetConsoleOverview: today's verdicts.
    Index("ix_console_verdicts_time", tracer_verdicts.c.workspace, tracer_verdicts.c.evaluated_at),
    # ListConsoleChannels: most recently active first.
    Index("ix_console_channels_activity", channels.c.workspace, channels.c.last_activity_at, channels.c.id),
)
