"""`client.tools`: agentplane.v1.ToolCallService, sync and async, read like
the seed's `db.tools`:

    tool_id = client.tools.start(agent_id, "Edit", {"file": "src/main.ts", "changes": "..."})
    client.tools.complete(tool_id, "File edited successfully", "Edited src/main.ts: added 15 lines")

`start` needs a current execution (`client.executions.start`), as upstream;
the tool call belongs to its agent's execution.

A runtime with many tool calls in flight records them over one stream with
`AsyncClient.tools.recorder()`: the same calls, answered once committed, sent
together and committed together (several times the unary calls' rate):

    async with client.tools.recorder() as recorder:
        tool_id = await recorder.start(agent_id, "Edit", {"file": "src/main.ts"})
        await recorder.complete(tool_id, "File edited successfully")
"""

from __future__ import annotations

import asyncio
import builtins
from collections import deque
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
from agentplane.v1 import executions_pb2 as pb

from agentplane_client._calls import AsyncCalls, SyncCalls
from agentplane_client._errors import error_from_rpc, error_from_status
from agentplane_client._records import CurrentExecution, ToolCall, json_value, tool_call

if TYPE_CHECKING:
    from agentplane.v1.executions_pb2_grpc import ToolCallServiceAsyncStub, ToolCallServiceStub

    RecordCall = grpc.aio.StreamStreamCall[pb.RecordToolCallsRequest, pb.RecordToolCallsResponse]


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

    def recorder(self) -> ToolCallRecorder:
        """A RecordToolCalls stream, to use with `async with` (see the module's notes)."""
        return ToolCallRecorder(self._stub, self._calls, self._current)


# The server's bound on the changes of one RecordToolCalls message.
MAX_CHANGES = 500


class ToolCallRecorder:
    """`start`, `complete` and `fail` over one RecordToolCalls stream.

    Each call returns when the server has committed it, with the same result
    or error as the unary call. Calls from many tasks share the stream: what
    they have queued since the last message goes in the next one, and the
    server commits many together. Leaving the `async with` waits for the
    calls in flight, then closes the stream."""

    def __init__(self, stub: ToolCallServiceAsyncStub, calls: AsyncCalls, current: CurrentExecution) -> None:
        self._stub = stub
        self._calls = calls
        self._current = current
        # Changes not sent yet, and the answers awaited per message sent, in order.
        self._ready: list[tuple[pb.ToolCallChange, asyncio.Future[pb.ToolCallOutcome]]] = []
        self._sent: deque[list[asyncio.Future[pb.ToolCallOutcome]]] = deque()
        self._wake = asyncio.Event()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> ToolCallRecorder:
        # No deadline: the stream lives as long as the runtime records.
        call = self._stub.RecordToolCalls(metadata=self._calls.metadata)
        self._tasks = [asyncio.create_task(self._send(call)), asyncio.create_task(self._read(call))]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Wait for the calls in flight, then end the stream; raises the
        stream's error if it failed."""
        self._closing = True
        self._wake.set()
        for task in self._tasks:
            await task

    async def start(self, agent_id: str, tool_name: str, input: Mapping[str, Any] | None = None) -> str:
        """As `AsyncTools.start`: record a running tool call; returns its id."""
        change = pb.ToolCallChange(start=_start_request(self._current, agent_id, tool_name, input))
        return (await self._record(change)).id

    async def complete(self, tool_id: str, output: str, summary: str | None = None) -> ToolCall:
        """As `AsyncTools.complete`: mark a running tool call completed."""
        change = pb.ToolCallChange(
            complete=pb.CompleteToolCallRequest(tool_call_id=tool_id, output=output, summary=summary)
        )
        return tool_call(await self._record(change))

    async def fail(self, tool_id: str, error: str) -> ToolCall:
        """As `AsyncTools.fail`: mark a running tool call failed."""
        change = pb.ToolCallChange(fail=pb.FailToolCallRequest(tool_call_id=tool_id, error=error))
        return tool_call(await self._record(change))

    async def _record(self, change: pb.ToolCallChange) -> pb.ToolCall:
        if not self._tasks or self._closing:
            raise RuntimeError("use the recorder inside `async with client.tools.recorder() as recorder:`")
        answer: asyncio.Future[pb.ToolCallOutcome] = asyncio.get_running_loop().create_future()
        self._ready.append((change, answer))
        self._wake.set()
        outcome = await answer
        if outcome.HasField("error"):
            raise error_from_status(outcome.error)
        return outcome.tool_call

    async def _send(self, call: RecordCall) -> None:
        try:
            while self._ready or not self._closing:
                await self._wake.wait()
                self._wake.clear()
                while self._ready:
                    batch, self._ready = self._ready[:MAX_CHANGES], self._ready[MAX_CHANGES:]
                    self._sent.append([answer for _, answer in batch])
                    await call.write(pb.RecordToolCallsRequest(changes=[change for change, _ in batch]))
            await call.done_writing()
        except grpc.RpcError as err:
            self._fail(error_from_rpc(err))
        except BaseException as exc:
            self._fail(RuntimeError(f"the recorder's stream broke: {exc!r}"))
            raise

    async def _read(self, call: RecordCall) -> None:
        try:
            async for response in call:
                for answer, outcome in zip(self._sent.popleft(), response.outcomes, strict=True):
                    if not answer.done():
                        answer.set_result(outcome)
        except grpc.RpcError as err:
            self._fail(error_from_rpc(err))
            raise error_from_rpc(err) from None
        self._fail(RuntimeError("the stream ended before answering"))

    def _fail(self, failure: Exception) -> None:
        """Every call still waiting gets `failure`."""
        waiting = [answer for sent in self._sent for answer in sent] + [answer for _, answer in self._ready]
        self._sent.clear()
        self._ready.clear()
        for answer in waiting:
            if not answer.done():
                answer.set_exception(failure)
