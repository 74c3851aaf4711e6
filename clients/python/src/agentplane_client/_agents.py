"""`client.agents`: agentplane.v1.AgentService, sync and async, read like
the seed's `db.agents`:

    agent_id = client.agents.start("Implement the feature", "sonnet", "You are a senior engineer")
    client.agents.complete(agent_id, "Feature implemented", {"success": True, "files": 3},
                           {"input": 1000, "output": 500})

`start` and `current` work in the client's current execution
(`client.executions.start`); without one, `start` raises
FailedPreconditionError("No active execution") before any call.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agentplane.v1 import executions_pb2 as pb

from agentplane_client._calls import AsyncCalls, SyncCalls
from agentplane_client._records import (
    Agent,
    CurrentExecution,
    StreamSummary,
    agent,
    agent_tokens,
    json_value,
    stream_summary,
)

if TYPE_CHECKING:
    from agentplane.v1.executions_pb2_grpc import AgentServiceAsyncStub, AgentServiceStub

DEFAULT_MODEL = "sonnet"


def _start_request(
    current: CurrentExecution,
    prompt: str,
    model: str,
    system_prompt: str | None,
    log_path: str | None,
    phase_id: str | None,
) -> pb.StartAgentRequest:
    return pb.StartAgentRequest(
        execution_id=current.require(),
        prompt=prompt,
        model=model,
        system_prompt=system_prompt,
        log_path=log_path,
        phase_id=phase_id,
    )


def _complete_request(
    agent_id: str, result: str | None, structured: Mapping[str, Any] | None, tokens: Mapping[str, int] | None
) -> pb.CompleteAgentRequest:
    return pb.CompleteAgentRequest(
        agent_id=agent_id,
        result=result,
        result_structured=None if structured is None else json_value(structured, "structured"),
        tokens=agent_tokens(tokens),
    )


def _summary_request(
    agent_id: str, summary: StreamSummary | Mapping[str, int]
) -> pb.SetAgentStreamSummaryRequest:
    return pb.SetAgentStreamSummaryRequest(agent_id=agent_id, stream_summary=stream_summary(summary))


class Agents:
    """Claude invocations in executions (`client.agents`)."""

    def __init__(self, stub: AgentServiceStub, calls: SyncCalls, current: CurrentExecution) -> None:
        self._stub = stub
        self._calls = calls
        self._current = current

    def start(
        self,
        prompt: str,
        model: str = DEFAULT_MODEL,
        system_prompt: str | None = None,
        log_path: str | None = None,
        *,
        phase_id: str | None = None,
    ) -> str:
        """Record a running agent in the current execution; returns its id.

        It becomes the execution's current agent. Raises
        FailedPreconditionError: "No active execution" (no call made) when
        the client has no current execution, reason "EXECUTION_NOT_RUNNING"
        when that execution has finished.
        """
        request = _start_request(self._current, prompt, model, system_prompt, log_path, phase_id)
        return self._calls.unary(self._stub.StartAgent, request).agent.id

    def complete(
        self,
        agent_id: str,
        result: str | None,
        structured: Mapping[str, Any] | None = None,
        tokens: Mapping[str, int] | None = None,
    ) -> Agent:
        """Mark a running agent completed; returns it.

        `structured` (a JSON object) is stored as `result_structured`;
        `tokens` is `{"input": ..., "output": ...}` and is added to the
        execution's `total_tokens_used` (omitted: the agent's token counts
        are None). Raises NotFoundError for an unknown agent,
        FailedPreconditionError (reason "AGENT_NOT_RUNNING") if it has
        already completed or failed, InvalidArgumentError for negative tokens.
        """
        request = _complete_request(agent_id, result, structured, tokens)
        return agent(self._calls.unary(self._stub.CompleteAgent, request).agent)

    def fail(self, agent_id: str, error: str) -> Agent:
        """Mark a running agent failed; returns it (errors as `complete`)."""
        request = pb.FailAgentRequest(agent_id=agent_id, error=error)
        return agent(self._calls.unary(self._stub.FailAgent, request).agent)

    def current(self) -> Agent | None:
        """The current execution's most recently started agent until it
        completes or fails; None without one (or without a current execution)."""
        if self._current.id is None:
            return None
        request = pb.GetCurrentAgentRequest(execution_id=self._current.id)
        response = self._calls.unary(self._stub.GetCurrentAgent, request)
        return agent(response.agent) if response.HasField("agent") else None

    def list(self, execution_id: str) -> builtins.list[Agent]:
        """An execution's agents, oldest first; NotFoundError for an unknown execution."""
        request = pb.ListAgentsRequest(execution_id=execution_id)
        return [agent(a) for a in self._calls.unary(self._stub.ListAgents, request).agents]

    def get(self, agent_id: str) -> Agent:
        """One agent; NotFoundError (reason "AGENT_NOT_FOUND") if unknown."""
        return agent(self._calls.unary(self._stub.GetAgent, pb.GetAgentRequest(agent_id=agent_id)).agent)

    def set_stream_summary(self, agent_id: str, summary: StreamSummary | Mapping[str, int]) -> Agent:
        """Replace an agent's stream summary: a StreamSummary, or the seed's
        `{"textBlocks": ..., "reasoningBlocks": ..., "toolCalls": ...,
        "toolResults": ..., "errors": ...}`."""
        request = _summary_request(agent_id, summary)
        return agent(self._calls.unary(self._stub.SetAgentStreamSummary, request).agent)


class AsyncAgents:
    """Claude invocations in executions (`client.agents` of AsyncClient); see `Agents` for the semantics."""

    def __init__(self, stub: AgentServiceAsyncStub, calls: AsyncCalls, current: CurrentExecution) -> None:
        self._stub = stub
        self._calls = calls
        self._current = current

    async def start(
        self,
        prompt: str,
        model: str = DEFAULT_MODEL,
        system_prompt: str | None = None,
        log_path: str | None = None,
        *,
        phase_id: str | None = None,
    ) -> str:
        """Record a running agent in the current execution; returns its id."""
        request = _start_request(self._current, prompt, model, system_prompt, log_path, phase_id)
        return (await self._calls.unary(self._stub.StartAgent, request)).agent.id

    async def complete(
        self,
        agent_id: str,
        result: str | None,
        structured: Mapping[str, Any] | None = None,
        tokens: Mapping[str, int] | None = None,
    ) -> Agent:
        """Mark a running agent completed; returns it."""
        request = _complete_request(agent_id, result, structured, tokens)
        return agent((await self._calls.unary(self._stub.CompleteAgent, request)).agent)

    async def fail(self, agent_id: str, error: str) -> Agent:
        """Mark a running agent failed; returns it."""
        request = pb.FailAgentRequest(agent_id=agent_id, error=error)
        return agent((await self._calls.unary(self._stub.FailAgent, request)).agent)

    async def current(self) -> Agent | None:
        """The current execution's current agent, or None."""
        if self._current.id is None:
            return None
        request = pb.GetCurrentAgentRequest(execution_id=self._current.id)
        response = await self._calls.unary(self._stub.GetCurrentAgent, request)
        return agent(response.agent) if response.HasField("agent") else None

    async def list(self, execution_id: str) -> builtins.list[Agent]:
        """An execution's agents, oldest first."""
        request = pb.ListAgentsRequest(execution_id=execution_id)
        return [agent(a) for a in (await self._calls.unary(self._stub.ListAgents, request)).agents]

    async def get(self, agent_id: str) -> Agent:
        """One agent."""
        request = pb.GetAgentRequest(agent_id=agent_id)
        return agent((await self._calls.unary(self._stub.GetAgent, request)).agent)

    async def set_stream_summary(self, agent_id: str, summary: StreamSummary | Mapping[str, int]) -> Agent:
        """Replace an agent's stream summary."""
        request = _summary_request(agent_id, summary)
        return agent((await self._calls.unary(self._stub.SetAgentStreamSummary, request)).agent)
