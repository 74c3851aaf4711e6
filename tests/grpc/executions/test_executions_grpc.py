"""The agents API (seed 001) through the generated gRPC stubs: the messages
(presence of optional fields, Timestamps, Struct values), the error codes
with their google.rpc details, and that refused calls write nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from agentplane.v1 import executions_pb2 as pb
from google.protobuf import json_format, struct_pb2

from tests.grpc.executions.support import CAP, Api, log_bytes
from tests.grpc.test_runtime_grpc import assert_reason, failure


def value(v: Any) -> struct_pb2.Value:
    return json_format.ParseDict(v, struct_pb2.Value())


def plain(msg: Any) -> Any:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


async def test_seed_flow(api: Api) -> None:
    ex = (await api.executions.StartExecution(pb.StartExecutionRequest(name="demo"))).execution
    assert (ex.name, ex.status, ex.HasField("file_path"), ex.HasField("result")) == (
        "demo",
        "running",
        False,
        False,
    )
    assert ex.HasField("config") and plain(ex.config) == {}
    assert ex.started_at == ex.created_at and ex.created_at.seconds > 0 and not ex.HasField("completed_at")

    request = pb.StartAgentRequest(
        execution_id=ex.id,
        prompt="Implement the feature",
        model="sonnet",
        system_prompt="You are a senior engineer",
    )
    ag = (await api.agents.StartAgent(request)).agent
    assert (ag.execution_id, ag.status, ag.model, ag.tool_calls_count) == (ex.id, "running", "sonnet", 0)
    for name in ("result", "error", "tokens_input", "tokens_output", "duration_ms", "phase_id", "log_path"):
        assert not ag.HasField(name), name
    assert not ag.HasField("result_structured") and not ag.HasField("stream_summary")
    current = await api.agents.GetCurrentAgent(pb.GetCurrentAgentRequest(execution_id=ex.id))
    assert current.agent == ag

    tool = (
        await api.tools.StartToolCall(
            pb.StartToolCallRequest(agent_id=ag.id, tool_name="Edit", input=value({"file": "src/main.ts"}))
        )
    ).tool_call
    assert (tool.agent_id, tool.execution_id, plain(tool.input)) == (ag.id, ex.id, {"file": "src/main.ts"})
    done_tool = (
        await api.tools.CompleteToolCall(
            pb.CompleteToolCallRequest(tool_call_id=tool.id, output="x" * 1500, summary="1500 x")
        )
    ).tool_call
    assert not done_tool.HasField("output_inline")
    assert (done_tool.output_summary, done_tool.output_size_bytes, done_tool.status) == (
        "1500 x",
        1500,
        "completed",
    )
    assert done_tool.HasField("duration_ms") and done_tool.HasField("completed_at")
    output = await api.tools.GetToolCallOutput(pb.GetToolCallOutputRequest(tool_call_id=tool.id))
    assert output.output == "x" * 1500

    complete = pb.CompleteAgentRequest(
        agent_id=ag.id,
        result="Feature implemented",
        result_structured=value({"success": True, "files": 3}),
        tokens=pb.AgentTokens(input=1000, output=500),
    )
    done = (await api.agents.CompleteAgent(complete)).agent
    assert (done.status, done.result, done.tokens_input, done.tokens_output, done.tool_calls_count) == (
        "completed",
        "Feature implemented",
        1000,
        500,
        1,
    )
    assert plain(done.result_structured) == {"success": True, "files": 3.0}
    listed = await api.agents.ListAgents(pb.ListAgentsRequest(execution_id=ex.id))
    assert list(listed.agents) == [done]
    assert not (await api.agents.GetCurrentAgent(pb.GetCurrentAgentRequest(execution_id=ex.id))).HasField(
        "agent"
    )
    got = (await api.executions.GetExecution(pb.GetExecutionRequest(execution_id=ex.id))).execution
    assert (got.total_agents, got.total_tool_calls, got.total_tokens_used) == (1, 1, 1500)
    tools = await api.tools.ListToolCalls(pb.ListToolCallsRequest(agent_id=ag.id))
    assert list(tools.tool_calls) == [done_tool]


Call = Callable[[Api, dict[str, str]], Awaitable[Any]]
# (case, call, code, reason, fields)
FAILURES: list[tuple[str, Call, grpc.StatusCode, str, list[str]]] = [
    (
        "missing agent_id",
        lambda a, ids: a.agents.CompleteAgent(pb.CompleteAgentRequest(result="r")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "MISSING_FIELD",
        ["agent_id"],
    ),
    (
        "missing stream summary",
        lambda a, ids: a.agents.SetAgentStreamSummary(pb.SetAgentStreamSummaryRequest(agent_id=ids["agent"])),
        grpc.StatusCode.INVALID_ARGUMENT,
        "MISSING_FIELD",
        ["stream_summary"],
    ),
    (
        "unknown agent",
        lambda a, ids: a.agents.CompleteAgent(pb.CompleteAgentRequest(agent_id="nope")),
        grpc.StatusCode.NOT_FOUND,
        "AGENT_NOT_FOUND",
        [],
    ),
    (
        "unknown tool call",
        lambda a, ids: a.tools.FailToolCall(pb.FailToolCallRequest(tool_call_id="nope", error="e")),
        grpc.StatusCode.NOT_FOUND,
        "TOOL_CALL_NOT_FOUND",
        [],
    ),
    (
        "unknown execution",
        lambda a, ids: a.agents.GetCurrentAgent(pb.GetCurrentAgentRequest(execution_id="nope")),
        grpc.StatusCode.NOT_FOUND,
        "EXECUTION_NOT_FOUND",
        [],
    ),
    (
        "completed agent",
        lambda a, ids: a.agents.CompleteAgent(
            pb.CompleteAgentRequest(agent_id=ids["done_agent"], result="again")
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "AGENT_NOT_RUNNING",
        [],
    ),
    (
        "negative tokens",
        lambda a, ids: a.agents.CompleteAgent(
            pb.CompleteAgentRequest(agent_id=ids["agent"], tokens=pb.AgentTokens(input=5, output=-1))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        ["tokens.output"],
    ),
    (
        "structured result not an object",
        lambda a, ids: a.agents.CompleteAgent(
            pb.CompleteAgentRequest(agent_id=ids["agent"], result_structured=value([1]))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        ["result_structured"],
    ),
    (
        "tool input not an object",
        lambda a, ids: a.tools.StartToolCall(
            pb.StartToolCallRequest(agent_id=ids["agent"], tool_name="Edit", input=value("x"))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        ["input"],
    ),
    (
        "output past the cap",
        lambda a, ids: a.tools.CompleteToolCall(
            pb.CompleteToolCallRequest(tool_call_id=ids["tool"], output="é" * (CAP // 2 + 1))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "OUTPUT_TOO_LARGE",
        ["output"],
    ),
    (
        "limit out of range",
        lambda a, ids: a.executions.ListExecutions(pb.ListExecutionsRequest(limit=-3)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        ["limit"],
    ),
]


async def test_failures_carry_code_reason_and_fields(api: Api, subtests: pytest.Subtests) -> None:
    eid = (await api.executions.StartExecution(pb.StartExecutionRequest())).execution.id
    done_agent = (await api.agents.StartAgent(pb.StartAgentRequest(execution_id=eid))).agent.id
    await api.agents.CompleteAgent(pb.CompleteAgentRequest(agent_id=done_agent))
    agent = (await api.agents.StartAgent(pb.StartAgentRequest(execution_id=eid))).agent.id
    tool = (
        await api.tools.StartToolCall(pb.StartToolCallRequest(agent_id=agent, tool_name="Bash"))
    ).tool_call.id
    ids = {"agent": agent, "done_agent": done_agent, "tool": tool}
    before = await log_bytes(api)
    for case, call, code, reason, fields in FAILURES:
        with subtests.test(case):
            f = await failure(call(api, ids))
            assert_reason(f, code, reason)
            assert [field for field, _ in f.violations] == fields
            assert await log_bytes(api) == before
