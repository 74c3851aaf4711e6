"""Why an export file cannot be imported."""

from __future__ import annotations

from service.base.errors import Reason


class TransferReason(Reason):
    # A line that is not what the export format says (or not JSON at all).
    EXPORT_FORMAT_INVALID = "EXPORT_FORMAT_INVALID"
    # The file stops before its closing line: it was cut short.
    EXPORT_TRUNCATED = "EXPORT_TRUNCATED"
    # The database to export is not at this agentplane's schema (older: migrate it first),
    # or the file to import was written at a schema this agentplane does not know.
    SCHEMA_MISMATCH = "SCHEMA_MISMATCH"
    # A seq of the file belongs to another entry in the database imported into.
    SEQ_TAKEN = "SEQ_TAKEN"
    # The file holds a table this version of agentplane does not have.
    UNKNOWN_TABLE = "UNKNOWN_TABLE"
