"""Secrets redacted at ingest (`AGENTPLANE_REDACT`, on by default), for
clients that do not redact before sending: the same rules as the hook
adapter's (agentplane_client.redaction, standard library only), so a value
is redacted alike wherever it comes from. Applied to every write's request
in one place, the call chain (service.rpc.redaction)."""

from __future__ import annotations

from agentplane_client.redaction import redact, redact_text

__all__ = ["redact", "redact_text"]
