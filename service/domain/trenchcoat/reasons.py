"""The Trenchcoat family's error reasons (seed 002)."""

from __future__ import annotations

from service.base.errors import Reason


class TrenchcoatReason(Reason):
    VALIDATION_ERROR = "VALIDATION_ERROR"
    BATCH_TOO_LARGE = "BATCH_TOO_LARGE"
