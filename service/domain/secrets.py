"""Secrets redacted at ingest (`AGENTPLANE_REDACT`, on by default), for
clients that do not redact before sending: the same rules as the hook
adapter's (agentplane_client.redaction, standard library only), so a value
is redacted alike wherever it comes from. Applied where each family decodes
its free-form payloads (tracer event titles, bodies and metadata; runtime
events' tool_input and tool_output; tool calls' input and output)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentplane_client.redaction import redact

__all__ = ["Scrub", "redact", "scrubber"]

Scrub = Callable[[Any], Any]


def _keep(value: Any) -> Any:
    return value


def scrubber(enabled: bool) -> Scrub:
    """`redact` (the same object back when nothing matched), or nothing."""
    return redact if enabled else _keep
