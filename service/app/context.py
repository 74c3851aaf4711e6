"""What a call carries into a servicer, whichever transport brought it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from service.store.tables import DEFAULT_WORKSPACE


@dataclass
class CallContext:
    # "/agentplane.v1.SessionService/CreateSession"
    method: str
    # Lower-case metadata keys (HTTP headers the gateway forwards, gRPC metadata).
    metadata: Mapping[str, str] = field(default_factory=dict)
    # Set by the auth step of the chain; every read and write is scoped to it.
    workspace: str = DEFAULT_WORKSPACE
    # Seconds left before the caller gives up, when it said.
    time_remaining: float | None = None
