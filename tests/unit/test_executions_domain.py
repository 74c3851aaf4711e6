"""The agents API's rules (seed 001, reference smithers-agents.md), calling the
domain directly on a store (SQLite, and PostgreSQL when configured).

Upstream semantics: the inline output boundary in UTF-8 bytes, the default
summary, token roll-up into the agent's own execution, the "current agent"
pointer, the counters. Then where we are stricter than upstream, and that a
refused call writes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import Connection, select, text

from service.base.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound
from service.domain.executions import agents, executions, tool_calls
from service.domain.executions.executions import iso
from service.store.executions.queries import AgentRecord, ExecutionRecord, ToolCallRecord
from service.store.store import Store
from service.store.tables import log_entries

WS = "default"
CAP = 4096  # the output cap the tests configure


async def execution(store: Store, name: str = "run", workspace: str = WS) -> ExecutionRecord:
    return await executions.start_execution(store, workspace, name=name)


async def agent(store: Store, execution_id: str, prompt: str = "Do it", workspace: str = WS) -> AgentRecord:
    return await agents.start_agent(store, workspace, execution_id, prompt)


async def tool(store: Store, agent_id: str, name: str = "Edit", workspace: str = WS) -> ToolCallRecord:
    return await tool_calls.start_tool_call(store, workspace, agent_id, name, {"file": "src/main.ts"})


async def complete_tool(
    store: Store, tool_id: str, output: str, summary: str | None = None
) -> ToolCallRecord:
    return await tool_calls.complete_tool_call(store, WS, tool_id, output, summary, max_output_bytes=CAP)


async def everything(store: Store) -> tuple[Any, ...]:
    """Every row of the log and of the three projections, to show a refused call wrote nothing."""

    def read(conn: Connection) -> tuple[Any, ...]:
        tables = ("executions", "agents", "tool_calls")
        rows = [sorted(tuple(r) for r in conn.execute(text(f"SELECT * FROM {t}"))) for t in tables]
        log = [tuple(r) for r in conn.execute(select(log_entries).order_by(log_entries.c.seq))]
        return (*rows, log)

    return await store.read(read)


async def log_types(store: Store) -> list[str]:
    def read(conn: Connection) -> list[str]:
        return [r.type for r in conn.execute(select(log_entries.c.type).order_by(log_entries.c.seq))]

    return await store.read(read)


# ------------------------------------------------ tool output (reference §3.2)

E2, E3, E4 = "é", "€", "😀"  # 2, 3 and 4 UTF-8 bytes
LONG = "a" * 2000
# (case, output, summary given, inline?, expected summary)
OUTPUT_CASES: list[tuple[str, str, str | None, bool, str | None]] = [
    ("empty", "", None, True, None),
    ("ascii-1023", "a" * 1023, None, True, None),
    ("ascii-1024", "a" * 1024, None, False, "a" * 200),
    ("2-byte-1023", E2 * 511 + "a", None, True, None),
    ("2-byte-1024", E2 * 512, None, False, E2 * 200),
    ("3-byte-1023", E3 * 341, None, True, None),
    ("3-byte-1026", E3 * 342, None, False, E3 * 200),
    ("4-byte-1023", E4 * 255 + "abc", None, True, None),
    ("4-byte-1024", E4 * 256, None, False, E4 * 200),
    ("300-emoji-is-1200-bytes", E4 * 300, None, False, E4 * 200),
    ("given-summary-inline", "ok", "It worked", True, "It worked"),
    (
        "given-summary-large",
        LONG,
        "Edited src/main.ts: added 15 lines",
        False,
        "Edited src/main.ts: added 15 lines",
    ),
    ("empty-summary-is-given", LONG, "", False, ""),
    ("at-the-cap", "a" * CAP, None, False, "a" * 200),
]


@pytest.mark.parametrize(("case", "output", "summary", "inline", "expected_summary"), OUTPUT_CASES)
async def test_output_is_inline_below_1024_utf8_bytes(
    store: Store, case: str, output: str, summary: str | None, inline: bool, expected_summary: str | None
) -> None:
    ex = await execution(store)
    ag = await agent(store, ex.id)
    started = await tool(store, ag.id)
    done = await complete_tool(store, started.id, output, summary)
    size = len(output.encode())
    assert (size < 1024) == inline  # the table itself is right
    assert done.output_size_bytes == size
    assert done.output_inline == (output if inline else None)
    assert done.output_summary == expected_summary
    assert (done.status, done.error) == ("completed", None)
    assert done.duration_ms == (done.completed_at - done.started_at) // 1000  # type: ignore[operator]
    assert await tool_calls.get_tool_call(store, WS, started.id) == done
    # the full text stays retrievable, inline or not (upstream drops large ones)
    assert await tool_calls.get_output(store, WS, started.id) == output


async def test_get_output_while_running_or_failed_is_none(store: Store) -> None:
    ag = await agent(store, (await execution(store)).id)
    running = await tool(store, ag.id)
    assert await tool_calls.get_output(store, WS, running.id) is None
    failed = await tool_calls.fail_tool_call(store, WS, running.id, "Permission denied")
    assert (failed.status, failed.error, failed.duration_ms) == ("failed", "Permission denied", None)
    assert failed.completed_at is not None and failed.output_size_bytes is None
    assert await tool_calls.get_output(store, WS, running.id) is None


# ------------------------------------------------ tokens (reference §2.2, §5)


async def test_tokens_roll_up_into_the_agents_own_execution(store: Store) -> None:
    first = await execution(store, "first")
    a1, a2, a3, a4 = [await agent(store, first.id, f"agent {i}") for i in range(4)]
    done = await agents.complete_agent(
        store, WS, a1.id, "Feature implemented", {"success": True}, (1000, 500)
    )
    assert (done.tokens_input, done.tokens_output) == (1000, 500)
    # no tokens: both null, nothing added; zero tokens are stored as 0
    no_tokens = await agents.complete_agent(store, WS, a2.id, "done")
    assert (no_tokens.tokens_input, no_tokens.tokens_output) == (None, None)
    zero = await agents.complete_agent(store, WS, a3.id, "done", None, (0, 0))
    assert (zero.tokens_input, zero.tokens_output) == (0, 0)
    # a later execution does not receive the tokens of an agent of the first
    second = await execution(store, "second")
    await agents.complete_agent(store, WS, a4.id, "late", None, (7, 3))
    failed_agent = await agent(store, second.id)
    await agents.fail_agent(store, WS, failed_agent.id, "Timeout exceeded")  # adds nothing
    assert (await executions.get_execution(store, WS, first.id)).total_tokens_used == 1510
    assert (await executions.get_execution(store, WS, second.id)).total_tokens_used == 0


async def test_complete_and_fail_set_what_upstream_sets(store: Store) -> None:
    ex = await execution(store)
    ag = await agents.start_agent(store, WS, ex.id, "", "", "You are a senior engineer", "/logs/a.log", "p1")
    assert (ag.prompt, ag.model, ag.system_prompt, ag.log_path, ag.phase_id) == (
        "",
        "sonnet",  # an empty model is the default
        "You are a senior engineer",
        "/logs/a.log",
        "p1",
    )
    assert (ag.status, ag.started_at, ag.completed_at, ag.duration_ms) == (
        "running",
        ag.created_at,
        None,
        None,
    )
    done = await agents.complete_agent(
        store, WS, ag.id, "Feature implemented", {"files": 3, "ok": True}, (1, 2)
    )
    assert done.status == "completed" and done.result_structured == {"files": 3, "ok": True}
    assert done.duration_ms == (done.completed_at - done.started_at) // 1000  # type: ignore[operator]
    other = await agent(store, ex.id)
    failed = await agents.fail_agent(store, WS, other.id, "Timeout exceeded")
    assert (failed.status, failed.error, failed.duration_ms, failed.result) == (
        "failed",
        "Timeout exceeded",
        None,
        None,
    )
    assert failed.completed_at is not None
    assert await agents.list_agents(store, WS, ex.id) == [done, failed]


# ------------------------------------------------ current (reference §2.4)


async def current(store: Store, execution_id: str) -> str | None:
    found = await agents.current_agent(store, WS, execution_id)
    return None if found is None else found.id


async def test_current_is_the_latest_started_until_it_ends(store: Store) -> None:
    ex = await execution(store)
    assert await current(store, ex.id) is None
    a1 = await agent(store, ex.id)
    a2 = await agent(store, ex.id)
    assert await current(store, ex.id) == a2.id  # the last start wins
    await agents.complete_agent(store, WS, a1.id, "done")
    assert await current(store, ex.id) == a2.id  # completing another agent leaves it
    await agents.complete_agent(store, WS, a2.id, "done")
    assert await current(store, ex.id) is None  # cleared, even though none is left running
    a3 = await agent(store, ex.id)
    a4 = await agent(store, ex.id)
    await agents.complete_agent(store, WS, a4.id, "done")
    assert await current(store, ex.id) is None  # a3 still runs, but the pointer is not restored
    await agents.fail_agent(store, WS, a3.id, "boom")
    a5 = await agent(store, ex.id)
    await agents.fail_agent(store, WS, a5.id, "boom")  # failing clears it too
    assert await current(store, ex.id) is None
    a6 = await agent(store, ex.id)
    assert (await agents.current_agent(store, WS, ex.id)) == await agents.get_agent(store, WS, a6.id)
    assert (await executions.get_execution(store, WS, ex.id)).current_agent_id == a6.id


async def test_current_is_per_execution(store: Store) -> None:
    one, two = await execution(store, "one"), await execution(store, "two")
    a1 = await agent(store, one.id)
    a2 = await agent(store, two.id)
    assert (await current(store, one.id), await current(store, two.id)) == (a1.id, a2.id)


# ------------------------------------------------ counters (reference §5)


async def test_counters(store: Store) -> None:
    ex = await execution(store)
    a1, a2 = await agent(store, ex.id), await agent(store, ex.id)
    for _ in range(3):
        await tool(store, a1.id)
    t = await tool(store, a2.id)
    await complete_tool(store, t.id, "ok")  # completing touches no counter
    got = await executions.get_execution(store, WS, ex.id)
    assert (got.total_agents, got.total_tool_calls, got.total_tokens_used) == (2, 4, 0)
    assert [a.tool_calls_count for a in await agents.list_agents(store, WS, ex.id)] == [3, 1]
    listed = await tool_calls.list_tool_calls(store, WS, a1.id)
    assert len(listed) == 3 and all(c.execution_id == ex.id and c.agent_id == a1.id for c in listed)
    assert listed == sorted(listed, key=lambda c: c.created_at)


# ------------------------------------------------ executions (reference §4)


async def test_execution_lifecycle_and_resume(store: Store) -> None:
    ex = await executions.start_execution(
        store, WS, name="build", file_path="main.tsx", config={"a": [1, 2]}, execution_id="run-1"
    )
    assert (ex.id, ex.status, ex.config, ex.result, ex.started_at) == (
        "run-1",
        "running",
        {"a": [1, 2]},
        None,
        ex.created_at,
    )
    failed = await executions.fail_execution(store, WS, "run-1", "crashed")
    assert (failed.status, failed.error) == ("failed", "crashed") and failed.completed_at is not None
    # resuming: running again, new started_at, error and completed_at cleared, the rest kept
    resumed = await executions.start_execution(store, WS, name="other", execution_id="run-1")
    assert (resumed.status, resumed.error, resumed.completed_at) == ("running", None, None)
    assert (resumed.name, resumed.file_path, resumed.config, resumed.created_at) == (
        "build",
        "main.tsx",
        {"a": [1, 2]},
        ex.created_at,
    )
    assert resumed.started_at is not None and failed.completed_at is not None
    assert resumed.started_at >= failed.completed_at
    done = await executions.complete_execution(store, WS, "run-1", {"answer": 42})
    assert (done.status, done.result) == ("completed", {"answer": 42})
    cancelled = await executions.cancel_execution(store, WS, (await execution(store, "c")).id)
    assert cancelled.status == "cancelled"
    assert [e.id for e in await executions.list_executions(store, WS)] == [cancelled.id, "run-1"]
    assert [e.id for e in await executions.list_executions(store, WS, 1)] == [cancelled.id]
    assert await log_types(store) == [
        "execution.started",
        "execution.failed",
        "execution.resumed",
        "execution.completed",
        "execution.started",
        "execution.cancelled",
    ]


async def test_execution_list_default_limit_is_20(store: Store) -> None:
    made = [(await execution(store, f"e{i}")).id for i in range(22)]
    assert [e.id for e in await executions.list_executions(store, WS)] == made[::-1][:20]


async def test_every_change_is_one_log_entry_with_the_record(store: Store) -> None:
    ex = await execution(store)
    ag = await agent(store, ex.id)
    started = await tool(store, ag.id)
    done = await complete_tool(store, started.id, "ok")
    summary = await agents.set_stream_summary(store, WS, ag.id, {"text_blocks": 2, "errors": 1})
    assert summary.stream_summary == {  # the seed's names, as the log entry shows them
        "textBlocks": 2,
        "reasoningBlocks": 0,
        "toolCalls": 0,
        "toolResults": 0,
        "errors": 1,
    }

    def entries(conn: Connection) -> list[Any]:
        return list(conn.execute(select(log_entries).order_by(log_entries.c.seq)))

    logged = await store.read(entries)
    assert [e.type for e in logged] == [
        "execution.started",
        "agent.started",
        "tool_call.started",
        "tool_call.completed",
        "agent.stream_summary",
    ]
    completed = logged[3]
    assert completed.data == {
        "tool_call": {
            **done.__dict__,
            "started_at": iso(done.started_at),  # type: ignore[arg-type]
            "completed_at": iso(done.completed_at),  # type: ignore[arg-type]
            "created_at": iso(done.created_at),
        }
    }
    assert completed.occurred_at == iso(done.completed_at)  # type: ignore[arg-type]
    assert all(e.workspace == WS and e.session_id is None for e in logged)


@pytest.mark.parametrize(
    ("us", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1_700_000_000_000_000, "2023-11-14T22:13:20Z"),
        (1_700_000_000_120_000, "2023-11-14T22:13:20.120Z"),
        (1_700_000_000_123_456, "2023-11-14T22:13:20.123456Z"),
    ],
)
def test_times_are_spelled_as_protobuf_timestamps(us: int, text: str) -> None:
    from google.protobuf.timestamp_pb2 import Timestamp

    ts = Timestamp()
    ts.FromMicroseconds(us)
    assert iso(us) == text == ts.ToJsonString()


# ------------------------------------------------ refused calls write nothing


Call = Callable[[Store, dict[str, str]], Awaitable[object]]
# (case, call given the ids of a fixture world, error type, reason, violated fields)
REFUSED: list[tuple[str, Call, type[DomainError], str, list[str]]] = [
    (
        "agent in unknown execution",
        lambda s, ids: agents.start_agent(s, WS, "nope", "p"),
        NotFound,
        "EXECUTION_NOT_FOUND",
        [],
    ),
    (
        "agent in finished execution",
        lambda s, ids: agents.start_agent(s, WS, ids["done_execution"], "p"),
        FailedPrecondition,
        "EXECUTION_NOT_RUNNING",
        [],
    ),
    (
        "complete unknown agent",
        lambda s, ids: agents.complete_agent(s, WS, "nope", "r"),
        NotFound,
        "AGENT_NOT_FOUND",
        [],
    ),
    (
        "fail unknown agent",
        lambda s, ids: agents.fail_agent(s, WS, "nope", "e"),
        NotFound,
        "AGENT_NOT_FOUND",
        [],
    ),
    (
        "complete a completed agent",
        lambda s, ids: agents.complete_agent(s, WS, ids["done_agent"], "again", None, (5, 5)),
        FailedPrecondition,
        "AGENT_NOT_RUNNING",
        [],
    ),
    (
        "fail a completed agent",
        lambda s, ids: agents.fail_agent(s, WS, ids["done_agent"], "late"),
        FailedPrecondition,
        "AGENT_NOT_RUNNING",
        [],
    ),
    (
        "negative tokens",
        lambda s, ids: agents.complete_agent(s, WS, ids["agent"], "r", None, (-1, 5)),
        InvalidArgument,
        "INVALID_ARGUMENT",
        ["tokens.input"],
    ),
    (
        "tokens beyond 2^53",
        lambda s, ids: agents.complete_agent(s, WS, ids["agent"], "r", None, (1, 2**53)),
        InvalidArgument,
        "INVALID_ARGUMENT",
        ["tokens.output"],
    ),
    (
        "structured result a list, tokens negative",
        lambda s, ids: agents.complete_agent(s, WS, ids["agent"], "r", [1, 2], (-1, -1)),
        InvalidArgument,
        "INVALID_ARGUMENT",
        ["result_structured", "tokens.input", "tokens.output"],
    ),
    (
        "structured result a string",
        lambda s, ids: agents.complete_agent(s, WS, ids["agent"], "r", "done"),
        InvalidArgument,
        "INVALID_ARGUMENT",
        ["result_structured"],
    ),
    (
        "nul in a structured result",
        lambda s, ids: agents.complete_agent(s, WS, ids["agent"], "r", {"k": "a\x00b"}),
        InvalidArgument,
        "INVALID_ARGUMENT",
        ["result_structured.k"],
    ),
    (
        "negative stream summary",
        lambda s, ids: agents.set_stream_summary(s, WS, ids["agent"], {"errors": -2}),
        InvalidArgument,
        "INVALID_ARGUMENT",
        ["stream_summary.errors"],
    ),
    (
        "stream summary of unknown agent",
        lambda s, ids: agents.set_stream_summary(s, WS, "nope", {"errors": 1}),
        NotFound,
        "AGENT_NOT_FOUND",
        [],
    ),
    (
        "tool of unknown agent",
        lambda s, ids: tool_calls.start_tool_call(s, WS, "nope", "Edit", {}),
        NotFound,
        "AGENT_NOT_FOUND",
        [],
    ),
    (
        "tool of a completed agent",
        lambda s, ids: tool_calls.start_tool_call(s, WS, ids["done_agent"], "Edit", {}),
        FailedPrecondition,
        "AGENT_NOT_RUNNING",
        [],
    ),
    (
        "tool in a finished execution",
        lambda s, ids: tool_calls.start_tool_call(s, WS, ids["orphan_agent"], "Edit", {}),
        FailedPrecondition,
        "EXECUTION_NOT_RUNNING",
        [],
    ),
    (
        "tool input a list",
        lambda s, ids: tool_calls.start_tool_call(s, WS, ids["agent"], "Edit", ["a"]),
        InvalidArgument,
        "INVALID_ARGUMENT",
        ["input"],
    ),
    (
        "complete unknown tool call",
        lambda s, ids: tool_calls.complete_tool_call(s, WS, "nope", "x", max_output_bytes=CAP),
        NotFound,
        "TOOL_CALL_NOT_FOUND",
        [],
    ),
    (
        "fail unknown tool call",
        lambda s, ids: tool_calls.fail_tool_call(s, WS, "nope", "x"),
        NotFound,
        "TOOL_CALL_NOT_FOUND",
        [],
    ),
    (
        "complete a completed tool call",
        lambda s, ids: tool_calls.complete_tool_call(s, WS, ids["done_tool"], "x", max_output_bytes=CAP),
        FailedPrecondition,
        "TOOL_CALL_NOT_RUNNING",
        [],
    ),
    (
        "output past the cap by one byte",
        lambda s, ids: tool_calls.complete_tool_call(
            s, WS, ids["tool"], "a" * (CAP + 1), max_output_bytes=CAP
        ),
        InvalidArgument,
        "OUTPUT_TOO_LARGE",
        ["output"],
    ),
    (
        "output past the cap in bytes, not characters",
        lambda s, ids: tool_calls.complete_tool_call(
            s, WS, ids["tool"], E4 * (CAP // 4 + 1), max_output_bytes=CAP
        ),
        InvalidArgument,
        "OUTPUT_TOO_LARGE",
        ["output"],
    ),
    (
        "nul in an output",
        lambda s, ids: tool_calls.complete_tool_call(s, WS, ids["tool"], "a\x00", max_output_bytes=CAP),
        InvalidArgument,
        "INVALID_ARGUMENT",
        ["output"],
    ),
    (
        "read output of unknown tool call",
        lambda s, ids: tool_calls.get_output(s, WS, "nope"),
        NotFound,
        "TOOL_CALL_NOT_FOUND",
        [],
    ),
    (
        "complete a finished execution",
        lambda s, ids: executions.complete_execution(s, WS, ids["done_execution"], None),
        FailedPrecondition,
        "EXECUTION_NOT_RUNNING",
        [],
    ),
    (
        "cancel unknown execution",
        lambda s, ids: executions.cancel_execution(s, WS, "nope"),
        NotFound,
        "EXECUTION_NOT_FOUND",
        [],
    ),
    (
        "config a list",
        lambda s, ids: executions.start_execution(s, WS, config=[1]),
        InvalidArgument,
        "INVALID_ARGUMENT",
        ["config"],
    ),
    (
        "execution id with a slash",
        lambda s, ids: executions.start_execution(s, WS, execution_id="a/b"),
        InvalidArgument,
        "INVALID_ARGUMENT",
        ["execution_id"],
    ),
    (
        "list limit too large",
        lambda s, ids: executions.list_executions(s, WS, 1001),
        InvalidArgument,
        "INVALID_ARGUMENT",
        ["limit"],
    ),
    (
        "list agents of unknown execution",
        lambda s, ids: agents.list_agents(s, WS, "nope"),
        NotFound,
        "EXECUTION_NOT_FOUND",
        [],
    ),
    (
        "another workspace's agent is unknown",
        lambda s, ids: agents.get_agent(s, "elsewhere", ids["agent"]),
        NotFound,
        "AGENT_NOT_FOUND",
        [],
    ),
]


async def test_refused_calls_write_nothing(store: Store, subtests: pytest.Subtests) -> None:
    done_execution = await execution(store, "done")
    orphan = await agent(store, done_execution.id)
    await executions.complete_execution(store, WS, done_execution.id, None)
    ex = await execution(store, "live")
    done_agent = await agent(store, ex.id)
    done_tool = await tool(store, done_agent.id)
    await complete_tool(store, done_tool.id, "ok")
    await agents.complete_agent(store, WS, done_agent.id, "done", None, (1, 1))
    live = await agent(store, ex.id)
    running_tool = await tool(store, live.id)
    ids = {
        "done_execution": done_execution.id,
        "orphan_agent": orphan.id,
        "done_agent": done_agent.id,
        "done_tool": done_tool.id,
        "agent": live.id,
        "tool": running_tool.id,
    }
    before = await everything(store)
    for case, call, error, reason, fields in REFUSED:
        with subtests.test(case):
            with pytest.raises(error) as caught:
                await call(store, ids)
            assert caught.value.reason == reason
            assert [v.field for v in caught.value.violations] == fields
            assert await everything(store) == before
