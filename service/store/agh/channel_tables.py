"""Channels (seed 003): channels, their messages and their members'
read positions (migration 0007).

A message's `seq` is the `seq` of the log entry that records it, appended in
the same transaction: log appends are serialised (one writer; an advisory
lock on PostgreSQL), so message order is commit order on every replica and
a reader at cursor N can never see N+2 before N+1. Bodies and metadata are
kept as JSON text, written once by the sender and handed to readers as is
(JSON `null` stays a value). Times are microseconds since the Unix epoch.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

from service.store.tables import NullableJson


class ChannelRow(SQLModel, table=True):
    __tablename__ = "channels"
    __table_args__ = (Index("ix_channels_run", "workspace", "run_id"),)

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    id: str = Field(sa_column=Column(Text, primary_key=True))
    display_name: str = Field(sa_column=Column(Text, nullable=False))
    # `network_channel` (an operator's) or `task_run_coordination` (a run's).
    purpose: str = Field(sa_column=Column(Text, nullable=False))
    task_id: str | None = Field(default=None, sa_column=Column(Text))
    run_id: str | None = Field(default=None, sa_column=Column(Text))
    workflow_id: str | None = Field(default=None, sa_column=Column(Text))
    allowed_message_kinds: Any = Field(sa_column=Column(NullableJson, nullable=False))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_activity_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class ChannelMessageRow(SQLModel, table=True):
    __tablename__ = "channel_messages"
    __table_args__ = (
        Index("ix_channel_messages_channel", "workspace", "channel_id", "seq"),
        Index("ix_channel_messages_id", "workspace", "message_id", unique=True),
    )

    # The log entry's seq (not generated here).
    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    workspace: str = Field(sa_column=Column(Text, nullable=False))
    channel_id: str = Field(sa_column=Column(Text, nullable=False))
    message_id: str = Field(sa_column=Column(Text, nullable=False))
    from_session_id: str = Field(sa_column=Column(Text, nullable=False))
    to_session_id: str | None = Field(default=None, sa_column=Column(Text))
    reply_to: str | None = Field(default=None, sa_column=Column(Text))
    body: str = Field(sa_column=Column(Text, nullable=False))
    metadata_: str = Field(sa_column=Column("metadata", Text, nullable=False))
    sent_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class ChannelMemberRow(SQLModel, table=True):
    """A session that posted to a channel or keeps a read position on it."""

    __tablename__ = "channel_members"
    __table_args__ = (Index("ix_channel_members_session", "workspace", "session_id"),)

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    channel_id: str = Field(sa_column=Column(Text, primary_key=True))
    session_id: str = Field(sa_column=Column(Text, primary_key=True))
    agent_name: str = Field(sa_column=Column(Text, nullable=False))
    # The last message the session acknowledged (0: none).
    read_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    joined_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_seen_at: int = Field(sa_column=Column(BigInteger, nullable=False))


channels = ChannelRow.__table__  # type: ignore[attr-defined]
channel_messages = ChannelMessageRow.__table__  # type: ignore[attr-defined]
channel_members = ChannelMemberRow.__table__  # type: ignore[attr-defined]
