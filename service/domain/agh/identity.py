"""Who is calling the agent API: the `X-AGH-Session-ID` and `X-AGH-Agent`
headers (gRPC metadata `x-agh-session-id`, `x-agh-agent`), resolved against
the session projection every route family shares.

Any running session of the caller's workspace can be the identity. The
checks run in upstream's order and the first failure wins: a missing header
is `identity_required`; an unknown or finished session `identity_stale`; a
session recorded with another agent name `identity_mismatch` (all 401). A
session that records no agent name (seed 004 makes it optional) takes the
agent the header names.

Write operations resolve the caller inside their own transaction, so a
session that stops concurrently cannot act after its stop has committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection

from service.base.errors import PermissionDenied, Unauthenticated
from service.domain.agh.common import with_action
from service.domain.agh.reasons import AghReason
from service.store import sessions
from service.store.sessions import SessionRecord

SESSION_HEADER = "x-agh-session-id"
AGENT_HEADER = "x-agh-agent"
RUNNING = "running"

_START = "run this command from an AGH-managed agent session"
_RESUME = "start or resume the AGH session, then retry"
_CLEAR = "clear stale AGH identity environment variables and retry"


@dataclass(frozen=True)
class Claimed:
    """The identity a call claims (the trimmed headers)."""

    session_id: str
    agent_name: str

    @classmethod
    def of(cls, metadata: Mapping[str, str]) -> Claimed:
        return cls(metadata.get(SESSION_HEADER, "").strip(), metadata.get(AGENT_HEADER, "").strip())


@dataclass(frozen=True)
class Caller:
    """A resolved identity: a running session and the agent it runs."""

    session: SessionRecord
    agent_name: str

    @property
    def session_id(self) -> str:
        return self.session.session_id

    def actor(self) -> dict[str, str]:
        return {"kind": "agent_session", "ref": self.session_id}


def _unauthenticated(reason: AghReason, message: str, action: str) -> Unauthenticated:
    return with_action(Unauthenticated(message, reason=reason), action)  # type: ignore[return-value]


def require_headers(claimed: Claimed) -> None:
    """Checks 1 and 2: both headers are present (no database needed)."""
    if not claimed.session_id:
        raise _unauthenticated(
            AghReason.IDENTITY_REQUIRED, "AGH_SESSION_ID is required for agent commands", _START
        )
    if not claimed.agent_name:
        raise _unauthenticated(
            AghReason.IDENTITY_REQUIRED, "AGH_AGENT is required for agent commands", _START
        )


def resolve(conn: Connection, workspace: str, claimed: Claimed) -> Caller:
    """The caller, or the identity error upstream gives."""
    require_headers(claimed)
    return admit(claimed, sessions.get(conn, workspace, claimed.session_id))


def admit(claimed: Claimed, record: SessionRecord | None) -> Caller:
    """Checks 4 to 7 on the session the headers name (None: unknown)."""
    if record is None:
        raise _unauthenticated(
            AghReason.IDENTITY_STALE, "agent session identity is not known to the daemon", _RESUME
        )
    if record.status != RUNNING:
        raise _unauthenticated(AghReason.IDENTITY_STALE, "agent session identity is not active", _RESUME)
    if record.agent_name and record.agent_name != claimed.agent_name:
        raise _unauthenticated(
            AghReason.IDENTITY_MISMATCH, "AGH_AGENT does not match the daemon session agent", _CLEAR
        )
    return Caller(record, record.agent_name or claimed.agent_name)


def check_workspace(workspace: str, requested: str) -> None:
    """A request may name a workspace only if it is the caller's (403 `identity_unauthorized`)."""
    if requested and requested != workspace:
        raise with_action(
            PermissionDenied(
                "agent session does not belong to the requested workspace",
                reason=AghReason.IDENTITY_UNAUTHORIZED,
                metadata={"workspace_id": requested},
            ),
            "use the session workspace or start a session in the requested workspace",
        )
