"""The blocking client: `Client`."""

from __future__ import annotations

from types import TracebackType

import grpc
from agentplane.v1 import executions_pb2_grpc, log_pb2_grpc, runtime_pb2_grpc

from agentplane_client._agents import Agents
from agentplane_client._calls import SyncCalls, auth_metadata
from agentplane_client._events import Events
from agentplane_client._executions import Executions
from agentplane_client._log import Log
from agentplane_client._records import CurrentExecution
from agentplane_client._services import SyncServices
from agentplane_client._sessions import Sessions
from agentplane_client._tools import Tools

DEFAULT_TARGET = "127.0.0.1:50051"


class Client(SyncServices):
    """A blocking agentplane client over one gRPC channel.

    Args:
        target: The server's gRPC address, "host:port".
        api_key: Sent as `authorization: Bearer <api_key>` on every call.
        timeout: Deadline in seconds of each unary call (None: no deadline).
            Log watches have no deadline.
        credentials: TLS channel credentials (e.g. `grpc.ssl_channel_credentials()`);
            None connects without TLS.

    Every failed call raises `AgentplaneError` (or a subclass for its code).
    Services are attributes: `sessions`, `events`, `log`, and the agents API
    (seed 001) `executions`, `agents`, `tools`, which share the client's
    current execution; and every service of the contract as a typed facade
    named after it (`rule_service`, `trenchcoat_service`, `agh_agent_service`,
    ...; see agentplane_client._services): request message in, response out.

    Example:
        with Client("127.0.0.1:50051") as client:
            client.sessions.create("s1", "my session")
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
            grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
        )
        calls = SyncCalls(auth_metadata(api_key), timeout)
        super().__init__(self._channel, calls)
        self.sessions = Sessions(runtime_pb2_grpc.SessionServiceStub(self._channel), calls)
        """Agent sessions: list, create, get, status, result, update_metadata, delete."""
        self.events = Events(runtime_pb2_grpc.EventServiceStub(self._channel), calls)
        """Session events: add, record, list, list_legacy."""
        self.log = Log(log_pb2_grpc.LogServiceStub(self._channel), calls)
        """The event log: watch."""
        current = CurrentExecution()
        self.executions = Executions(executions_pb2_grpc.ExecutionServiceStub(self._channel), calls, current)
        """Orchestrator runs (seed 001): start (makes it current), current, get, list, complete, fail, cancel."""
        self.agents = Agents(executions_pb2_grpc.AgentServiceStub(self._channel), calls, current)
        """Agents of the current execution: start, complete, fail, current, list, get, set_stream_summary."""
        self.tools = Tools(executions_pb2_grpc.ToolCallServiceStub(self._channel), calls, current)
        """Tool calls of agents: start, complete, fail, list, get, get_output."""

    def close(self) -> None:
        """Close the channel; calls in flight (and log watches) are cancelled."""
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
