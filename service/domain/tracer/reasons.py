"""The Agent Tracer family's error reasons (seed 000, verification rules
included); gateway/tracer_errors.py gives each its upstream status and code."""

from __future__ import annotations

from service.base.errors import Reason


class TracerReason(Reason):
    VALIDATION_ERROR = "VALIDATION_ERROR"
    BAD_REQUEST = "BAD_REQUEST"
    CONFLICT = "CONFLICT"
    TASK_NOT_FOUND = "TASK_NOT_FOUND"
    RULE_NOT_FOUND = "RULE_NOT_FOUND"
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
