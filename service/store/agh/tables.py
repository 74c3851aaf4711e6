"""AGH (seed 003) projections: the task queue (tasks, runs and the index of
each task's log entries), session lineage from spawns, and agents' souls
(migration 0005).

Each row is updated in the same transaction as the log entry that explains
it (`task.*`, `task_run.*`, `session.*`, `agent_soul.*`). Times are
microseconds since the Unix epoch (UTC): exact on both backends and cheap to
compare, which lease checks do on every call.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, Text, text
from sqlmodel import Field, SQLModel

from service.store.tables import NullableJson


class AghTaskRow(SQLModel, table=True):
    """A task; its `status` is derived from its runs after every change."""

    __tablename__ = "agh_tasks"
    __table_args__ = (Index("ix_agh_tasks_number", "workspace", "number", unique=True),)

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    id: str = Field(sa_column=Column(Text, primary_key=True))
    # Numbered per workspace: the `TASK-<n>` identifier.
    number: int = Field(sa_column=Column(BigInteger, nullable=False))
    title: str = Field(sa_column=Column(Text, nullable=False))
    description: str = Field(sa_column=Column(Text, nullable=False))
    scope: str = Field(sa_column=Column(Text, nullable=False))
    scope_workspace: str | None = Field(default=None, sa_column=Column(Text))
    priority: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_column=Column(Text, nullable=False))
    max_attempts: int = Field(sa_column=Column(Integer, nullable=False))
    paused: bool = Field(sa_column=Column(Boolean, nullable=False))
    metadata_: Any = Field(default=None, sa_column=Column("metadata", NullableJson))
    latest_event_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: int = Field(sa_column=Column(BigInteger, nullable=False))


# The conditions of the partial indexes below; queries repeat them literally
# (service.store.agh.tasks) so that both databases use the indexes.
QUEUED_ONLY = "status = 'queued'"
HELD = "status IN ('claimed', 'starting', 'running')"


class AghTaskRunRow(SQLModel, table=True):
    """One attempt at a task, and its lease while claimed. Only the SHA-256 of
    a claim's token is kept (`claim_token_hash`); the token itself is never
    stored or shown."""

    __tablename__ = "agh_task_runs"
    # Partial indexes: a run is in the queue index while queued and in the
    # lease indexes while held, so the hot updates touch few index entries and
    # the indexes stay as small as the queue and the leases, not the history.
    __table_args__ = (
        # The claim order: queued runs by priority (highest first), then age.
        Index(
            "ix_agh_runs_queue",
            "workspace",
            text("priority_rank DESC"),
            "queued_at",
            "id",
            sqlite_where=text(QUEUED_ONLY),
            postgresql_where=text(QUEUED_ONLY),
        ),
        Index("ix_agh_runs_task", "workspace", "task_id", "attempt"),
        # A session's held runs (one lease per session, its context).
        Index(
            "ix_agh_runs_held",
            "workspace",
            "session_id",
            sqlite_where=text(HELD),
            postgresql_where=text(HELD),
        ),
        # The expiry sweep, across workspaces.
        Index("ix_agh_runs_lease", "lease_until", sqlite_where=text(HELD), postgresql_where=text(HELD)),
    )

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    id: str = Field(sa_column=Column(Text, primary_key=True))
    task_id: str = Field(sa_column=Column(Text, nullable=False))
    attempt: int = Field(sa_column=Column(Integer, nullable=False))
    status: str = Field(sa_column=Column(Text, nullable=False))
    # The task's priority rank (urgent 40 … low 10), copied for the claim order.
    priority_rank: int = Field(sa_column=Column(Integer, nullable=False))
    previous_run_id: str | None = Field(default=None, sa_column=Column(Text))
    failure_kind: str | None = Field(default=None, sa_column=Column(Text))
    session_id: str | None = Field(default=None, sa_column=Column(Text))
    claimed_by_kind: str | None = Field(default=None, sa_column=Column(Text))
    claimed_by_ref: str | None = Field(default=None, sa_column=Column(Text))
    claim_token_hash: str | None = Field(default=None, sa_column=Column(Text))
    origin_kind: str = Field(sa_column=Column(Text, nullable=False))
    origin_ref: str = Field(sa_column=Column(Text, nullable=False))
    queued_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    claimed_at: int | None = Field(default=None, sa_column=Column(BigInteger))
    started_at: int | None = Field(default=None, sa_column=Column(BigInteger))
    ended_at: int | None = Field(default=None, sa_column=Column(BigInteger))
    heartbeat_at: int | None = Field(default=None, sa_column=Column(BigInteger))
    lease_until: int | None = Field(default=None, sa_column=Column(BigInteger))
    error: str | None = Field(default=None, sa_column=Column(Text))
    metadata_: Any = Field(default=None, sa_column=Column("metadata", NullableJson))
    result: Any = Field(default=None, sa_column=Column(NullableJson))


class AghTaskEventRow(SQLModel, table=True):
    """Which log entries concern a task (its recent events in /context)."""

    __tablename__ = "agh_task_events"
    # In log order, for retention (service.store.agh.tasks.forget_range).
    __table_args__ = (Index("ix_agh_task_events_seq", "workspace", "seq"),)

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    task_id: str = Field(sa_column=Column(Text, primary_key=True))
    seq: int = Field(sa_column=Column(BigInteger, primary_key=True))


class AghSessionLineageRow(SQLModel, table=True):
    """A session's place in a spawn tree, its budget and permissions: a row
    for every spawned session, and for a root session whose operator set a
    spawn policy. Sessions without a row are roots with the defaults."""

    __tablename__ = "agh_session_lineage"
    __table_args__ = (
        Index("ix_agh_lineage_parent", "workspace", "parent_session_id"),
        Index("ix_agh_lineage_root", "workspace", "root_session_id"),
        Index("ix_agh_lineage_ttl", "ttl_expires_at"),
    )

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    session_id: str = Field(sa_column=Column(Text, primary_key=True))
    parent_session_id: str | None = Field(default=None, sa_column=Column(Text))
    root_session_id: str | None = Field(default=None, sa_column=Column(Text))
    spawn_depth: int = Field(sa_column=Column(Integer, nullable=False))
    spawn_role: str | None = Field(default=None, sa_column=Column(Text))
    ttl_expires_at: int | None = Field(default=None, sa_column=Column(BigInteger))
    auto_stop_on_parent: bool = Field(sa_column=Column(Boolean, nullable=False))
    max_children: int = Field(sa_column=Column(Integer, nullable=False))
    max_depth: int = Field(sa_column=Column(Integer, nullable=False))
    ttl_seconds: int = Field(sa_column=Column(BigInteger, nullable=False))
    max_active_per_workspace: int = Field(sa_column=Column(Integer, nullable=False))
    permissions: Any = Field(sa_column=Column(NullableJson, nullable=False))
    provider: str = Field(sa_column=Column(Text, nullable=False))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class AghSoulRow(SQLModel, table=True):
    """An agent's SOUL.md as the operator set it (only valid texts are kept)."""

    __tablename__ = "agh_souls"

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    agent_name: str = Field(sa_column=Column(Text, primary_key=True))
    body: str = Field(sa_column=Column(Text, nullable=False))
    revision_id: str = Field(sa_column=Column(Text, nullable=False))
    digest: str = Field(sa_column=Column(Text, nullable=False))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))


agh_tasks = AghTaskRow.__table__  # type: ignore[attr-defined]
agh_task_runs = AghTaskRunRow.__table__  # type: ignore[attr-defined]
agh_task_events = AghTaskEventRow.__table__  # type: ignore[attr-defined]
agh_session_lineage = AghSessionLineageRow.__table__  # type: ignore[attr-defined]
agh_souls = AghSoulRow.__table__  # type: ignore[attr-defined]
