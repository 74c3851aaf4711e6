"""Agent Tracer projections (seed 000): tasks, monitor sessions, runtime
bindings, turns and timeline events.

Each is updated in the same transaction as the log entries that explain it
(`tracer.*` types). Times are ISO 8601 text in UTC with milliseconds, as the
upstream API writes them, so that they sort as text on both backends.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Float, Index, Integer, Text, text
from sqlmodel import Field, SQLModel

from service.store.tables import BigId, Json, OrderedText


def _tokens() -> Any:
    return Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))


class TracerTaskRow(SQLModel, table=True):
    """A task. Lineage is kept on the child (`parent_task_id`, …), as upstream's
    `task_relations`; the token columns add up `token.usage` events."""

    __tablename__ = "tracer_tasks"
    __table_args__ = (
        Index("ix_tracer_tasks_seq", "workspace", "seq"),
        Index("ix_tracer_tasks_parent", "workspace", "parent_task_id"),
        Index("ix_tracer_tasks_stale", "status", "last_activity_at"),
    )

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    id: str = Field(sa_column=Column(Text, primary_key=True))
    # The log position of its creation: the list's order, ties impossible.
    seq: int = Field(sa_column=Column(BigId, nullable=False))
    title: str = Field(sa_column=Column(Text, nullable=False))
    slug: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_column=Column(Text, nullable=False))
    task_kind: str = Field(sa_column=Column(Text, nullable=False))
    origin: str = Field(sa_column=Column(Text, nullable=False))
    workspace_path: str | None = Field(default=None, sa_column=Column(Text))
    runtime_source: str | None = Field(default=None, sa_column=Column(Text))
    parent_task_id: str | None = Field(default=None, sa_column=Column(Text))
    parent_session_id: str | None = Field(default=None, sa_column=Column(Text))
    background_task_id: str | None = Field(default=None, sa_column=Column(Text))
    created_at: str = Field(sa_column=Column(OrderedText, nullable=False))
    updated_at: str = Field(sa_column=Column(OrderedText, nullable=False))
    last_session_started_at: str | None = Field(default=None, sa_column=Column(Text))
    # Last write or event of any kind: what the stale-task reaper measures.
    last_activity_at: str = Field(sa_column=Column(OrderedText, nullable=False))
    input_tokens: int = _tokens()
    output_tokens: int = _tokens()
    cache_read_tokens: int = _tokens()
    cache_create_tokens: int = _tokens()
    cost_usd: float = Field(default=0.0, sa_column=Column(Float, nullable=False, server_default="0"))
    token_events: int = _tokens()


class TracerSessionRow(SQLModel, table=True):
    """A monitor session of a task (mirrored in the shared `sessions` table)."""

    __tablename__ = "tracer_sessions"
    __table_args__ = (Index("ix_tracer_sessions_task", "workspace", "task_id", "seq"),)

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    id: str = Field(sa_column=Column(Text, primary_key=True))
    # The log position of its start: sessions started in one millisecond keep their order.
    seq: int = Field(sa_column=Column(BigId, nullable=False))
    task_id: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_column=Column(Text, nullable=False))
    started_at: str = Field(sa_column=Column(OrderedText, nullable=False))
    ended_at: str | None = Field(default=None, sa_column=Column(Text))
    summary: str | None = Field(default=None, sa_column=Column(Text))
    input_tokens: int = _tokens()
    output_tokens: int = _tokens()
    cache_read_tokens: int = _tokens()
    cache_create_tokens: int = _tokens()
    cost_usd: float = Field(default=0.0, sa_column=Column(Float, nullable=False, server_default="0"))
    token_events: int = _tokens()


class TracerBindingRow(SQLModel, table=True):
    """A runtime session bound to a task. A null `monitor_session_id` makes
    the binding historical: the runtime session was seen, its monitor session
    has ended."""

    __tablename__ = "tracer_bindings"

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    runtime_source: str = Field(sa_column=Column(Text, primary_key=True))
    runtime_session_id: str = Field(sa_column=Column(Text, primary_key=True))
    task_id: str = Field(sa_column=Column(Text, nullable=False))
    monitor_session_id: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: str = Field(sa_column=Column(Text, nullable=False))


class TracerTurnRow(SQLModel, table=True):
    """A turn of a monitor session: opened by a user message, closed by the
    assistant's answer, the next user message, or the session's end."""

    __tablename__ = "tracer_turns"
    __table_args__ = (
        Index("ux_tracer_turns_index", "workspace", "session_id", "turn_index", unique=True),
        Index("ix_tracer_turns_open", "workspace", "session_id", "status"),
        Index("ix_tracer_turns_task", "workspace", "task_id", "seq"),
    )

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    id: str = Field(sa_column=Column(Text, primary_key=True))
    # The log position of its opening.
    seq: int = Field(sa_column=Column(BigId, nullable=False))
    session_id: str = Field(sa_column=Column(Text, nullable=False))
    task_id: str = Field(sa_column=Column(Text, nullable=False))
    turn_index: int = Field(sa_column=Column(Integer, nullable=False))
    status: str = Field(sa_column=Column(Text, nullable=False))
    started_at: str = Field(sa_column=Column(Text, nullable=False))
    ended_at: str | None = Field(default=None, sa_column=Column(Text))
    asked_text: str | None = Field(default=None, sa_column=Column(Text))
    assistant_text: str | None = Field(default=None, sa_column=Column(Text))
    aggregate_verdict: str | None = Field(default=None, sa_column=Column(Text))
    rules_evaluated_count: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )


class TracerEventRow(SQLModel, table=True):
    """A timeline event. Its view (what the timeline and the `event.logged`
    message show) is the data of the log entry `seq`, which is not copied:
    `data` is set only when the view changed since (a cross-check repeat
    merged into it), and then replaces it. Rows are small, so on SQLite the
    table is its primary key's B-tree (WITHOUT ROWID)."""

    __tablename__ = "tracer_events"
    __table_args__ = (
        Index("ix_tracer_events_timeline", "workspace", "task_id", "seq"),
        Index("ix_tracer_events_turn", "workspace", "turn_id"),
        # In log order, for retention (service.store.tracer.queries.forget_range).
        Index("ix_tracer_events_seq", "workspace", "seq"),
        # (kind, session, metadata.crossCheck.dedupeKey): a repeat merges into the first.
        Index(
            "ux_tracer_events_dedupe",
            "workspace",
            "dedupe_key",
            unique=True,
            sqlite_where=text("dedupe_key IS NOT NULL"),
            postgresql_where=text("dedupe_key IS NOT NULL"),
        ),
        {"sqlite_with_rowid": False},
    )

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    id: str = Field(sa_column=Column(Text, primary_key=True))
    seq: int = Field(sa_column=Column(BigId, nullable=False))
    task_id: str = Field(sa_column=Column(Text, nullable=False))
    session_id: str | None = Field(default=None, sa_column=Column(Text))
    turn_id: str | None = Field(default=None, sa_column=Column(Text))
    kind: str = Field(sa_column=Column(Text, nullable=False))
    lane: str = Field(sa_column=Column(Text, nullable=False))
    dedupe_key: str | None = Field(default=None, sa_column=Column(Text))
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(Json))


tracer_tasks = TracerTaskRow.__table__  # type: ignore[attr-defined]
tracer_sessions = TracerSessionRow.__table__  # type: ignore[attr-defined]
tracer_bindings = TracerBindingRow.__table__  # type: ignore[attr-defined]
tracer_turns = TracerTurnRow.__table__  # type: ignore[attr-defined]
tracer_events = TracerEventRow.__table__  # type: ignore[attr-defined]
