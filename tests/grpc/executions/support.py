"""What the agents-API gRPC tests share: the stubs, the output cap they run
with, and the log as bytes (to check that a refused call wrote nothing)."""

from __future__ import annotations

from dataclasses import dataclass

from agentplane.v1 import executions_pb2_grpc as rpc
from agentplane.v1 import log_pb2, log_pb2_grpc

CAP = 2048


@dataclass
class Api:
    executions: rpc.ExecutionServiceStub
    agents: rpc.AgentServiceStub
    tools: rpc.ToolCallServiceStub
    log: log_pb2_grpc.LogServiceStub


async def log_bytes(api: Api) -> list[bytes]:
    request = log_pb2.WatchLogRequest(after_seq=0, stop_at_end=True)
    return [m.SerializeToString() async for m in api.log.WatchLog(request)]
