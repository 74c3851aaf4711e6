"""The telemetry family's error reasons (the OTLP receiver and its reads)."""

from __future__ import annotations

from service.base.errors import Reason


class TelemetryReason(Reason):
    # A read names a session no telemetry came from.
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    # A page token this server did not hand out.
    INVALID_PAGE_TOKEN = "INVALID_PAGE_TOKEN"
