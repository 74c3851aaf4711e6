"""The `tool-calls` scenario: StartToolCall + CompleteToolCall pairs over gRPC.

Each of `concurrency` clients has its own channel and its own agent in one
shared execution, and records tool calls back to back (start, then complete
with a small inline output). The rate counts completed tool calls; the
latencies are those of a whole pair. After the run the database must hold
exactly the acknowledged tool calls, completed, with their log entries, and
the counters must agree. Server CPU is reported per tool call (two RPCs).

The `tool-calls-stream` scenario records the same pairs over RecordToolCalls:
each client keeps WINDOW tool calls in flight on one stream; whenever an
answer arrives it sends, in one message, the completions of the tool calls
whose start was acknowledged and new starts for those completed. Latencies
are from a start's send to its completion's acknowledgement.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import grpc
from agentplane.v1 import executions_pb2 as pb
from agentplane.v1 import executions_pb2_grpc as rpc

from tests.bench.loadgen import Result

if TYPE_CHECKING:
    from tests.bench.run import Figures, ServerProcess

OUTPUT = "Edited src/main.ts: added 15 lines\n" * 4  # 140 bytes: stored inline
# Tool calls each stream client keeps in flight.
WINDOW = 16


async def _setup(target: str, concurrency: int) -> tuple[str, list[str]]:
    """An execution, and one agent in it per client."""
    async with grpc.aio.insecure_channel(target) as setup:
        execution = (
            await rpc.ExecutionServiceStub(setup).StartExecution(pb.StartExecutionRequest(name="bench"))
        ).execution.id
        agents = rpc.AgentServiceStub(setup)
        agent_ids = [
            (
                await agents.StartAgent(pb.StartAgentRequest(execution_id=execution, prompt=f"bench {i}"))
            ).agent.id
            for i in range(concurrency)
        ]
    return execution, agent_ids


async def _drive(target: str, total: int, concurrency: int) -> tuple[Result, str]:
    result = Result()
    counter = iter(range(total))
    execution, agent_ids = await _setup(target, concurrency)

    async def worker(agent_id: str) -> None:
        async with grpc.aio.insecure_channel(target) as channel:
            tools = rpc.ToolCallServiceStub(channel)
            start = pb.StartToolCallRequest(agent_id=agent_id, tool_name="Edit")
            start.input.struct_value.update({"file": "src/main.ts", "changes": "..."})
            for _ in counter:
                began = time.perf_counter()
                try:
                    started = await tools.StartToolCall(start)
                    await tools.CompleteToolCall(
                        pb.CompleteToolCallRequest(tool_call_id=started.tool_call.id, output=OUTPUT)
                    )
                except grpc.aio.AioRpcError as err:
                    result.failed += 1
                    result.statuses[err.code().value[0]] = result.statuses.get(err.code().value[0], 0) + 1
                    continue
                result.latencies.append(time.perf_counter() - began)
                result.ok += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(a) for a in agent_ids))
    result.seconds = time.perf_counter() - began
    return result, execution


async def _drive_stream(target: str, total: int, concurrency: int) -> tuple[Result, str]:
    result = Result()
    counter = iter(range(total))
    execution, agent_ids = await _setup(target, concurrency)

    async def worker(agent_id: str) -> None:
        start = pb.ToolCallChange(start=pb.StartToolCallRequest(agent_id=agent_id, tool_name="Edit"))
        start.start.input.struct_value.update({"file": "src/main.ts", "changes": "..."})
        # What each message sent carries, in order: (is a start, when its tool call began).
        sent: deque[list[tuple[bool, float]]] = deque()
        ready: list[pb.ToolCallChange] = []
        kinds: list[tuple[bool, float]] = []

        def add_start() -> None:
            if next(counter, None) is not None:
                ready.append(start)
                kinds.append((True, time.perf_counter()))

        async with grpc.aio.insecure_channel(target) as channel:
            call = rpc.ToolCallServiceStub(channel).RecordToolCalls()
            for _ in range(WINDOW):
                add_start()
            while ready or sent:
                if ready:  # whatever is ready goes in one message
                    await call.write(pb.RecordToolCallsRequest(changes=ready))
                    sent.append(kinds)
                    ready, kinds = [], []
                response = await call.read()
                for outcome, (is_start, began) in zip(response.outcomes, sent.popleft(), strict=True):
                    if outcome.HasField("error"):
                        result.failed += 1
                        result.statuses[outcome.error.code] = result.statuses.get(outcome.error.code, 0) + 1
                        add_start()
                    elif is_start:
                        ready.append(
                            pb.ToolCallChange(
                                complete=pb.CompleteToolCallRequest(
                                    tool_call_id=outcome.tool_call.id, output=OUTPUT
                                )
                            )
                        )
                        kinds.append((False, began))
                    else:
                        result.latencies.append(time.perf_counter() - began)
                        result.ok += 1
                        add_start()
            await call.done_writing()

    began = time.perf_counter()
    await asyncio.gather(*(worker(a) for a in agent_ids))
    result.seconds = time.perf_counter() - began
    return result, execution


def _check_stored(db: str, acknowledged: int, execution_id: str) -> None:
    """Every acknowledged tool call is stored, completed, logged and counted."""
    with sqlite3.connect(db) as conn:
        completed = conn.execute("SELECT count(*) FROM tool_calls WHERE status = 'completed'").fetchone()[0]
        logged = conn.execute(
            "SELECT count(*) FROM log_entries WHERE type = 'tool_call.completed'"
        ).fetchone()[0]
        counted = conn.execute(
            "SELECT total_tool_calls FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()[0]
        per_agent = conn.execute("SELECT sum(tool_calls_count) FROM agents").fetchone()[0]
    if not completed == logged == acknowledged or counted < acknowledged or per_agent != counted:
        raise RuntimeError(
            f"{acknowledged} tool calls acknowledged, but {completed} completed, {logged} logged, "
            f"{counted} counted in the execution and {per_agent} in the agents"
        )


def run(srv: ServerProcess, total: int, concurrency: int) -> Figures:
    """The unary scenario, as tests.bench.run calls it."""
    return _measure(srv, _drive(f"127.0.0.1:{srv.grpc_port}", total, concurrency))


def run_stream(srv: ServerProcess, total: int, concurrency: int) -> Figures:
    """The stream scenario, as tests.bench.run calls it."""
    return _measure(srv, _drive_stream(f"127.0.0.1:{srv.grpc_port}", total, concurrency))


def _measure(srv: ServerProcess, drive: Coroutine[Any, Any, tuple[Result, str]]) -> Figures:
    # tests.bench.run imports this module to register the scenario, so its
    # types are imported late (under `python -m` this loads a second copy of
    # it, which only defines them).
    from tests.bench.run import Figures

    cpu = srv.cpu_seconds()
    result, execution_id = asyncio.run(drive)
    cpu = srv.cpu_seconds() - cpu
    if result.failed:
        raise RuntimeError(f"{result.failed} tool calls failed: {result.statuses}")
    _check_stored(str(srv.db_path), result.ok, execution_id)
    p50, p99 = result.percentile(50) * 1e3, result.percentile(99) * 1e3
    # CPU per tool call: a start and a completion (the setup's few calls are negligible).
    return Figures(result.rate, p50, p99, "tool calls/s", cpu / result.ok * 1e6)
