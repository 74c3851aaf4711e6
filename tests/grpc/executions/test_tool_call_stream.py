"""RecordToolCalls: tool calls started, completed and failed over one
bidirectional stream, as a runtime with many in flight records them. Each
message gets one answer, in the order sent, with one outcome per change:
what the unary RPC would have returned, or its error (and nothing written
for it); the stream goes on after an error. Also through the Python
client's `tools.recorder()`."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from agentplane.v1 import executions_pb2 as pb
from agentplane_client import AsyncClient, FailedPreconditionError, InvalidArgumentError, NotFoundError
from agentplane_client._tools import MAX_CHANGES
from google.rpc import code_pb2, error_details_pb2, status_pb2

from service.api import executions as executions_api
from service.rpc.status import DOMAIN
from tests.conftest import Server
from tests.grpc.executions.support import CAP, Api, log_bytes
from tests.grpc.test_runtime_grpc import assert_reason, failure


async def running_agents(api: Api, n: int) -> tuple[str, list[str]]:
    eid = (await api.executions.StartExecution(pb.StartExecutionRequest(name="stream"))).execution.id
    agents = [
        (await api.agents.StartAgent(pb.StartAgentRequest(execution_id=eid, prompt=f"a{i}"))).agent.id
        for i in range(n)
    ]
    return eid, agents


def start(agent_id: str, tool_name: str = "Edit", **input: Any) -> pb.ToolCallChange:
    change = pb.ToolCallChange(start=pb.StartToolCallRequest(agent_id=agent_id, tool_name=tool_name))
    if input:
        change.start.input.struct_value.update(input)
    return change


def complete(tool_call_id: str, output: str = "ok") -> pb.ToolCallChange:
    return pb.ToolCallChange(complete=pb.CompleteToolCallRequest(tool_call_id=tool_call_id, output=output))


def fail(tool_call_id: str, error: str = "boom") -> pb.ToolCallChange:
    return pb.ToolCallChange(fail=pb.FailToolCallRequest(tool_call_id=tool_call_id, error=error))


async def record(api: Api, *messages: list[pb.ToolCallChange]) -> list[list[pb.ToolCallOutcome]]:
    """Send every message without waiting, then read all the answers."""
    call = api.tools.RecordToolCalls()
    for changes in messages:
        await call.write(pb.RecordToolCallsRequest(changes=changes))
    await call.done_writing()
    return [list(response.outcomes) async for response in call]


async def record_one_by_one(api: Api, changes: list[pb.ToolCallChange]) -> list[pb.ToolCallOutcome]:
    """One change per message, all sent without waiting."""
    return [outcome for outcomes in await record(api, *([c] for c in changes)) for outcome in outcomes]


def error_of(outcome: pb.ToolCallOutcome) -> tuple[int, str, list[str]]:
    """(code, ErrorInfo reason, violated fields) of a refused change."""
    assert outcome.WhichOneof("result") == "error", outcome
    status: status_pb2.Status = outcome.error
    reason, fields = "", []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            assert info.domain == DOMAIN
            reason = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    assert status.message
    return status.code, reason, fields


async def test_many_in_flight_answered_in_order_as_the_unary_rpcs_would(api: Api) -> None:
    eid, (a, b) = await running_agents(api, 2)
    # 40 starts in messages of 1 to 9 changes, all sent before any answer is read.
    changes = [start(a if i % 2 else b, "Edit", file=f"f{i}") for i in range(40)]
    messages = [changes[n * (n - 1) // 2 : n * (n + 1) // 2] for n in range(1, 10)]
    answers = await record(api, *messages)
    assert [len(outcomes) for outcomes in answers] == [len(m) for m in messages]
    started = [outcome for outcomes in answers for outcome in outcomes]
    assert [r.WhichOneof("result") for r in started] == ["tool_call"] * 40
    assert [r.tool_call.input["file"] for r in started] == [f"f{i}" for i in range(40)]
    assert all(r.tool_call.status == "running" for r in started)
    ids = [r.tool_call.id for r in started]
    assert len(set(ids)) == 40

    # Completions and failures, each answered once committed: a read sees them.
    finished = await record_one_by_one(
        api, [complete(t, f"out {i}") if i % 4 else fail(t, f"err {i}") for i, t in enumerate(ids)]
    )
    for i, (t, r) in enumerate(zip(ids, finished, strict=True)):
        stored = (await api.tools.GetToolCall(pb.GetToolCallRequest(tool_call_id=t))).tool_call
        assert r.tool_call == stored
        if i % 4:
            assert (stored.status, stored.output_inline) == ("completed", f"out {i}")
            assert stored.output_size_bytes == len(f"out {i}")
        else:
            assert (stored.status, stored.error, stored.HasField("duration_ms")) == (
                "failed",
                f"err {i}",
                False,
            )

    execution = (await api.executions.GetExecution(pb.GetExecutionRequest(execution_id=eid))).execution
    assert execution.total_tool_calls == 40
    counts = [
        (await api.agents.GetAgent(pb.GetAgentRequest(agent_id=x))).agent.tool_calls_count for x in (a, b)
    ]
    assert counts == [20, 20]


async def test_a_refused_change_gets_its_error_writes_nothing_and_the_rest_goes_on(api: Api) -> None:
    eid, (agent,) = await running_agents(api, 1)
    tool = (await record(api, [start(agent)]))[0][0].tool_call.id
    done_agent = (await api.agents.StartAgent(pb.StartAgentRequest(execution_id=eid))).agent.id
    await api.agents.CompleteAgent(pb.CompleteAgentRequest(agent_id=done_agent))
    before = await log_bytes(api)

    refused = [
        (pb.ToolCallChange(), (code_pb2.INVALID_ARGUMENT, "MISSING_FIELD", ["action"])),
        (start(""), (code_pb2.INVALID_ARGUMENT, "MISSING_FIELD", ["start.agent_id"])),
        (start(agent, "Edit", bad="\x00"), (code_pb2.INVALID_ARGUMENT, "INVALID_ARGUMENT", ["input.bad"])),
        (start("nope"), (code_pb2.NOT_FOUND, "AGENT_NOT_FOUND", [])),
        (start(done_agent), (code_pb2.FAILED_PRECONDITION, "AGENT_NOT_RUNNING", [])),
        (complete("nope"), (code_pb2.NOT_FOUND, "TOOL_CALL_NOT_FOUND", [])),
        (complete(tool, "x" * (CAP + 1)), (code_pb2.INVALID_ARGUMENT, "OUTPUT_TOO_LARGE", ["output"])),
        (fail(tool, ""), (code_pb2.INVALID_ARGUMENT, "MISSING_FIELD", ["fail.error"])),
    ]
    changes = [change for change, _ in refused]
    for outcomes in (await record(api, changes))[0], await record_one_by_one(api, changes):
        assert [error_of(r) for r in outcomes] == [expected for _, expected in refused]
    assert await log_bytes(api) == before

    # Changes apply in order, within one message and across messages sent
    # without waiting: the second finish of a tool call finds it finished.
    for messages in ([complete(tool, "done"), fail(tool), start(agent)],), ([fail(tool)], [complete(tool)]):
        outcomes = [o for answer in await record(api, *messages) for o in answer]
        if len(outcomes) == 3:
            assert outcomes[0].tool_call.status == "completed"
            assert outcomes[2].tool_call.status == "running"
        assert error_of(outcomes[1])[:2] == (code_pb2.FAILED_PRECONDITION, "TOOL_CALL_NOT_RUNNING")


async def test_empty_streams_and_messages_are_answered_with_nothing(api: Api) -> None:
    assert await record(api) == []
    assert await record(api, [], []) == [[], []]


async def test_too_many_changes_in_one_message_end_the_stream(api: Api) -> None:
    _, (agent,) = await running_agents(api, 1)
    before = await log_bytes(api)
    call = api.tools.RecordToolCalls()
    await call.write(pb.RecordToolCallsRequest(changes=[start(agent)] * 501))
    f = await failure(call.read())
    assert_reason(f, grpc.StatusCode.INVALID_ARGUMENT, "TOO_MANY_CHANGES")
    assert [field for field, _ in f.violations] == ["changes"]
    assert await log_bytes(api) == before


async def test_python_client_recorder(server: Server) -> None:
    async with AsyncClient(server.grpc_target) as client:
        await client.executions.start("recorder")
        agent = await client.agents.start("record tools", "sonnet")
        async with client.tools.recorder() as recorder:

            async def one(i: int) -> str:
                tool_id = await recorder.start(agent, "Read", {"file": f"src/{i}.py"})
                done = await recorder.complete(tool_id, f"read {i}")
                assert (done.id, done.status, done.output_inline) == (tool_id, "completed", f"read {i}")
                return tool_id

            ids = await asyncio.gather(*(one(i) for i in range(25)))
            with pytest.raises(NotFoundError) as not_found:
                await recorder.complete("nope", "x")
            assert not_found.value.reason == "TOOL_CALL_NOT_FOUND"
            with pytest.raises(FailedPreconditionError):
                await recorder.fail(ids[0], "late")
            with pytest.raises(InvalidArgumentError) as too_large:
                await recorder.complete(await recorder.start(agent, "Bash"), "x" * (CAP + 1))
            assert too_large.value.reason == "OUTPUT_TOO_LARGE"
            failed = await recorder.fail(await recorder.start(agent, "Bash"), "exit 1")
            assert (failed.status, failed.error) == ("failed", "exit 1")
        stored = {t.id: t.status for t in await client.tools.list(agent)}
        assert len(stored) == 27 and all(stored[t] == "completed" for t in ids)
        assert (await client.agents.get(agent)).tool_calls_count == 27


async def test_python_client_recorder_splits_what_is_ready_into_messages_the_server_accepts(
    server: Server,
) -> None:
    assert MAX_CHANGES == executions_api.MAX_CHANGES  # the client splits at the server's bound
    async with AsyncClient(server.grpc_target) as client:
        await client.executions.start("recorder")
        agent = await client.agents.start("many at once", "sonnet")
        async with client.tools.recorder() as recorder:
            # All queued before the recorder sends: more than one message may carry.
            ids = await asyncio.gather(*(recorder.start(agent, "Read") for _ in range(MAX_CHANGES + 20)))
        assert len(set(ids)) == MAX_CHANGES + 20
        assert (await client.agents.get(agent)).tool_calls_count == MAX_CHANGES + 20
        with pytest.raises(RuntimeError):  # closed with the `async with`
            await recorder.start(agent, "Read")


async def test_a_stream_its_client_cancels_leaves_consistent_records(api: Api) -> None:
    eid, (agent,) = await running_agents(api, 1)
    call = api.tools.RecordToolCalls()
    for _ in range(20):
        await call.write(pb.RecordToolCallsRequest(changes=[start(agent)] * 10))
    call.cancel()
    # Whatever was read before the cancel is written whole; the server goes on.
    after = (await record(api, [start(agent)]))[0][0].tool_call
    seen: tuple[int, int] | None = None
    for _ in range(100):  # until the cancelled stream's last writes have committed
        listed = (await api.tools.ListToolCalls(pb.ListToolCallsRequest(agent_id=agent))).tool_calls
        execution = (await api.executions.GetExecution(pb.GetExecutionRequest(execution_id=eid))).execution
        if seen == (now := (len(listed), execution.total_tool_calls)):
            break
        seen = now
        await asyncio.sleep(0.02)
    assert after.id in {t.id for t in listed}
    assert execution.total_tool_calls == len(listed)
