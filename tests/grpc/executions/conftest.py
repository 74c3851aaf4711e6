"""Fixtures of the agents-API gRPC tests: a server with a small tool-output
cap, and the stubs on a channel to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from agentplane.v1 import executions_pb2_grpc as rpc
from agentplane.v1 import log_pb2_grpc

from service.base.config import Settings
from tests.conftest import Server
from tests.grpc.executions.support import CAP, Api


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.max_tool_output_bytes = CAP
    return settings


@pytest.fixture
async def api(server: Server) -> AsyncIterator[Api]:
    channel = server.channel()
    try:
        yield Api(
            rpc.ExecutionServiceStub(channel),
            rpc.AgentServiceStub(channel),
            rpc.ToolCallServiceStub(channel),
            log_pb2_grpc.LogServiceStub(channel),
        )
    finally:
        await channel.close()
