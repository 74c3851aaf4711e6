"""Every table of every family, in one metadata: what Alembic compares the
migrations with (service/store/migrations/env.py). A new family's tables
module is registered here."""

from __future__ import annotations

from sqlmodel import SQLModel

# Imported for their tables: defining them registers them in SQLModel.metadata.
from service.store import idempotency, tables
from service.store.agh import channel_tables
from service.store.agh import tables as agh_tables
from service.store.console import indexes as console_indexes
from service.store.executions import tables as executions_tables
from service.store.otlp_export import tables as otlp_export_tables
from service.store.retention import tables as retention_tables
from service.store.telemetry import tables as telemetry_tables
from service.store.tracer import rule_tables
from service.store.tracer import tables as tracer_tables

MODULES = (
    tables,
    idempotency,
    executions_tables,
    tracer_tables,
    rule_tables,
    agh_tables,
    channel_tables,
    console_indexes,
    otlp_export_tables,
    telemetry_tables,
    retention_tables,
)
metadata = SQLModel.metadata
