"""Typed Python client for agentplane, sync (`Client`) and asyncio (`AsyncClient`).

    from agentplane_client import Client

    with Client("127.0.0.1:50051", api_key="...") as client:
        session = client.sessions.create("s1", "my session")

Results are the generated proto messages (`agentplane.v1.runtime_pb2`,
`agentplane.v1.log_pb2`) or plain values, and for the agents API
(`executions`, `agents`, `tools`) the dataclasses `Execution`, `Agent`,
`ToolCall`; failures raise `AgentplaneError`.
"""

from agentplane_client._agents import Agents, AsyncAgents
from agentplane_client._errors import (
    AgentplaneError,
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
    UnavailableError,
)
from agentplane_client._events import AsyncEvents, EventLike, Events
from agentplane_client._executions import AsyncExecutions, Executions
from agentplane_client._log import AsyncLog, AsyncLogWatch, Log, LogWatch
from agentplane_client._records import Agent, Execution, StreamSummary, ToolCall
from agentplane_client._sessions import AsyncSessions, Sessions
from agentplane_client._tools import AsyncTools, Tools
from agentplane_client.aio import AsyncClient
from agentplane_client.client import Client

__all__ = [
    "Agent",
    "AgentplaneError",
    "Agents",
    "AlreadyExistsError",
    "AsyncAgents",
    "AsyncClient",
    "AsyncEvents",
    "AsyncExecutions",
    "AsyncLog",
    "AsyncLogWatch",
    "AsyncSessions",
    "AsyncTools",
    "Client",
    "EventLike",
    "Events",
    "Execution",
    "Executions",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "Log",
    "LogWatch",
    "NotFoundError",
    "PermissionDeniedError",
    "Sessions",
    "StreamSummary",
    "ToolCall",
    "Tools",
    "UnauthenticatedError",
    "UnavailableError",
]
