"""Telemetry projections (the OTLP receiver): usage per runtime session and
per session and day, and the last value of each cumulative metric stream.

The records themselves are log entries (`telemetry.*`); these tables are
updated in the same transaction. Cost and token columns come in two sets:
from request events (`cost_usd`, `input_tokens`, …) and from the cost and
token metrics (`metric_*`), kept apart so that a runtime that sends both is
not counted twice (reads take the larger of the two per column).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Float, Index, Text
from sqlmodel import Field, SQLModel

from service.store.tables import OrderedText

# The usage columns both projections share, in this order.
USAGE_INTS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "metric_input_tokens",
    "metric_output_tokens",
    "metric_cache_read_tokens",
    "metric_cache_creation_tokens",
    "api_requests",
    "api_errors",
)
USAGE_FLOATS = ("cost_usd", "metric_cost_usd")
# Counters only a session keeps.
COUNTER_INTS = (
    "records",
    "tool_results",
    "tool_failures",
    "tool_decisions",
    "tool_rejections",
    "prompts",
    "lines_added",
    "lines_removed",
    "commits",
    "pull_requests",
)
COUNTER_FLOATS = ("active_seconds",)


def _count() -> Any:
    return Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))


def _amount() -> Any:
    return Field(default=0.0, sa_column=Column(Float, nullable=False, server_default="0"))


class TelemetrySessionRow(SQLModel, table=True):
    """A runtime session that sent telemetry, keyed by the runtime's own id
    (Claude Code `session.id`, Codex `conversation.id`): the id the hooks
    bind to a tracer task, so both meet on one task."""

    __tablename__ = "telemetry_sessions"
    __table_args__ = (Index("ix_telemetry_sessions_last", "workspace", "last_seen_at"),)

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    session_id: str = Field(sa_column=Column(Text, primary_key=True))
    runtime: str = Field(sa_column=Column(Text, nullable=False))
    model: str | None = Field(default=None, sa_column=Column(Text))
    first_seen_at: str = Field(sa_column=Column(OrderedText, nullable=False))
    last_seen_at: str = Field(sa_column=Column(OrderedText, nullable=False))
    input_tokens: int = _count()
    output_tokens: int = _count()
    cache_read_tokens: int = _count()
    cache_creation_tokens: int = _count()
    metric_input_tokens: int = _count()
    metric_output_tokens: int = _count()
    metric_cache_read_tokens: int = _count()
    metric_cache_creation_tokens: int = _count()
    api_requests: int = _count()
    api_errors: int = _count()
    cost_usd: float = _amount()
    metric_cost_usd: float = _amount()
    records: int = _count()
    tool_results: int = _count()
    tool_failures: int = _count()
    tool_decisions: int = _count()
    tool_rejections: int = _count()
    prompts: int = _count()
    lines_added: int = _count()
    lines_removed: int = _count()
    commits: int = _count()
    pull_requests: int = _count()
    active_seconds: float = _amount()


class TelemetryDayRow(SQLModel, table=True):
    """A session's usage on one UTC day (by when each record happened): what
    "today's totals" add up. Records that name no session count under ""."""

    __tablename__ = "telemetry_days"

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    day: str = Field(sa_column=Column(Text, primary_key=True))
    session_id: str = Field(sa_column=Column(Text, primary_key=True))
    input_tokens: int = _count()
    output_tokens: int = _count()
    cache_read_tokens: int = _count()
    cache_creation_tokens: int = _count()
    metric_input_tokens: int = _count()
    metric_output_tokens: int = _count()
    metric_cache_read_tokens: int = _count()
    metric_cache_creation_tokens: int = _count()
    api_requests: int = _count()
    api_errors: int = _count()
    cost_usd: float = _amount()
    metric_cost_usd: float = _amount()


class TelemetryMetricStreamRow(SQLModel, table=True):
    """The last point of a cumulative metric stream (metric name, resource and
    point attributes, hashed): a resent cumulative sum adds only its growth,
    and a point no later than the last (a retried export) adds nothing."""

    __tablename__ = "telemetry_metric_streams"

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    stream: str = Field(sa_column=Column(Text, primary_key=True))
    start_time_unix_nano: int = Field(sa_column=Column(BigInteger, nullable=False))
    time_unix_nano: int = Field(sa_column=Column(BigInteger, nullable=False))
    value: float = Field(sa_column=Column(Float, nullable=False))
