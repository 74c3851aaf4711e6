"""The seed 001 examples through the Python client, against a real server:
`client.executions`, `client.agents` and `client.tools`, synchronous (run in
a thread, the server being on the test's event loop) and asynchronous."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
import pytest
from agentplane_client import (
    Agent,
    AsyncClient,
    Execution,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    StreamSummary,
    ToolCall,
)

from tests.conftest import Server
from tests.grpc.test_client import AnyClient, InThread, open_client


@pytest.fixture(params=["sync", "async"])
async def client(request: pytest.FixtureRequest, server: Server) -> AsyncIterator[AnyClient]:
    async with open_client(request.param, server.grpc_target) as c:
        yield c


def current_id(client: AnyClient) -> str | None:
    """The client's current execution (a property, so read in place)."""
    target = client.target if isinstance(client, InThread) else client
    found: str | None = target.executions.current_id
    return found


def is_utc(value: datetime | None) -> bool:
    return (
        isinstance(value, datetime) and value.tzinfo is not None and value.utcoffset() == UTC.utcoffset(None)
    )


async def test_seed_examples(client: AnyClient) -> None:
    execution_id = await client.executions.start("Build the feature")
    assert current_id(client) == execution_id

    # const agentId = db.agents.start("Implement the feature", "sonnet", "You are a senior engineer")
    agent_id = await client.agents.start("Implement the feature", "sonnet", "You are a senior engineer")
    assert isinstance(agent_id, str)
    # const agent = db.agents.current(); agent.prompt.substring(0, 50)
    agent = await client.agents.current()
    assert isinstance(agent, Agent)
    assert (agent.id, agent.prompt[:50], agent.status, agent.execution_id) == (
        agent_id,
        "Implement the feature",
        "running",
        execution_id,
    )
    assert is_utc(agent.created_at) and agent.started_at == agent.created_at and agent.completed_at is None

    # db.tools.start(agentId, "Edit", {file: "src/main.ts", changes: "..."}); complete; list
    tool_id = await client.tools.start(agent_id, "Edit", {"file": "src/main.ts", "changes": "..."})
    done_tool = await client.tools.complete(
        tool_id, "File edited successfully", "Edited src/main.ts: added 15 lines"
    )
    assert isinstance(done_tool, ToolCall)
    assert (done_tool.output_inline, done_tool.output_summary, done_tool.output_size_bytes) == (
        "File edited successfully",
        "Edited src/main.ts: added 15 lines",
        24,
    )
    assert done_tool.input == {"file": "src/main.ts", "changes": "..."}
    assert is_utc(done_tool.completed_at) and isinstance(done_tool.duration_ms, int)
    assert await client.tools.list(agent_id) == [done_tool]
    assert await client.tools.get(tool_id) == done_tool

    # db.agents.complete(agentId, "Feature implemented", {success: true, files: 3}, {input: 1000, output: 500})
    done = await client.agents.complete(
        agent_id, "Feature implemented", {"success": True, "files": 3}, {"input": 1000, "output": 500}
    )
    assert done.result_structured == {"success": True, "files": 3}
    assert isinstance(done.result_structured["files"], int)  # not 3.0
    assert (done.status, done.result, done.tool_calls_count) == ("completed", "Feature implemented", 1)
    assert await client.agents.current() is None

    # db.agents.fail(agentId, "Timeout exceeded")
    other = await client.agents.start("Review it")
    failed = await client.agents.fail(other, "Timeout exceeded")
    assert (failed.status, failed.error, failed.duration_ms, failed.model) == (
        "failed",
        "Timeout exceeded",
        None,
        "sonnet",
    )

    # for (const agent of db.agents.list(executionId)) ...
    lines = [
        f"{a.model}: {a.status}  Tokens: {a.tokens_input or 0} in, {a.tokens_output or 0} out"
        for a in await client.agents.list(execution_id)
    ]
    assert lines == ["sonnet: completed  Tokens: 1000 in, 500 out", "sonnet: failed  Tokens: 0 in, 0 out"]

    execution = await client.executions.current()
    assert isinstance(execution, Execution)
    assert (execution.total_agents, execution.total_tool_calls, execution.total_tokens_used) == (2, 1, 1500)
    finished = await client.executions.complete(execution_id, {"merged": True})
    assert (finished.status, finished.result) == ("completed", {"merged": True}) and is_utc(
        finished.completed_at
    )
    assert current_id(client) is None
    assert await client.executions.current() is None
    assert await client.agents.current() is None
    assert [e.id for e in await client.executions.list()] == [execution_id]


async def test_no_active_execution_is_refused_before_any_call(client: AnyClient) -> None:
    for call in (client.agents.start("Implement the feature"), client.tools.start("some-agent", "Edit", {})):
        with pytest.raises(FailedPreconditionError) as caught:
            await call
        assert (caught.value.message, caught.value.reason) == ("No active execution", "NO_ACTIVE_EXECUTION")
    assert await client.executions.list() == []


async def test_resume_outputs_and_stream_summary(client: AnyClient) -> None:
    first = await client.executions.start("nightly", "main.tsx", {"retries": 2}, execution_id="nightly-1")
    assert first == "nightly-1"
    await client.executions.fail("nightly-1", "crashed")
    assert current_id(client) is None
    assert await client.executions.start(execution_id="nightly-1") == "nightly-1"  # resumed
    resumed = await client.executions.get("nightly-1")
    assert (resumed.status, resumed.error, resumed.name, resumed.config) == (
        "running",
        None,
        "nightly",
        {"retries": 2},
    )

    agent_id = await client.agents.start(
        "Read everything", "opus", log_path="/logs/a.log", phase_id="explore"
    )
    tool_id = await client.tools.start(agent_id, "Read", {"file_path": "/src/app.py"})
    big = "😀" * 300  # 1,200 bytes: not inline
    done = await client.tools.complete(tool_id, big)
    assert (done.output_inline, done.output_summary, done.output_size_bytes) == (None, "😀" * 200, 1200)
    assert await client.tools.get_output(tool_id) == big
    running = await client.tools.start(agent_id, "Bash", {"command": "ls"})
    assert await client.tools.get_output(running) is None

    summary = await client.agents.set_stream_summary(agent_id, {"textBlocks": 3, "toolCalls": 2, "errors": 1})
    assert summary.stream_summary == StreamSummary(text_blocks=3, tool_calls=2, errors=1)
    again = await client.agents.set_stream_summary(agent_id, StreamSummary(reasoning_blocks=4))
    assert again.stream_summary == StreamSummary(reasoning_blocks=4)
    got = await client.agents.get(agent_id)
    assert (got.model, got.log_path, got.phase_id, got.tool_calls_count) == (
        "opus",
        "/logs/a.log",
        "explore",
        2,
    )


async def test_errors(client: AnyClient) -> None:
    execution_id = await client.executions.start()
    agent_id = await client.agents.start("p")
    with pytest.raises(InvalidArgumentError) as bad:
        await client.agents.complete(agent_id, "r", None, {"input": -1, "output": 2})
    assert bad.value.field_violations == [("tokens.input", "must be between 0 and 9007199254740991")]
    with pytest.raises(InvalidArgumentError) as bad:
        await client.agents.complete(agent_id, "r", [1, 2])  # type: ignore[arg-type]
    assert [f for f, _ in bad.value.field_violations] == ["result_structured"]
    await client.agents.complete(agent_id, "r")
    with pytest.raises(FailedPreconditionError) as again:
        await client.agents.complete(agent_id, "r")
    assert again.value.reason == "AGENT_NOT_RUNNING" and again.value.metadata["status"] == "completed"
    with pytest.raises(NotFoundError) as missing:
        await client.tools.complete("nope", "output")
    assert (missing.value.code, missing.value.reason) == (grpc.StatusCode.NOT_FOUND, "TOOL_CALL_NOT_FOUND")
    with pytest.raises(NotFoundError):
        await client.agents.list("nope")
    with pytest.raises(ValueError, match="tokens takes the keys"):
        await client.agents.complete(agent_id, "r", None, {"inputs": 1})
    with pytest.raises(ValueError, match="unknown stream summary keys"):
        await client.agents.set_stream_summary(agent_id, {"text": 1})
    assert (await client.executions.get(execution_id)).total_tokens_used == 0


async def test_clients_keep_their_own_current_execution(server: Server) -> None:
    async with AsyncClient(server.grpc_target) as one, AsyncClient(server.grpc_target) as two:
        first = await one.executions.start("one")
        assert two.executions.current_id is None
        await two.executions.start("two")
        agent_id = await one.agents.start("p")
        assert (await one.agents.get(agent_id)).execution_id == first
