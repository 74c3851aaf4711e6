"""The OTLP exporter's cursor (migration 0013).

One row per export target (protocol and endpoint), not per workspace: the
log's `seq` is global and the exporter follows it in one pass over every
workspace (each span says its workspace in its resource), so one position
says everything and one read on the primary key serves all workspaces. The
counters are what the exporter did up to that position, for /metrics."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Text
from sqlmodel import Field, SQLModel


class OtlpExportCursorRow(SQLModel, table=True):
    __tablename__ = "otlp_export_cursors"

    # `<protocol> <endpoint>`: a new backend starts from the beginning of the log.
    target: str = Field(sa_column=Column(Text, primary_key=True))
    # The last log position whose spans the backend acknowledged (or skipped).
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    spans_exported: int = Field(sa_column=Column(BigInteger, nullable=False))
    # Spans the backend refused in `partial_success`, and in refused batches.
    spans_rejected: int = Field(sa_column=Column(BigInteger, nullable=False))
    # Batches dropped after a non-retryable answer (a 4xx other than 429).
    batches_skipped: int = Field(sa_column=Column(BigInteger, nullable=False))
    # Attempts that failed and were tried again.
    retries: int = Field(sa_column=Column(BigInteger, nullable=False))
    # Times retention removed a workspace's entries before they were exported.
    retention_gaps: int = Field(sa_column=Column(BigInteger, nullable=False, server_default="0"))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


otlp_export_cursors = OtlpExportCursorRow.__table__  # type: ignore[attr-defined]
