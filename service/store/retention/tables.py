"""Retention and quotas: each workspace's policy, and what it holds (migration 0010).

`workspace_policies` keeps what an admin set for a workspace (a null column
follows the server's default). `workspace_usage` is one row per workspace
that the writer keeps current in the same transaction as every write: the
entries appended in the current UTC day, the JSON characters of the data of
the entries it holds, and the retention horizon, the highest `seq` of the
workspace's entries removed so far (every entry of the workspace at or below
it is gone; a cursor below it would resume with a gap)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Text
from sqlmodel import Field, SQLModel


class WorkspacePolicyRow(SQLModel, table=True):
    __tablename__ = "workspace_policies"

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    # Remove entries older than this many seconds (0: keep forever).
    retention_seconds: int | None = Field(default=None, sa_column=Column(BigInteger))
    # Remove the oldest entries while the stored payload is above this (0: no limit).
    retention_bytes: int | None = Field(default=None, sa_column=Column(BigInteger))
    # Refuse writes past this many entries a UTC day (0: no limit).
    quota_events_per_day: int | None = Field(default=None, sa_column=Column(BigInteger))
    # Refuse writes past this much stored payload (0: no limit).
    quota_stored_bytes: int | None = Field(default=None, sa_column=Column(BigInteger))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class WorkspaceUsageRow(SQLModel, table=True):
    __tablename__ = "workspace_usage"

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    # The UTC day `day_events` counts (YYYY-MM-DD).
    day: str = Field(sa_column=Column(Text, nullable=False))
    day_events: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    stored_bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    horizon_seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    # When retention last removed entries of the workspace.
    purged_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


workspace_policies = WorkspacePolicyRow.__table__  # type: ignore[attr-defined]
workspace_usage = WorkspaceUsageRow.__table__  # type: ignore[attr-defined]
