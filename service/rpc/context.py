"""What a call carries into a servicer, whichever transport brought it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
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
    # The API key the call was made with (set by the auth step; None when auth is off).
    key_id: str | None = None
    # Set by the auth step: raises if the call's key is no longer valid. A
    # stream calls it before each message, so a revoked key's stream ends.
    recheck: Callable[[], Awaitable[None]] | None = None
    # What a streaming servicer may yield besides its messages, for a caller
    # in this process: "ndjson" (pre-rendered NDJSON lines, bytes: the
    # gateway's streams) or "rows" (the feed's rows: the WebSockets). A
    # servicer that knows no such form yields messages (see WatchLog).
    wire: str = "proto"
