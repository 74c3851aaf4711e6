"""`client.sessions`: agentplane.v1.SessionService, sync and async.

The request builders are shared; the two classes differ only in how they call.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from agentplane.v1 import runtime_pb2 as pb

from agentplane_client._calls import AsyncCalls, SyncCalls

if TYPE_CHECKING:
    from agentplane.v1.runtime_pb2_grpc import SessionServiceAsyncStub, SessionServiceStub


def _create_request(
    session_id: str, session_name: str, project_dir: str | None, agent_name: str | None
) -> pb.CreateSessionRequest:
    return pb.CreateSessionRequest(
        session_id=session_id, session_name=session_name, project_dir=project_dir, agent_name=agent_name
    )


def _update_request(
    session_id: str, session_name: str | None, project_dir: str | None, agent_name: str | None
) -> pb.UpdateSessionMetadataRequest:
    # None leaves a field unset, which the server reads as "unchanged".
    return pb.UpdateSessionMetadataRequest(
        session_id=session_id, session_name=session_name, project_dir=project_dir, agent_name=agent_name
    )


def _result_text(reply: pb.GetSessionResultResponse) -> str | None:
    """The result text; None when that content block's text is null."""
    return reply.result if reply.HasField("result") else None


class Sessions:
    """Agent sessions (`client.sessions`)."""

    def __init__(self, stub: SessionServiceStub, calls: SyncCalls) -> None:
        self._stub = stub
        self._calls = calls

    def list(self) -> builtins.list[pb.Session]:
        """Every session of the caller's workspace, newest first."""
        return builtins.list(self._calls.unary(self._stub.ListSessions, pb.ListSessionsRequest()).sessions)

    def create(
        self,
        session_id: str,
        session_name: str,
        project_dir: str | None = None,
        agent_name: str | None = None,
    ) -> pb.Session:
        """Create a running session and return it as stored.

        Raises AlreadyExistsError (reason "SESSION_EXISTS") if the id is taken,
        InvalidArgumentError if `session_id` or `session_name` is empty.
        """
        request = _create_request(session_id, session_name, project_dir, agent_name)
        return self._calls.unary(self._stub.CreateSession, request).session

    def get(self, session_id: str) -> pb.Session:
        """One session; NotFoundError (reason "SESSION_NOT_FOUND") if unknown."""
        return self._calls.unary(self._stub.GetSession, pb.GetSessionRequest(session_id=session_id)).session

    def status(self, session_id: str) -> str:
        """The status: "running", "finished", or "not_existent" for an unknown id (never NOT_FOUND)."""
        request = pb.GetSessionStatusRequest(session_id=session_id)
        return self._calls.unary(self._stub.GetSessionStatus, request).status

    def result(self, session_id: str) -> str | None:
        """The text of the first content block of the latest assistant message.

        Raises FailedPreconditionError while the session is running and
        NotFoundError for an unknown session or when there is no such text.
        """
        request = pb.GetSessionResultRequest(session_id=session_id)
        return _result_text(self._calls.unary(self._stub.GetSessionResult, request))

    def update_metadata(
        self,
        session_id: str,
        *,
        session_name: str | None = None,
        project_dir: str | None = None,
        agent_name: str | None = None,
    ) -> pb.Session:
        """Set the given fields (None leaves a field unchanged); returns the updated session."""
        request = _update_request(session_id, session_name, project_dir, agent_name)
        return self._calls.unary(self._stub.UpdateSessionMetadata, request).session

    def delete(self, session_id: str) -> pb.DeletedCounts:
        """Delete a session and all its events, permanently; returns what was removed."""
        request = pb.DeleteSessionRequest(session_id=session_id)
        return self._calls.unary(self._stub.DeleteSession, request).deleted


class AsyncSessions:
    """Agent sessions (`client.sessions` of AsyncClient); see `Sessions` for the semantics."""

    def __init__(self, stub: SessionServiceAsyncStub, calls: AsyncCalls) -> None:
        self._stub = stub
        self._calls = calls

    async def list(self) -> builtins.list[pb.Session]:
        """Every session of the caller's workspace, newest first."""
        response = await self._calls.unary(self._stub.ListSessions, pb.ListSessionsRequest())
        return builtins.list(response.sessions)

    async def create(
        self,
        session_id: str,
        session_name: str,
        project_dir: str | None = None,
        agent_name: str | None = None,
    ) -> pb.Session:
        """Create a running session and return it as stored (AlreadyExistsError if the id is taken)."""
        request = _create_request(session_id, session_name, project_dir, agent_name)
        return (await self._calls.unary(self._stub.CreateSession, request)).session

    async def get(self, session_id: str) -> pb.Session:
        """One session; NotFoundError (reason "SESSION_NOT_FOUND") if unknown."""
        request = pb.GetSessionRequest(session_id=session_id)
        return (await self._calls.unary(self._stub.GetSession, request)).session

    async def status(self, session_id: str) -> str:
        """The status: "running", "finished", or "not_existent" for an unknown id."""
        request = pb.GetSessionStatusRequest(session_id=session_id)
        return (await self._calls.unary(self._stub.GetSessionStatus, request)).status

    async def result(self, session_id: str) -> str | None:
        """The first text block of the latest assistant message (see `Sessions.result`)."""
        request = pb.GetSessionResultRequest(session_id=session_id)
        return _result_text(await self._calls.unary(self._stub.GetSessionResult, request))

    async def update_metadata(
        self,
        session_id: str,
        *,
        session_name: str | None = None,
        project_dir: str | None = None,
        agent_name: str | None = None,
    ) -> pb.Session:
        """Set the given fields (None leaves a field unchanged); returns the updated session."""
        request = _update_request(session_id, session_name, project_dir, agent_name)
        return (await self._calls.unary(self._stub.UpdateSessionMetadata, request)).session

    async def delete(self, session_id: str) -> pb.DeletedCounts:
        """Delete a session and all its events, permanently; returns what was removed."""
        request = pb.DeleteSessionRequest(session_id=session_id)
        return (await self._calls.unary(self._stub.DeleteSession, request)).deleted
