"""`client.tools`: agentplane.v1.ToolCallService, sync and async, read like
the seed's `db.tools`:

    tool_id = client.tools.start(agent_id, "Edit", {"file": "src/main.ts", "changes": "..."})
    client.tools.complete(tool_id, "File edited successfully", "Edited src/main.ts: added 15 lines")

`start` needs a current execution (`client.executions.start`), as upstream;
the tool call belongs to its agent's execution.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agentplane.v1 import executions_pb2 as pb

from agentplane_client._calls import AsyncCalls, SyncCalls
from agentplane_client._records import CurrentExecution, ToolCall, json_value, tool_call

if TYPE_CHECKING:
    from agentplane.v1.executions_pb2_grpc import ToolCallServiceAsyncStub, ToolCallServiceStub


def _start_request(
    current: CurrentExecution, agent_id: str, tool_name: str, input: Mapping[str, Any] | None
) -> pb.StartToolCallRequest:
    current.require()
    return pb.StartToolCallRequest(
        agent_id=agent_id, tool_name=tool_name, input=None if input is None else json_value(input, "input")
    )


class Tools:
    """The tools agents use (`client.tools`)."""

    def __init__(self, stub: ToolCallServiceStub, calls: SyncCalls, current: CurrentExecution) -> None:
        self._stub = stub
        self._calls = calls
        self._current = current

    def start(self, agent_id: str, tool_name: str, input: Mapping[str, Any] | None = None) -> str:
        """Record a running tool call of a running agent; returns its id.

        `input` is a JSON object. Raises FailedPreconditionError: "No active
        execution" (no call made) without a current execution, reason
        "AGENT_NOT_RUNNING" or "EXECUTION_NOT_RUNNING" when the agent or its
        execution has finished; NotFoundError for an unknown agent.
        """
        request = _start_request(self._current, agent_id, tool_name, input)
        return self._calls.unary(self._stub.StartToolCall, request).tool_call.id

    def complete(self, tool_id: str, output: str, summary: str | None = None) -> ToolCall:
        """Mark a running tool call completed with its output; returns it.

        An output under 1,024 UTF-8 bytes is kept in `output_inline`; a larger
        one keeps `output_summary` (`summary`, or its first 200 characters)
        and is read back with `get_output`. Raises InvalidArgumentError
        (reason "OUTPUT_TOO_LARGE") above the server's limit, NotFoundError
        for an unknown tool call, FailedPreconditionError (reason
        "TOOL_CALL_NOT_RUNNING") if it has already finished.
        """
        request = pb.CompleteToolCallRequest(tool_call_id=tool_id, output=output, summary=summary)
        return tool_call(self._calls.unary(self._stub.CompleteToolCall, request).tool_call)

    def fail(self, tool_id: str, error: str) -> ToolCall:
        """Mark a running tool call failed; returns it (errors as `complete`)."""
        request = pb.FailToolCallRequest(tool_call_id=tool_id, error=error)
        return tool_call(self._calls.unary(self._stub.FailToolCall, request).tool_call)

    def list(self, agent_id: str) -> builtins.list[ToolCall]:
        """An agent's tool calls, oldest first; NotFoundError for an unknown agent."""
        request = pb.ListToolCallsRequest(agent_id=agent_id)
        return [tool_call(t) for t in self._calls.unary(self._stub.ListToolCalls, request).tool_calls]

    def get(self, tool_id: str) -> ToolCall:
        """One tool call; NotFoundError (reason "TOOL_CALL_NOT_FOUND") if unknown."""
        request = pb.GetToolCallRequest(tool_call_id=tool_id)
        return tool_call(self._calls.unary(self._stub.GetToolCall, request).tool_call)

    def get_output(self, tool_id: str) -> str | None:
        """A tool call's full output, inline or not; None while it has none."""
        request = pb.GetToolCallOutputRequest(tool_call_id=tool_id)
        response = self._calls.unary(self._stub.GetToolCallOutput, request)
        return response.output if response.HasField("output") else None


class AsyncTools:
    """The tools agents use (`client.tools` of AsyncClient); see `Tools` for the semantics."""

    def __init__(self, stub: ToolCallServiceAsyncStub, calls: AsyncCalls, current: CurrentExecution) -> None:
        self._stub = stub
        self._calls = calls
        self._current = current

    async def start(self, agent_id: str, tool_name: str, input: Mapping[str, Any] | None = None) -> str:
        """Record a running tool call of a running agent; returns its id."""
        request = _start_request(self._current, agent_id, tool_name, input)
        return (await self._calls.unary(self._stub.StartToolCall, request)).tool_call.id

    async def complete(self, tool_id: str, output: str, summary: str | None = None) -> ToolCall:
        """Mark a running tool call completed with its output; returns it."""
        request = pb.CompleteToolCallRequest(tool_call_id=tool_id, output=output, summary=summary)
        return tool_call((await self._calls.unary(self._stub.CompleteToolCall, request)).tool_call)

    async def fail(self, tool_id: str, error: str) -> ToolCall:
        """Mark a running tool call failed; returns it."""
        request = pb.FailToolCallRequest(tool_call_id=tool_id, error=error)
        return tool_call((await self._calls.unary(self._stub.FailToolCall, request)).tool_call)

    async def list(self, agent_id: str) -> builtins.list[ToolCall]:
        """An agent's tool calls, oldest first."""
        request = pb.ListToolCallsRequest(agent_id=agent_id)
        return [tool_call(t) for t in (await self._calls.unary(self._stub.ListToolCalls, request)).tool_calls]

    async def get(self, tool_id: str) -> ToolCall:
        """One tool call."""
        request = pb.GetToolCallRequest(tool_call_id=tool_id)
        return tool_call((await self._calls.unary(self._stub.GetToolCall, request)).tool_call)

    async def get_output(self, tool_id: str) -> str | None:
        """A tool call's full output, inline or not; None while it has none."""
        request = pb.GetToolCallOutputRequest(tool_call_id=tool_id)
        response = await self._calls.unary(self._stub.GetToolCallOutput, request)
        return response.output if response.HasField("output") else None
