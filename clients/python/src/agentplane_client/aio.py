"""The asyncio client: `AsyncClient`."""

from __future__ import annotations

from types import TracebackType

import grpc
import grpc.aio
from agentplane.v1 import executions_pb2_grpc, log_pb2_grpc, runtime_pb2_grpc

from agentplane_client._agents import AsyncAgents
from agentplane_client._calls import AsyncCalls, auth_metadata
from agentplane_client._events import AsyncEvents
from agentplane_client._executions import AsyncExecutions
from agentplane_client._log import AsyncLog
from agentplane_client._records import CurrentExecution
from agentplane_client._services import AsyncServices
from agentplane_client._sessions import AsyncSessions
from agentplane_client._tools import AsyncTools
from agentplane_client.client import DEFAULT_TARGET


class AsyncClient(AsyncServices):
    """An asyncio agentplane client over one grpc.aio channel; the same surface
    as `Client`, with coroutines (and `log.watch` giving an async iterator).

    Args:
        target: The server's gRPC address, "host:port".
        api_key: Sent as `authorization: Bearer <api_key>` on every call.
        timeout: Deadline in seconds of each unary call (None: no deadline).
            Log watches have no deadline.
        credentials: TLS channel credentials; None connects without TLS.

    Create it inside the event loop that uses it. Every failed call raises
    `AgentplaneError` (or a subclass for its code).

    Example:
        async with AsyncClient("127.0.0.1:50051") as client:
            await client.sessions.create("s1", "my session")
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        api_key: str | None = None,
        *,
        timeout: float | None = 10.0,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.target = target
        self._channel = (
            grpc.aio.secure_channel(target, credentials) if credentials else grpc.aio.insecure_channel(target)
        )
        calls = AsyncCalls(auth_metadata(api_key), timeout)
        super().__init__(self._channel, calls)
        self.sessions = AsyncSessions(runtime_pb2_grpc.SessionServiceStub(self._channel), calls)
        """Agent sessions: list, create, get, status, result, update_metadata, delete."""
        self.events = AsyncEvents(runtime_pb2_grpc.EventServiceStub(self._channel), calls)
        """Session events: add, record, list, list_legacy."""
        self.log = AsyncLog(log_pb2_grpc.LogServiceStub(self._channel), calls)
        """The event log: watch."""
        current = CurrentExecution()
        self.executions = AsyncExecutions(
            executions_pb2_grpc.ExecutionServiceStub(self._channel), calls, current
        )
        """Orchestrator runs (seed 001): start (makes it current), current, get, list, complete, fail, cancel."""
        self.agents = AsyncAgents(executions_pb2_grpc.AgentServiceStub(self._channel), calls, current)
        """Agents of the current execution: start, complete, fail, current, list, get, set_stream_summary."""
        self.tools = AsyncTools(executions_pb2_grpc.ToolCallServiceStub(self._channel), calls, current)
        """Tool calls of agents: start, complete, fail, list, get, get_output."""

    async def close(self) -> None:
        """Close the channel; calls in flight (and log watches) are cancelled."""
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
