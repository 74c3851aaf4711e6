"""The Agent Runtime family's error reasons (seed 004)."""

from __future__ import annotations

from service.base.errors import Reason


class RuntimeReason(Reason):
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    SESSION_EXISTS = "SESSION_EXISTS"
    SESSION_NOT_FINISHED = "SESSION_NOT_FINISHED"
    RESULT_NOT_FOUND = "RESULT_NOT_FOUND"
