"""`client.executions`: agentplane.v1.ExecutionService, sync and async.

As the seed's library has one active execution per database handle, a
client has a current execution: `start` makes the new (or resumed) one
current, and completing, failing or cancelling it through the client clears
it. `client.agents` and `client.tools` start agents and tool calls in it.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

from agentplane.v1 import executions_pb2 as pb

from agentplane_client._calls import AsyncCalls, SyncCalls
from agentplane_client._records import CurrentExecution, Execution, execution, json_value

if TYPE_CHECKING:
    from agentplane.v1.executions_pb2_grpc import ExecutionServiceAsyncStub, ExecutionServiceStub

DEFAULT_LIMIT = 20


def _start_request(
    name: str | None, file_path: str | None, config: Any, execution_id: str | None
) -> pb.StartExecutionRequest:
    return pb.StartExecutionRequest(
        name=name,
        file_path=file_path,
        config=None if config is None else json_value(config, "config"),
        execution_id=execution_id,
    )


def _complete_request(execution_id: str, result: Any) -> pb.CompleteExecutionRequest:
    return pb.CompleteExecutionRequest(
        execution_id=execution_id, result=None if result is None else json_value(result, "result")
    )


class Executions:
    """Orchestrator runs (`client.executions`)."""

    def __init__(self, stub: ExecutionServiceStub, calls: SyncCalls, current: CurrentExecution) -> None:
        self._stub = stub
        self._calls = calls
        self._current = current

    @property
    def current_id(self) -> str | None:
        """The id of the client's current execution, or None."""
        return self._current.id

    def start(
        self,
        name: str | None = None,
        file_path: str | None = None,
        config: Any = None,
        *,
        execution_id: str | None = None,
    ) -> str:
        """Start a running execution and make it the client's current one; returns its id.

        `config` is a JSON object. With `execution_id` naming an existing
        execution, that one is resumed (running again, new `started_at`,
        `error` and `completed_at` cleared) instead.
        """
        request = _start_request(name, file_path, config, execution_id)
        started = self._calls.unary(self._stub.StartExecution, request).execution.id
        self._current.id = started
        return started

    def current(self) -> Execution | None:
        """The client's current execution, or None if it has none."""
        return None if self._current.id is None else self.get(self._current.id)

    def get(self, execution_id: str) -> Execution:
        """One execution; NotFoundError (reason "EXECUTION_NOT_FOUND") if unknown."""
        request = pb.GetExecutionRequest(execution_id=execution_id)
        return execution(self._calls.unary(self._stub.GetExecution, request).execution)

    def list(self, limit: int = DEFAULT_LIMIT) -> builtins.list[Execution]:
        """The newest executions first (at most `limit`, 1 to 1000)."""
        response = self._calls.unary(self._stub.ListExecutions, pb.ListExecutionsRequest(limit=limit))
        return [execution(e) for e in response.executions]

    def complete(self, execution_id: str, result: Any = None) -> Execution:
        """Mark a running execution completed with `result` (any JSON value).

        Raises FailedPreconditionError (reason "EXECUTION_NOT_RUNNING") if it
        has already finished, NotFoundError if it is unknown.
        """
        request = _complete_request(execution_id, result)
        done = execution(self._calls.unary(self._stub.CompleteExecution, request).execution)
        self._current.clear(execution_id)
        return done

    def fail(self, execution_id: str, error: str) -> Execution:
        """Mark a running execution failed (see `complete` for the errors)."""
        request = pb.FailExecutionRequest(execution_id=execution_id, error=error)
        done = execution(self._calls.unary(self._stub.FailExecution, request).execution)
        self._current.clear(execution_id)
        return done

    def cancel(self, execution_id: str) -> Execution:
        """Mark a running execution cancelled (see `complete` for the errors)."""
        request = pb.CancelExecutionRequest(execution_id=execution_id)
        done = execution(self._calls.unary(self._stub.CancelExecution, request).execution)
        self._current.clear(execution_id)
        return done


class AsyncExecutions:
    """Orchestrator runs (`client.executions` of AsyncClient); see `Executions` for the semantics."""

    def __init__(self, stub: ExecutionServiceAsyncStub, calls: AsyncCalls, current: CurrentExecution) -> None:
        self._stub = stub
        self._calls = calls
        self._current = current

    @property
    def current_id(self) -> str | None:
        """The id of the client's current execution, or None."""
        return self._current.id

    async def start(
        self,
        name: str | None = None,
        file_path: str | None = None,
        config: Any = None,
        *,
        execution_id: str | None = None,
    ) -> str:
        """Start (or resume) an execution and make it the client's current one; returns its id."""
        request = _start_request(name, file_path, config, execution_id)
        started = (await self._calls.unary(self._stub.StartExecution, request)).execution.id
        self._current.id = started
        return started

    async def current(self) -> Execution | None:
        """The client's current execution, or None if it has none."""
        return None if self._current.id is None else await self.get(self._current.id)

    async def get(self, execution_id: str) -> Execution:
        """One execution; NotFoundError (reason "EXECUTION_NOT_FOUND") if unknown."""
        request = pb.GetExecutionRequest(execution_id=execution_id)
        return execution((await self._calls.unary(self._stub.GetExecution, request)).execution)

    async def list(self, limit: int = DEFAULT_LIMIT) -> builtins.list[Execution]:
        """The newest executions first (at most `limit`, 1 to 1000)."""
        response = await self._calls.unary(self._stub.ListExecutions, pb.ListExecutionsRequest(limit=limit))
        return [execution(e) for e in response.executions]

    async def complete(self, execution_id: str, result: Any = None) -> Execution:
        """Mark a running execution completed with `result` (any JSON value)."""
        request = _complete_request(execution_id, result)
        done = execution((await self._calls.unary(self._stub.CompleteExecution, request)).execution)
        self._current.clear(execution_id)
        return done

    async def fail(self, execution_id: str, error: str) -> Execution:
        """Mark a running execution failed."""
        request = pb.FailExecutionRequest(execution_id=execution_id, error=error)
        done = execution((await self._calls.unary(self._stub.FailExecution, request)).execution)
        self._current.clear(execution_id)
        return done

    async def cancel(self, execution_id: str) -> Execution:
        """Mark a running execution cancelled."""
        request = pb.CancelExecutionRequest(execution_id=execution_id)
        done = execution((await self._calls.unary(self._stub.CancelExecution, request)).execution)
        self._current.clear(execution_id)
        return done
