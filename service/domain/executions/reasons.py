"""The agents API's error reasons (seed 001): `<record>_NOT_FOUND`,
`<record>_NOT_RUNNING` for executions, agents and tool calls, and limits."""

from __future__ import annotations

from service.base.errors import Reason


class ExecutionsReason(Reason):
    EXECUTION_NOT_FOUND = "EXECUTION_NOT_FOUND"
    AGENT_NOT_FOUND = "AGENT_NOT_FOUND"
    TOOL_CALL_NOT_FOUND = "TOOL_CALL_NOT_FOUND"
    EXECUTION_NOT_RUNNING = "EXECUTION_NOT_RUNNING"
    AGENT_NOT_RUNNING = "AGENT_NOT_RUNNING"
    TOOL_CALL_NOT_RUNNING = "TOOL_CALL_NOT_RUNNING"
    OUTPUT_TOO_LARGE = "OUTPUT_TOO_LARGE"
    TOO_MANY_CHANGES = "TOO_MANY_CHANGES"
