"""ExecutionService, AgentService and ToolCallService (seed 001): proto <-> domain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import cache
from typing import Any, TypeVar

from agentplane.v1 import executions_pb2 as pb
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from service.api.ordered_stream import answer_in_order
from service.base.errors import CommonReason, DomainError, FieldViolation, InvalidArgument
from service.codec import merge_dict, value_to_python
from service.domain.executions import agents, executions, tool_calls
from service.domain.executions.reasons import ExecutionsReason
from service.rpc.context import CallContext
from service.rpc.dispatch import check_required
from service.rpc.limits import check_limits
from service.rpc.status import from_domain
from service.store.executions.queries import ToolCallRecord
from service.store.store import Store
from service.store.writer import Operation

M = TypeVar("M", bound=Message)
_TIMESTAMP = "google.protobuf.Timestamp"


@cache
def _setters(md: Descriptor) -> dict[str, Callable[[Any, str, Any], None]]:
    """How each field of a message type takes a record's value: times are
    microseconds, other messages (Struct, Value, StreamSummary) JSON values."""

    def timestamp(msg: Any, name: str, us: Any) -> None:
        getattr(msg, name).FromMicroseconds(us)

    def json_value(msg: Any, name: str, value: Any) -> None:
        merge_dict(value, getattr(msg, name))

    out: dict[str, Callable[[Any, str, Any], None]] = {}
    for fd in md.fields:
        if fd.message_type is None:
            out[fd.name] = setattr
        elif fd.message_type.full_name == _TIMESTAMP:
            out[fd.name] = timestamp
        else:
            out[fd.name] = json_value
    return out


def to_pb(record: Any, cls: type[M]) -> M:
    """A record as its message; None values stay unset (null in JSON)."""
    return fill(cls(), record)


def fill(msg: M, record: Any) -> M:
    """Set `msg`'s fields from a record (see `to_pb`); returns `msg`."""
    setters = _setters(msg.DESCRIPTOR)
    for name, value in record.__dict__.items():
        if value is not None:
            setters[name](msg, name, value)
    return msg


def _optional(msg: Message, name: str) -> Any:
    """A proto3 `optional` field's value, or None when unset."""
    return getattr(msg, name) if msg.HasField(name) else None


def _json(msg: Message, name: str) -> Any:
    """A google.protobuf.Value field as a JSON value; None when unset or null."""
    return value_to_python(getattr(msg, name)) if msg.HasField(name) else None


class ExecutionServicer:
    service = pb.DESCRIPTOR.services_by_name["ExecutionService"]

    def __init__(self, store: Store) -> None:
        self.store = store

    async def StartExecution(
        self, req: pb.StartExecutionRequest, ctx: CallContext
    ) -> pb.StartExecutionResponse:
        record = await executions.start_execution(
            self.store,
            ctx.workspace,
            name=_optional(req, "name"),
            file_path=_optional(req, "file_path"),
            config=_json(req, "config"),
            execution_id=_optional(req, "execution_id"),
        )
        return pb.StartExecutionResponse(execution=to_pb(record, pb.Execution))

    async def GetExecution(self, req: pb.GetExecutionRequest, ctx: CallContext) -> pb.GetExecutionResponse:
        record = await executions.get_execution(self.store, ctx.workspace, req.execution_id)
        return pb.GetExecutionResponse(execution=to_pb(record, pb.Execution))

    async def ListExecutions(
        self, req: pb.ListExecutionsRequest, ctx: CallContext
    ) -> pb.ListExecutionsResponse:
        records = await executions.list_executions(self.store, ctx.workspace, req.limit)
        return pb.ListExecutionsResponse(executions=[to_pb(r, pb.Execution) for r in records])

    async def CompleteExecution(
        self, req: pb.CompleteExecutionRequest, ctx: CallContext
    ) -> pb.CompleteExecutionResponse:
        record = await executions.complete_execution(
            self.store, ctx.workspace, req.execution_id, _json(req, "result")
        )
        return pb.CompleteExecutionResponse(execution=to_pb(record, pb.Execution))

    async def FailExecution(self, req: pb.FailExecutionRequest, ctx: CallContext) -> pb.FailExecutionResponse:
        record = await executions.fail_execution(self.store, ctx.workspace, req.execution_id, req.error)
        return pb.FailExecutionResponse(execution=to_pb(record, pb.Execution))

    async def CancelExecution(
        self, req: pb.CancelExecutionRequest, ctx: CallContext
    ) -> pb.CancelExecutionResponse:
        record = await executions.cancel_execution(self.store, ctx.workspace, req.execution_id)
        return pb.CancelExecutionResponse(execution=to_pb(record, pb.Execution))


class AgentServicer:
    service = pb.DESCRIPTOR.services_by_name["AgentService"]

    def __init__(self, store: Store) -> None:
        self.store = store

    async def StartAgent(self, req: pb.StartAgentRequest, ctx: CallContext) -> pb.StartAgentResponse:
        record = await agents.start_agent(
            self.store,
            ctx.workspace,
            req.execution_id,
            req.prompt,
            req.model,
            _optional(req, "system_prompt"),
            _optional(req, "log_path"),
            _optional(req, "phase_id"),
        )
        return pb.StartAgentResponse(agent=to_pb(record, pb.Agent))

    async def ListAgents(self, req: pb.ListAgentsRequest, ctx: CallContext) -> pb.ListAgentsResponse:
        records = await agents.list_agents(self.store, ctx.workspace, req.execution_id)
        return pb.ListAgentsResponse(agents=[to_pb(r, pb.Agent) for r in records])

    async def GetCurrentAgent(
        self, req: pb.GetCurrentAgentRequest, ctx: CallContext
    ) -> pb.GetCurrentAgentResponse:
        record = await agents.current_agent(self.store, ctx.workspace, req.execution_id)
        return pb.GetCurrentAgentResponse(agent=to_pb(record, pb.Agent) if record else None)

    async def GetAgent(self, req: pb.GetAgentRequest, ctx: CallContext) -> pb.GetAgentResponse:
        record = await agents.get_agent(self.store, ctx.workspace, req.agent_id)
        return pb.GetAgentResponse(agent=to_pb(record, pb.Agent))

    async def CompleteAgent(self, req: pb.CompleteAgentRequest, ctx: CallContext) -> pb.CompleteAgentResponse:
        tokens = (req.tokens.input, req.tokens.output) if req.HasField("tokens") else None
        record = await agents.complete_agent(
            self.store,
            ctx.workspace,
            req.agent_id,
            _optional(req, "result"),
            _json(req, "result_structured"),
            tokens,
        )
        return pb.CompleteAgentResponse(agent=to_pb(record, pb.Agent))

    async def FailAgent(self, req: pb.FailAgentRequest, ctx: CallContext) -> pb.FailAgentResponse:
        record = await agents.fail_agent(self.store, ctx.workspace, req.agent_id, req.error)
        return pb.FailAgentResponse(agent=to_pb(record, pb.Agent))

    async def SetAgentStreamSummary(
        self, req: pb.SetAgentStreamSummaryRequest, ctx: CallContext
    ) -> pb.SetAgentStreamSummaryResponse:
        summary = {key: getattr(req.stream_summary, key) for key in agents.STREAM_SUMMARY_KEYS}
        record = await agents.set_stream_summary(self.store, ctx.workspace, req.agent_id, summary)
        return pb.SetAgentStreamSummaryResponse(agent=to_pb(record, pb.Agent))


class ToolCallServicer:
    service = pb.DESCRIPTOR.services_by_name["ToolCallService"]

    def __init__(self, store: Store, max_output_bytes: int) -> None:
        self.store = store
        self.max_output_bytes = max_output_bytes

    # The writes, as operations checked before they are queued: the unary
    # RPCs run one each, RecordToolCalls queues many in order.
    def _start(self, req: pb.StartToolCallRequest, ctx: CallContext) -> Operation[ToolCallRecord]:
        return tool_calls.start_op(ctx.workspace, req.agent_id, req.tool_name, _json(req, "input"))

    def _complete(self, req: pb.CompleteToolCallRequest, ctx: CallContext) -> Operation[ToolCallRecord]:
        return tool_calls.complete_op(
            ctx.workspace,
            req.tool_call_id,
            req.output,
            _optional(req, "summary"),
            max_output_bytes=self.max_output_bytes,
        )

    def _fail(self, req: pb.FailToolCallRequest, ctx: CallContext) -> Operation[ToolCallRecord]:
        return tool_calls.fail_op(ctx.workspace, req.tool_call_id, req.error)

    async def StartToolCall(self, req: pb.StartToolCallRequest, ctx: CallContext) -> pb.StartToolCallResponse:
        record = await self.store.write(self._start(req, ctx))
        return pb.StartToolCallResponse(tool_call=to_pb(record, pb.ToolCall))

    async def ListToolCalls(self, req: pb.ListToolCallsRequest, ctx: CallContext) -> pb.ListToolCallsResponse:
        records = await tool_calls.list_tool_calls(self.store, ctx.workspace, req.agent_id)
        return pb.ListToolCallsResponse(tool_calls=[to_pb(r, pb.ToolCall) for r in records])

    async def GetToolCall(self, req: pb.GetToolCallRequest, ctx: CallContext) -> pb.GetToolCallResponse:
        record = await tool_calls.get_tool_call(self.store, ctx.workspace, req.tool_call_id)
        return pb.GetToolCallResponse(tool_call=to_pb(record, pb.ToolCall))

    async def CompleteToolCall(
        self, req: pb.CompleteToolCallRequest, ctx: CallContext
    ) -> pb.CompleteToolCallResponse:
        record = await self.store.write(self._complete(req, ctx))
        return pb.CompleteToolCallResponse(tool_call=to_pb(record, pb.ToolCall))

    async def FailToolCall(self, req: pb.FailToolCallRequest, ctx: CallContext) -> pb.FailToolCallResponse:
        record = await self.store.write(self._fail(req, ctx))
        return pb.FailToolCallResponse(tool_call=to_pb(record, pb.ToolCall))

    async def GetToolCallOutput(
        self, req: pb.GetToolCallOutputRequest, ctx: CallContext
    ) -> pb.GetToolCallOutputResponse:
        output = await tool_calls.get_output(self.store, ctx.workspace, req.tool_call_id)
        return pb.GetToolCallOutputResponse(output=output)

    def RecordToolCalls(
        self, requests: AsyncIterator[pb.RecordToolCallsRequest], ctx: CallContext
    ) -> AsyncIterator[pb.RecordToolCallsResponse]:
        def queue(req: pb.RecordToolCallsRequest) -> Awaitable[pb.RecordToolCallsResponse]:
            if len(req.changes) > MAX_CHANGES:
                raise InvalidArgument(
                    f"changes: {len(req.changes)} in one message, more than the {MAX_CHANGES} allowed",
                    reason=ExecutionsReason.TOO_MANY_CHANGES,
                    violations=[FieldViolation("changes", f"must be at most {MAX_CHANGES}")],
                )
            return _outcomes([self._queue_change(change, ctx) for change in req.changes])

        return answer_in_order(requests, queue)

    def _queue_change(self, change: pb.ToolCallChange, ctx: CallContext) -> asyncio.Future[ToolCallRecord]:
        """The change's write, queued; or, if it is refused before, its error."""
        try:
            check_limits(change)
            check_required(change)
            action = change.WhichOneof("action")
            if action == "start":
                op = self._start(change.start, ctx)
            elif action == "complete":
                op = self._complete(change.complete, ctx)
            elif action == "fail":
                op = self._fail(change.fail, ctx)
            else:
                raise InvalidArgument(
                    "one of start, complete or fail is required",
                    reason=CommonReason.MISSING_FIELD,
                    violations=[FieldViolation("action", "one of start, complete or fail is required")],
                )
            return self.store.enqueue(op)
        except DomainError as err:
            refused: asyncio.Future[ToolCallRecord] = asyncio.get_running_loop().create_future()
            refused.set_exception(err)
            return refused


# Changes in one RecordToolCalls message: bounds the writes one stream queues.
MAX_CHANGES = 500


async def _outcomes(queued: list[asyncio.Future[ToolCallRecord]]) -> pb.RecordToolCallsResponse:
    """The response to one RecordToolCalls message, once its writes have committed."""
    response = pb.RecordToolCallsResponse()
    for write in queued:
        outcome = response.outcomes.add()
        try:
            fill(outcome.tool_call, await write)
        except DomainError as err:
            outcome.error.CopyFrom(from_domain(err).status)
    return response
