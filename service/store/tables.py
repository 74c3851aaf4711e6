"""The shared SQLModel tables (the event log, sessions, API keys) and the
column types the families' tables use. The event log is the truth; the other
tables are projections updated in the same transaction as the log entries
that explain them (ARCHITECTURE principle 2). Each family keeps its own
tables in service/store/<family>/; service.store.schema gathers them all."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

# 64-bit on PostgreSQL; SQLite needs exactly INTEGER for a rowid alias.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")
# Caller-given text has no length limit (upstream stores any length). Columns
# ordered as text compare bytewise on both backends, as upstream's SQLite
# does, whatever the PostgreSQL database's collation.
OrderedText = Text().with_variant(Text(collation="C"), "postgresql")

DEFAULT_WORKSPACE = "default"


class LogEntryRow(SQLModel, table=True):
    """One committed fact. `seq` is the global order; AUTOINCREMENT keeps it
    from being reused after deletes, so cursors held by clients stay valid."""

    __tablename__ = "log_entries"
    __table_args__ = (
        Index("ix_log_session", "workspace", "session_id", "type", "occurred_at"),
        # A workspace's entries in log order: catch-up reads page on it.
        Index("ix_log_workspace_seq", "workspace", "seq"),
        {"sqlite_autoincrement": True},
    )

    seq: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    event_id: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    workspace: str = Field(sa_column=Column(Text, nullable=False))
    type: str = Field(sa_column=Column(Text, nullable=False))
    # A finer kind inside `type` (a runtime event's event_type), for queries.
    name: str | None = Field(default=None, sa_column=Column(Text))
    session_id: str | None = Field(default=None, sa_column=Column(Text))
    occurred_at: str | None = Field(default=None, sa_column=Column(OrderedText))
    recorded_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(Json, nullable=False))


class SessionRow(SQLModel, table=True):
    """The session projection every route family shares."""

    __tablename__ = "sessions"

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    session_id: str = Field(sa_column=Column(Text, primary_key=True))
    session_name: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_column=Column(Text, nullable=False))
    created_at: str = Field(sa_column=Column(OrderedText, nullable=False, index=True))
    project_dir: str | None = Field(default=None, sa_column=Column(Text))
    agent_name: str | None = Field(default=None, sa_column=Column(Text))
    last_resumed_at: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    # Activity from ingested telemetry (Trenchcoat, seed 002; migration 0004).
    # First and last event time, as fixed-width UTC text so that text order is
    # time order; duration between them in ms (null while not positive).
    started_at: str | None = Field(default=None, sa_column=Column(OrderedText))
    ended_at: str | None = Field(default=None, sa_column=Column(OrderedText))
    duration_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    event_count: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    # tool_use plus tool_result events, as upstream counts them.
    tool_count: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    # From the latest assistant_stop that carried them (overwritten, not summed).
    input_tokens: int | None = Field(default=None, sa_column=Column(BigInteger))
    output_tokens: int | None = Field(default=None, sa_column=Column(BigInteger))
    cache_creation_tokens: int | None = Field(default=None, sa_column=Column(BigInteger))
    cache_read_tokens: int | None = Field(default=None, sa_column=Column(BigInteger))
    model: str | None = Field(default=None, sa_column=Column(Text))
    stop_reason: str | None = Field(default=None, sa_column=Column(Text))


class ApiKeyRow(SQLModel, table=True):
    """An API key: only the SHA-256 of the secret is kept (migration 0004)."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_workspace", "workspace", "created_at"),)

    key_id: str = Field(sa_column=Column(Text, primary_key=True))
    workspace: str = Field(sa_column=Column(Text, nullable=False))
    name: str = Field(sa_column=Column(Text, nullable=False))
    # The first characters of the secret, to recognise a key in a list.
    prefix: str = Field(sa_column=Column(Text, nullable=False))
    # Lower-case hex SHA-256 of the whole secret: how a request finds its key.
    key_hash: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    # Space-separated scope names.
    scopes: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


# JSON columns that keep SQL NULL for "none" (the family projections').
NullableJson = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


log_entries = LogEntryRow.__table__  # type: ignore[attr-defined]
sessions = SessionRow.__table__  # type: ignore[attr-defined]
api_keys = ApiKeyRow.__table__  # type: ignore[attr-defined]
