"""Typed Python client for agentplane, sync (`Client`) and asyncio (`AsyncClient`).

    from agentplane_client import Client

    with Client("127.0.0.1:50051", api_key="...") as client:
        session = client.sessions.create("s1", "my session")

Results are the generated proto messages (`agentplane.v1.runtime_pb2`,
`agentplane.v1.log_pb2`) or plain values, and for the agents API
(`executions`, `agents`, `tools`) the dataclasses `Execution`, `Agent`,
`ToolCall`; failures raise `AgentplaneError`.

The names load on first use (PEP 562), so importing the package, or its
standard-library-only parts (`agentplane_client.hooks`, `.redaction`, run
by coding agents' hooks on every event), does not load grpc.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # importing typing would slow the hook adapter's start-up
if TYPE_CHECKING:
    from typing import Any

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

# Each public name and the module that defines it.
_MODULES = {
    "Agents": "agentplane_client._agents",
    "AsyncAgents": "agentplane_client._agents",
    "AgentplaneError": "agentplane_client._errors",
    "AlreadyExistsError": "agentplane_client._errors",
    "FailedPreconditionError": "agentplane_client._errors",
    "InvalidArgumentError": "agentplane_client._errors",
    "NotFoundError": "agentplane_client._errors",
    "PermissionDeniedError": "agentplane_client._errors",
    "UnauthenticatedError": "agentplane_client._errors",
    "UnavailableError": "agentplane_client._errors",
    "AsyncEvents": "agentplane_client._events",
    "EventLike": "agentplane_client._events",
    "Events": "agentplane_client._events",
    "AsyncExecutions": "agentplane_client._executions",
    "Executions": "agentplane_client._executions",
    "AsyncLog": "agentplane_client._log",
    "AsyncLogWatch": "agentplane_client._log",
    "Log": "agentplane_client._log",
    "LogWatch": "agentplane_client._log",
    "Agent": "agentplane_client._records",
    "Execution": "agentplane_client._records",
    "StreamSummary": "agentplane_client._records",
    "ToolCall": "agentplane_client._records",
    "AsyncSessions": "agentplane_client._sessions",
    "Sessions": "agentplane_client._sessions",
    "AsyncTools": "agentplane_client._tools",
    "Tools": "agentplane_client._tools",
    "AsyncClient": "agentplane_client.aio",
    "Client": "agentplane_client.client",
}

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


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
