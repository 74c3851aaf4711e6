"""Retention's error reasons (the quota and horizon reasons are common ones:
the writer and every live feed raise them, service.base.errors)."""

from __future__ import annotations

from service.base.errors import Reason


class RetentionReason(Reason):
    INVALID_RETENTION_POLICY = "INVALID_RETENTION_POLICY"
