"""Agent Tracer (seed 000) over HTTP, against the real app: runtime sessions
(every row of the ensure and end decision tables, reference §5), tasks
(§6), typed ingest (§4), turns (§7), the read side, and bad input, which is
refused whole and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Server
from tests.contract.tracer_contract import (
    CLAUDE,
    LANES,
    NOW,
    TOKENS_ZERO,
    UUID,
    Tracer,
    data,
    enum_message,
    error,
    event,
    session,
    shown,
    slug_task,
    view,
    zod,
)

KINDS = {
    "tool-activity": ("tool.used", "terminal.command", "monitor.observed"),
    "workflow": (
        "plan.logged",
        "action.logged",
        "verification.logged",
        "rule.logged",
        "thought.logged",
        "context.saved",
        "context.snapshot",
        "user.prompt.expansion",
        "permission.request",
        "worktree.create",
        "worktree.remove",
        "setup.triggered",
        "file.changed",
        "instructions.loaded",
        "todo.logged",
    ),
    "conversation": (
        "user.message",
        "assistant.response",
        "question.logged",
        "todo.logged",
        "user.prompt.expansion",
    ),
    "coordination": ("agent.activity.logged", "action.logged"),
    "lifecycle": (
        "session.ended",
        "instructions.loaded",
        "setup.triggered",
        "file.changed",
        "worktree.create",
        "worktree.remove",
        "permission.request",
    ),
}
ALL_KINDS = (
    "tool.used",
    "terminal.command",
    "monitor.observed",
    "plan.logged",
    "action.logged",
    "verification.logged",
    "rule.logged",
    "thought.logged",
    "context.saved",
    "context.snapshot",
    "user.prompt.expansion",
    "permission.request",
    "worktree.create",
    "worktree.remove",
    "setup.triggered",
    "file.changed",
    "user.message",
    "assistant.response",
    "question.logged",
    "todo.logged",
    "agent.activity.logged",
    "session.ended",
    "instructions.loaded",
    "token.usage",
)
EVENT_ENDPOINTS = ("events", *KINDS)


@pytest.fixture
def tracer(server: Server) -> Tracer:
    return Tracer(server.http)


async def new_task(tracer: Tracer, rsid: str = "rs", **fields: Any) -> tuple[str, str]:
    ensured = await tracer.ensure(rsid, **fields)
    return ensured["taskId"], ensured["sessionId"]


async def last_event(tracer: Tracer, task_id: str) -> dict[str, Any]:
    return (await tracer.timeline(task_id))[-1]


# ------------------------------------------------------- envelope, errors


async def test_unknown_task_reads_are_404_not_found(tracer: Tracer) -> None:
    for path in ("/api/v1/tasks/nope", "/api/v1/tasks/nope/timeline"):
        assert error(await tracer.http.get(path), 404, "not_found", "Task not found") == {
            "code": "not_found",
            "message": "Task not found",
        }


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/ingest/v1/tasks/complete", {"taskId": "nope"}),
        ("/ingest/v1/tasks/error", {"taskId": "nope", "errorMessage": "boom"}),
        ("/ingest/v1/tasks/link", {"taskId": "nope", "title": "x"}),
    ],
)
async def test_unknown_task_writes_are_404_and_write_nothing(tracer: Tracer, path: str, body: Any) -> None:
    before = await tracer.log()
    err = error(await tracer.http.post(path, json=body), 404, "not_found")
    assert err == {"code": "not_found", "message": "Task not found: nope"}
    assert await tracer.log() == before


# (path, body, message, details)
BAD_BODIES: list[tuple[str, Any, str, dict[str, Any]]] = [
    (
        "/ingest/v1/sessions/ensure",
        {"runtimeSource": CLAUDE, "runtimeSessionId": "r"},
        "Invalid request",
        zod(("title", "Required")),
    ),
    (
        "/ingest/v1/sessions/ensure",
        {"runtimeSource": CLAUDE, "runtimeSessionId": "r", "title": "t", "origin": "robot"},
        "Invalid request",
        zod(("origin", enum_message(("user", "server-sdk"), "robot"))),
    ),
    (
        "/ingest/v1/sessions/end",
        {"runtimeSource": "  ", "runtimeSessionId": "r"},
        "Invalid request",
        zod(("runtimeSource", "String must contain at least 1 character(s)")),
    ),
    (
        "/ingest/v1/sessions/end",
        {"runtimeSource": CLAUDE, "runtimeSessionId": "r", "completionReason": "tired"},
        "Invalid request",
        zod(
            (
                "completionReason",
                enum_message(
                    ("idle", "assistant_turn_complete", "explicit_exit", "runtime_terminated"), "tired"
                ),
            )
        ),
    ),
    ("/ingest/v1/tasks/start", {}, "Invalid request", zod(("title", "Required"))),
    (
        "/ingest/v1/tasks/start",
        {"title": "t", "taskKind": "side"},
        "Invalid request",
        zod(("taskKind", enum_message(("primary", "background"), "side"))),
    ),
    (
        "/ingest/v1/tasks/link",
        {"taskId": "t", "title": "   "},
        "Invalid request",
        zod(("title", "String must contain at least 1 character(s)")),
    ),
    ("/ingest/v1/tasks/error", {"taskId": "t"}, "Invalid request", zod(("errorMessage", "Required"))),
    ("/ingest/v1/tasks/complete", {"summary": "s"}, "Invalid request", zod(("taskId", "Required"))),
    ("/ingest/v1/events", {"events": []}, "Invalid request", zod(("events", "Required"))),
    ("/ingest/v1/events", {}, "Invalid request", zod(("events", "Required"))),
    (
        "/ingest/v1/events",
        {"events": [event("tool.used", "t", "exploration")] * 101},
        "Invalid request body",
        zod(("events", "Array must contain at most 100 element(s)")),
    ),
    (
        "/ingest/v1/events",
        {"events": [{"kind": "tool.used", "lane": "exploration"}]},
        "Invalid request body",
        zod(("events.0.taskId", "Required")),
    ),
    (
        "/ingest/v1/events",
        {"events": [event("tool.used", "t", "exploration"), {"taskId": "t"}]},
        "Invalid request body",
        zod(("events.1.kind", "Required"), ("events.1.lane", "Required")),
    ),
    (
        "/ingest/v1/events",
        {"events": [event("task.start", "t", "user")]},
        "Invalid request body",
        zod(("events.0.kind", enum_message(ALL_KINDS, "task.start"))),
    ),
    (
        "/ingest/v1/tool-activity",
        {"events": [event("user.message", "t", "user")]},
        "Invalid request body",
        zod(("events.0.kind", enum_message(KINDS["tool-activity"], "user.message"))),
    ),
    (
        "/ingest/v1/conversation",
        {"events": [event("user.message", "t", "file")]},
        "Invalid request body",
        zod(("events.0.lane", enum_message(LANES, "file"))),
    ),
    (
        "/ingest/v1/events",
        {
            "events": [
                event(
                    "tool.used",
                    "t",
                    "exploration",
                    sessionId="",
                    parentEventId="",
                    relatedEventIds=["a", ""],
                    relationType="likes",
                    relationLabel="",
                    relationExplanation="",
                )
            ]
        },
        "Invalid request body",
        zod(
            ("events.0.sessionId", "String must contain at least 1 character(s)"),
            ("events.0.parentEventId", "String must contain at least 1 character(s)"),
            ("events.0.relationLabel", "String must contain at least 1 character(s)"),
            ("events.0.relationExplanation", "String must contain at least 1 character(s)"),
            ("events.0.relatedEventIds.1", "String must contain at least 1 character(s)"),
            (
                "events.0.relationType",
                enum_message(
                    (
                        "implements",
                        "revises",
                        "verifies",
                        "answers",
                        "delegates",
                        "returns",
                        "completes",
                        "blocks",
                        "caused_by",
                        "relates_to",
                    ),
                    "likes",
                ),
            ),
        ),
    ),
    (
        "/ingest/v1/events",
        {"events": [event("tool.used", "t", "exploration", metadata={"note": "a\u0000b"})]},
        "Invalid request body",
        zod(("events.0.metadata.note", "must not contain the character U+0000")),
    ),
    (
        "/ingest/v1/telemetry",
        {"events": [{"taskId": "t", "kind": "tokens", "inputTokens": -1}]},
        "Invalid request body",
        zod(
            ("events.0.kind", 'Invalid literal value, expected "token.usage"'),
            ("events.0.outputTokens", "Required"),
            ("events.0.inputTokens", "Number must be greater than or equal to 0"),
        ),
    ),
    (
        "/ingest/v1/telemetry",
        {"events": [{"taskId": "t", "inputTokens": 1, "outputTokens": 1, "metadata": {"inputTokens": 3}}]},
        "Invalid request body",
        zod(("events.0.metadata.outputTokens", "Required")),
    ),
]


async def test_bad_bodies_are_400_validation_error_and_write_nothing(
    tracer: Tracer, subtests: pytest.Subtests
) -> None:
    await new_task(tracer)
    before = await tracer.log()
    for path, body, message, details in BAD_BODIES:
        with subtests.test(f"{path} {sorted(details)}"):
            err = error(await tracer.http.post(path, json=body), 400, "validation_error", message)
            assert err == {"code": "validation_error", "message": message, "details": details}
            assert await tracer.log() == before


async def test_malformed_json_is_400_validation_error(tracer: Tracer, subtests: pytest.Subtests) -> None:
    before = await tracer.log()
    for raw in (b"{", b"[]"):
        with subtests.test(raw.decode()):
            resp = await tracer.http.post("/ingest/v1/events", content=raw)
            err = error(resp, 400, "validation_error", "Invalid request")
            assert set(err["details"]) == {"_errors"} and len(err["details"]["_errors"]) == 1
    # a value of the wrong type is named in zod's tree, every one of them
    for raw, details in (
        (b'{"events": {"kind": "x"}}', zod(("events", "expected a JSON array, got {'kind': 'x'}"))),
        (
            b'{"events": [{"metadata": "text"}, {"title": 5, "filePaths": "a"}]}',
            zod(
                ("events.0.metadata", "expected a JSON object, got 'text'"),
                ("events.1.title", "expected a string, got 5"),
                ("events.1.filePaths", "expected a JSON array, got 'a'"),
            ),
        ),
    ):
        with subtests.test(raw.decode()):
            resp = await tracer.http.post("/ingest/v1/events", content=raw)
            assert error(resp, 400, "validation_error", "Invalid request")["details"] == details
    assert await tracer.log() == before


async def test_wrong_method_is_405_in_the_family_shape(tracer: Tracer) -> None:
    error(await tracer.http.get("/ingest/v1/events"), 405, "request_failed")
    error(await tracer.http.delete("/api/v1/tasks"), 405, "request_failed")


# ------------------------------------------------ sessions/ensure (§5.1)


async def test_ensure_first_sight_creates_task_session_and_task_start(tracer: Tracer) -> None:
    """Row 4: a task (with its task.start event) and a session; the session is
    in the shared list too."""
    ensured = await tracer.ensure("rs-1", "Fix the login bug", workspacePath="  /repo//app/ ")
    assert ensured == {"taskId": UUID, "sessionId": UUID, "taskCreated": True, "sessionCreated": True}
    task_id, session_id = ensured["taskId"], ensured["sessionId"]
    timeline = [
        view(
            UUID,
            "task.start",
            task_id,
            "user",
            session_id=session_id,
            title="Fix the login bug",
            metadata={"taskKind": "primary", "workspacePath": "/repo/app", "runtimeSource": CLAUDE},
        )
    ]
    assert await tracer.timeline(task_id) == timeline
    assert await tracer.task(task_id) == {
        "task": shown(
            slug_task(
                "Fix the login bug",
                "fix-the-login-bug",
                task_id=task_id,
                workspacePath="/repo/app",
                runtimeSource=CLAUDE,
            )
        ),
        "sessions": [session(session_id, task_id, tokenUsage=TOKENS_ZERO)],
        "lineage": {"ancestors": [], "children": []},
        "turns": [],
        "tokenUsage": TOKENS_ZERO,
        "timeline": timeline,
        "runtimeSource": CLAUDE,
        "runtimeSessionId": "rs-1",
    }
    shared = await tracer.http.get("/sessions")  # the Agent Runtime family's list
    assert shared.status_code == 200
    assert shared.json() == {
        "sessions": [
            {
                "session_id": session_id,
                "session_name": "Fix the login bug",
                "status": "running",
                "created_at": NOW,
                "project_dir": "/repo/app",
                "agent_name": None,
                "last_resumed_at": None,
            }
        ]
    }


async def test_ensure_active_binding_returns_the_same_ids_and_writes_nothing(tracer: Tracer) -> None:
    """Row 1."""
    first = await tracer.ensure("rs-1", "First")
    before = await tracer.log()
    again = await tracer.ensure("rs-1", "Another title", workspacePath="/elsewhere")
    assert again == {**first, "taskCreated": False, "sessionCreated": False}
    assert await tracer.log() == before
    assert (await tracer.task(first["taskId"]))["task"]["title"] == "First"


async def test_ensure_after_the_session_ended_resumes_the_task(tracer: Tracer) -> None:
    """Rows 1b and 3: a new session on the same task, which runs again."""
    task_id, first = await new_task(tracer, "rs-1")
    await tracer.end("rs-1", completionReason="assistant_turn_complete")
    assert await tracer.status(task_id) == "waiting"
    again = await tracer.ensure("rs-1", "ignored")
    assert again == {"taskId": task_id, "sessionId": UUID, "taskCreated": False, "sessionCreated": True}
    assert again["sessionId"] != first
    detail = await tracer.task(task_id)
    assert detail["task"]["status"] == "running"
    assert [(s["id"], s["status"]) for s in detail["sessions"]] == [
        (first, "completed"),
        (again["sessionId"], "running"),
    ]
    # the binding is active again
    assert await tracer.ensure("rs-1") == {**again, "sessionCreated": False}


async def test_ensure_resume_false_returns_the_latest_session_unchanged(tracer: Tracer) -> None:
    """Rows 1b and 2."""
    task_id, first = await new_task(tracer, "rs-1")
    await tracer.end("rs-1", completionReason="assistant_turn_complete")
    second = (await tracer.ensure("rs-1"))["sessionId"]
    await tracer.end("rs-1", completionReason="idle")
    before = await tracer.task(task_id)
    again = await tracer.ensure("rs-1", resume=False)
    assert again == {"taskId": task_id, "sessionId": second, "taskCreated": False, "sessionCreated": False}
    assert await tracer.task(task_id) == before
    assert before["task"]["status"] == "waiting"
    assert first != second


async def test_ensure_resume_takes_the_task_back_from_another_runtime(tracer: Tracer) -> None:
    """Row 3 with a running task whose runtimeSource changed: it is set back."""
    task_id, _ = await new_task(tracer, "rs-1")
    started = await tracer.post(
        "/ingest/v1/tasks/start", {"title": "Task", "taskId": task_id, "runtimeSource": "codex"}
    )
    assert started["task"]["runtimeSource"] == "codex"
    await tracer.end("rs-1")  # another session still runs: the task stays running
    assert await tracer.status(task_id) == "running"
    await tracer.ensure("rs-1")
    detail = await tracer.task(task_id)
    assert detail["task"]["runtimeSource"] == CLAUDE
    assert [s["status"] for s in detail["sessions"]] == ["completed", "running", "running"]


async def test_ensure_first_sight_options(tracer: Tracer) -> None:
    """Row 4 variants: a chosen task id, a parent (background task), an
    existing task id (reused, still reported as created), a sticky origin."""
    parent_id, parent_session = await new_task(tracer, "parent", origin="server-sdk")
    assert (await tracer.task(parent_id))["task"]["origin"] == "server-sdk"
    child = await tracer.ensure(
        "sub--agent-1",
        "Subagent: explore",
        taskId="child-1",
        parentTaskId=parent_id,
        parentSessionId=parent_session,
    )
    assert child == {"taskId": "child-1", "sessionId": UUID, "taskCreated": True, "sessionCreated": True}
    assert (await tracer.task("child-1"))["task"] == shown(
        slug_task(
            "Subagent: explore",
            "subagent-explore",
            task_id="child-1",
            kind="background",
            parentTaskId=parent_id,
            parentSessionId=parent_session,
            runtimeSource=CLAUDE,
        )
    )
    # another runtime session naming an existing task reuses it (and its origin sticks)
    other = await tracer.ensure("other", "Renamed", taskId=parent_id, origin="user")
    assert other == {"taskId": parent_id, "sessionId": UUID, "taskCreated": True, "sessionCreated": True}
    detail = await tracer.task(parent_id)
    assert detail["task"]["title"] == "Renamed" and detail["task"]["origin"] == "server-sdk"
    assert len(detail["sessions"]) == 2
    assert [e["kind"] for e in await tracer.timeline(parent_id)] == ["task.start"]
    assert detail["lineage"]["children"] == [(await tracer.task("child-1"))["task"]]


# --------------------------------------------------- sessions/end (§5.2)


async def test_end_without_a_binding_does_nothing(tracer: Tracer) -> None:
    before = await tracer.log()
    await tracer.end("never-seen", completeTask=True, completionReason="explicit_exit")
    assert await tracer.log() == before


async def test_end_of_a_historical_binding(tracer: Tracer) -> None:
    """Algorithm step 1: only completeTask acts; it completes the task unless
    terminal and forgets the binding (the next ensure starts a new task)."""
    task_id, _ = await new_task(tracer, "rs-1")
    await tracer.end("rs-1", completionReason="assistant_turn_complete")
    before = await tracer.log()
    await tracer.end("rs-1", completionReason="explicit_exit")  # no completeTask: nothing
    assert await tracer.log() == before
    await tracer.end("rs-1", completeTask=True)
    assert await tracer.status(task_id) == "completed"
    complete = await last_event(tracer, task_id)
    assert (complete["kind"], complete["title"], complete["body"]) == (
        "task.complete",
        "Task completed",
        "Runtime session ended",
    )
    fresh = await tracer.ensure("rs-1")
    assert fresh["taskCreated"] is True and fresh["taskId"] != task_id
    # a terminal task is not completed again, but the binding is still forgotten
    await tracer.end("rs-1", completionReason="assistant_turn_complete")
    await tracer.post("/ingest/v1/tasks/error", {"taskId": fresh["taskId"], "errorMessage": "boom"})
    await tracer.end("rs-1", completeTask=True)
    assert await tracer.status(fresh["taskId"]) == "errored"
    assert (await tracer.ensure("rs-1"))["taskCreated"] is True


async def test_end_when_the_bound_session_already_ended(tracer: Tracer) -> None:
    """Algorithm step 2: the binding is cleared; completeTask completes a
    non-terminal task."""
    task_id, _ = await new_task(tracer, "rs-1")
    await tracer.post("/ingest/v1/tasks/error", {"taskId": task_id, "errorMessage": "boom"})
    # the task runs again (taskEffects), its session stays ended
    await tracer.ingest(
        "events", event("thought.logged", task_id, "planning", taskEffects={"taskStatus": "running"})
    )
    assert await tracer.status(task_id) == "running"
    await tracer.end("rs-1")
    assert await tracer.status(task_id) == "running"
    again = await tracer.ensure("rs-1")  # historical now: a new session
    assert again["sessionCreated"] is True
    await tracer.post("/ingest/v1/tasks/complete", {"taskId": task_id, "sessionId": again["sessionId"]})
    await tracer.ingest(
        "events", event("thought.logged", task_id, "planning", taskEffects={"taskStatus": "running"})
    )
    assert await tracer.status(task_id) == "completed"  # a completed task ignores taskEffects
    task2, _ = await new_task(tracer, "rs-2")
    await tracer.post("/ingest/v1/tasks/error", {"taskId": task2, "errorMessage": "boom"})
    await tracer.ingest(
        "events", event("thought.logged", task2, "planning", taskEffects={"taskStatus": "waiting"})
    )
    await tracer.end("rs-2", completeTask=True, summary="wrapped up")
    assert await tracer.status(task2) == "completed"
    assert (await last_event(tracer, task2))["body"] == "wrapped up"


@dataclass(frozen=True)
class EndCase:
    name: str
    row: int
    end: dict[str, Any]
    status: str
    setup: str = ""  # "waiting", "second-session", "background", "background-running"
    summary: str | None = None  # the task.complete body, when completed


END_CASES = [
    EndCase(
        "task-not-running",
        1,
        {"completeTask": True, "completionReason": "explicit_exit"},
        "waiting",
        "waiting",
    ),
    EndCase("other-session-running", 2, {"completionReason": "explicit_exit"}, "running", "second-session"),
    EndCase("background-task", 3, {}, "completed", "background", "Background task completed"),
    EndCase("background-summary", 3, {"summary": "done"}, "completed", "background", "done"),
    EndCase(
        "explicit-exit", 4, {"completionReason": "explicit_exit"}, "completed", "", "Runtime session ended"
    ),
    EndCase(
        "runtime-terminated",
        4,
        {"completionReason": "runtime_terminated"},
        "completed",
        "",
        "Runtime session ended",
    ),
    EndCase(
        "exit-with-summary",
        4,
        {"completionReason": "explicit_exit", "summary": "bye"},
        "completed",
        "",
        "bye",
    ),
    EndCase("complete-task", 5, {"completeTask": True}, "completed", "", "Runtime session ended"),
    EndCase(
        "complete-task-idle",
        5,
        {"completeTask": True, "completionReason": "idle"},
        "completed",
        "",
        "Runtime session ended",
    ),
    EndCase(
        "complete-task-turn",
        5,
        {"completeTask": True, "completionReason": "assistant_turn_complete"},
        "completed",
        "",
        "Runtime session ended",
    ),
    EndCase("idle", 6, {"completionReason": "idle"}, "waiting"),
    EndCase("assistant-turn", 7, {"completionReason": "assistant_turn_complete"}, "waiting"),
    EndCase(
        "complete-task-turn-background-running",
        7,
        {"completeTask": True, "completionReason": "assistant_turn_complete"},
        "waiting",
        "background-running",
    ),
    EndCase("no-reason", 8, {}, "running"),
]


async def test_end_decision_table(tracer: Tracer, subtests: pytest.Subtests) -> None:
    """Algorithm step 3 and every row of RuntimeSessionEnd.decide."""
    for case in END_CASES:
        with subtests.test(f"row {case.row}: {case.name}"):
            rsid = f"end-{case.name}"
            if case.setup == "background":
                parent_id, _ = await new_task(tracer, f"{rsid}-parent")
                task_id, session_id = await new_task(tracer, rsid, parentTaskId=parent_id)
            else:
                task_id, session_id = await new_task(tracer, rsid)
            if case.setup == "waiting":
                await tracer.ingest(
                    "events",
                    event("thought.logged", task_id, "planning", taskEffects={"taskStatus": "waiting"}),
                )
            elif case.setup == "second-session":
                await tracer.post("/ingest/v1/tasks/start", {"title": "Task", "taskId": task_id})
            elif case.setup == "background-running":
                await new_task(tracer, f"{rsid}-child", parentTaskId=task_id)
            events_before = len(await tracer.timeline(task_id))
            await tracer.end(rsid, **case.end)
            detail = await tracer.task(task_id)
            assert detail["task"]["status"] == case.status
            ended = next(s for s in detail["sessions"] if s["id"] == session_id)
            expected_session = session(session_id, task_id, "completed", tokenUsage=TOKENS_ZERO)
            if "summary" in case.end:
                expected_session["summary"] = case.end["summary"]
            assert ended == expected_session
            timeline = await tracer.timeline(task_id)
            if case.summary is None:
                assert len(timeline) == events_before
            else:
                assert len(timeline) == events_before + 1
                assert (timeline[-1]["kind"], timeline[-1]["body"]) == ("task.complete", case.summary)
            # the binding is historical: a new ensure opens a new session
            assert (await tracer.ensure(rsid))["sessionCreated"] is True


async def test_end_background_completions_and_cascade(tracer: Tracer) -> None:
    parent_id, parent_session = await new_task(tracer, "main")
    child_id, _ = await new_task(tracer, "sub-1", parentTaskId=parent_id)
    grandchild_id, _ = await new_task(tracer, "sub-2", parentTaskId=child_id)
    done_id, _ = await new_task(tracer, "sub-3", parentTaskId=parent_id)
    await tracer.post("/ingest/v1/tasks/complete", {"taskId": done_id, "summary": "finished early"})
    listed_id, _ = await new_task(tracer, "sub-4", parentTaskId=parent_id)
    # listed in backgroundCompletions: completed first, with its own summary
    await tracer.end(
        "main", completionReason="explicit_exit", backgroundCompletions=[listed_id, "unknown-task", done_id]
    )
    assert await tracer.status(parent_id) == "completed"
    assert (await last_event(tracer, listed_id))["body"] == "Background task completed"
    assert (await last_event(tracer, done_id))["body"] == "finished early"
    for descendant in (child_id, grandchild_id):
        detail = await tracer.task(descendant)
        assert detail["task"]["status"] == "completed"
        assert [s["status"] for s in detail["sessions"]] == ["completed"]
        assert (await last_event(tracer, descendant))[
            "body"
        ] == "Background task cascade-completed with parent"
    assert (await tracer.task(parent_id))["sessions"][0]["id"] == parent_session


async def test_end_with_background_still_running_after_completion_leaves_no_cascade(tracer: Tracer) -> None:
    """Rows 4/5 complete without cascade when nothing runs in the background."""
    parent_id, _ = await new_task(tracer, "main")
    child_id, _ = await new_task(tracer, "sub", parentTaskId=parent_id)
    await tracer.end("sub")  # row 3: the background child completes itself
    assert await tracer.status(child_id) == "completed"
    await tracer.end("main", completeTask=True)
    assert await tracer.status(parent_id) == "completed"
    assert await tracer.kinds(child_id) == ["task.start", "task.complete"]


# ------------------------------------------------------------- tasks (§6)


async def test_start_task_new_and_restarted(tracer: Tracer) -> None:
    body = {
        "title": "Write the docs!",
        "taskId": "docs",
        "workspacePath": "/repo/",
        "runtimeSource": "manual",
        "summary": "Docs for v2",
        "parentTaskId": "p1",
        "backgroundTaskId": "b1",
        "metadata": {"priority": 2},
    }
    started = await tracer.post("/ingest/v1/tasks/start", body)
    task = slug_task(
        "Write the docs!",
        "write-the-docs",
        task_id="docs",
        workspacePath="/repo",
        runtimeSource="manual",
        parentTaskId="p1",
        backgroundTaskId="b1",
    )
    assert started == {"task": task, "sessionId": UUID, "events": [{"id": UUID, "kind": "task.start"}]}
    assert await tracer.timeline("docs") == [
        view(
            started["events"][0]["id"],
            "task.start",
            "docs",
            "user",
            session_id=started["sessionId"],
            title="Write the docs!",
            body="Docs for v2",
            metadata={
                "priority": 2,
                "taskKind": "primary",
                "parentTaskId": "p1",
                "backgroundTaskId": "b1",
                "workspacePath": "/repo",
                "runtimeSource": "manual",
            },
        )
    ]
    # restart: kept fields stay, "" clears a relation, no new task.start event
    await tracer.post("/ingest/v1/tasks/complete", {"taskId": "docs"})
    again = await tracer.post(
        "/ingest/v1/tasks/start",
        {"title": "Docs, again", "taskId": "docs", "parentTaskId": "", "taskKind": "background"},
    )
    assert again == {
        "task": slug_task(
            "Docs, again",
            "docs-again",
            task_id="docs",
            kind="background",
            workspacePath="/repo",
            runtimeSource="manual",
            backgroundTaskId="b1",
        ),
        "sessionId": UUID,
        "events": [],
    }
    detail = await tracer.task("docs")
    assert detail["task"]["createdAt"] == started["task"]["createdAt"]
    assert [s["status"] for s in detail["sessions"]] == ["completed", "running"]
    assert await tracer.kinds("docs") == ["task.start", "task.complete"]


async def test_link_task(tracer: Tracer) -> None:
    task_id, _ = await new_task(tracer)
    linked = await tracer.post(
        "/ingest/v1/tasks/link",
        {
            "taskId": task_id,
            "title": "  New name  ",
            "taskKind": "background",
            "parentTaskId": "p",
            "parentSessionId": "s",
        },
    )
    expected = slug_task(
        "New name",
        "new-name",
        task_id=task_id,
        kind="background",
        parentTaskId="p",
        parentSessionId="s",
        runtimeSource=CLAUDE,
    )
    assert linked == {"task": expected}
    cleared = await tracer.post("/ingest/v1/tasks/link", {"taskId": task_id, "parentSessionId": ""})
    del expected["parentSessionId"]
    assert cleared == {"task": expected}
    assert (await tracer.task(task_id))["task"] == shown(expected)


async def test_complete_and_error_task(tracer: Tracer) -> None:
    task_id, session_id = await new_task(tracer)
    done = await tracer.post(
        "/ingest/v1/tasks/complete", {"taskId": task_id, "summary": "All good", "metadata": {"pr": 12}}
    )
    task = slug_task("Task", "task", task_id=task_id, status="completed", runtimeSource=CLAUDE)
    assert done == {"task": task, "sessionId": session_id, "events": [{"id": UUID, "kind": "task.complete"}]}
    assert (await last_event(tracer, task_id)) == view(
        done["events"][0]["id"],
        "task.complete",
        task_id,
        "user",
        session_id=session_id,
        title="Task completed",
        body="All good",
        metadata={"pr": 12},
    )
    assert (await tracer.task(task_id))["sessions"] == [
        session(session_id, task_id, "completed", summary="All good", tokenUsage=TOKENS_ZERO)
    ]
    # completing again: no session to end, no event
    assert await tracer.post("/ingest/v1/tasks/complete", {"taskId": task_id}) == {"task": task, "events": []}
    # a session of another task is left alone
    other_id, other_session = await new_task(tracer, "other")
    errored = await tracer.post(
        "/ingest/v1/tasks/error", {"taskId": task_id, "errorMessage": "It broke", "sessionId": other_session}
    )
    assert errored == {
        "task": {**task, "status": "errored"},
        "events": [{"id": UUID, "kind": "task.error"}],
    }
    last = await last_event(tracer, task_id)
    assert (last["kind"], last["title"], last["body"], "sessionId" in last) == (
        "task.error",
        "Task errored",
        "It broke",
        False,
    )
    assert (await tracer.task(other_id))["sessions"][0]["status"] == "running"


# ------------------------------------------------------------ ingest (§4)


async def test_each_endpoint_accepts_its_kinds(tracer: Tracer, subtests: pytest.Subtests) -> None:
    task_id, _ = await new_task(tracer)
    for endpoint, kinds in [*KINDS.items(), ("events", ALL_KINDS)]:
        with subtests.test(endpoint):
            out = await tracer.ingest(endpoint, *(event(k, task_id, "background") for k in kinds))
            assert out == {
                "accepted": [{"eventId": UUID, "kind": k, "taskId": task_id} for k in kinds],
                "rejected": [],
            }


async def test_every_lane_is_accepted(tracer: Tracer) -> None:
    task_id, _ = await new_task(tracer)
    out = await tracer.ingest("events", *(event("thought.logged", task_id, lane) for lane in LANES))
    assert len(out["accepted"]) == len(LANES)
    assert [e["lane"] for e in await tracer.timeline(task_id)][1:] == list(LANES)


async def test_unknown_task_rejects_only_that_event(tracer: Tracer) -> None:
    task_id, _ = await new_task(tracer)
    out = await tracer.ingest(
        "tool-activity",
        event("tool.used", task_id, "exploration", title="first"),
        event("tool.used", "nope", "exploration"),
        event("terminal.command", task_id, "implementation", title="third"),
        event("tool.used", "nope", "exploration"),
    )
    assert out == {
        "accepted": [
            {"eventId": UUID, "kind": "tool.used", "taskId": task_id},
            {"eventId": UUID, "kind": "terminal.command", "taskId": task_id},
        ],
        "rejected": [
            {"index": 1, "code": "task_not_found", "message": "Task not found: nope"},
            {"index": 3, "code": "task_not_found", "message": "Task not found: nope"},
        ],
    }
    assert [e["title"] for e in await tracer.timeline(task_id)][1:] == ["first", "third"]
    everything_rejected = await tracer.ingest("events", event("tool.used", "nope", "exploration"))
    assert everything_rejected["accepted"] == [] and len(everything_rejected["rejected"]) == 1


async def test_event_fields_are_stored_as_the_timeline_shows_them(tracer: Tracer) -> None:
    task_id, session_id = await new_task(tracer)
    sent = event(
        "tool.used",
        task_id,
        "exploration",
        session_id,
        title="Read: a.py",
        body="lines 1-20",
        filePaths=[" src/a.py ", "", "src/a.py", "docs/b.md"],
        metadata={
            "toolName": "Read",
            "tags": ["tool:read", "tool:read", 7, "lane:explore"],
            "subtypeKey": "read_file",
            "subtypeLabel": "Read file",
            "entityType": "file",
            "mentionedPaths": ["README.md", 3],
        },
        parentEventId="e0",
        relatedEventIds=["e1", "e2"],
        relationType="caused_by",
        relationLabel="follows",
        relationExplanation="read after the plan",
        createdAt="yesterday, verbatim",
        # extra top-level keys real hooks send are ignored
        toolName="Read",
        command="cat",
    )
    [event_id] = await tracer.accepted_ids("tool-activity", sent)
    metadata = {
        **sent["metadata"],
        "filePaths": ["src/a.py", "docs/b.md"],
        "parentEventId": "e0",
        "relatedEventIds": ["e1", "e2"],
        "relationType": "caused_by",
        "relationLabel": "follows",
        "relationExplanation": "read after the plan",
    }
    assert await last_event(tracer, task_id) == view(
        event_id,
        "tool.used",
        task_id,
        "exploration",
        session_id=session_id,
        title="Read: a.py",
        body="lines 1-20",
        metadata=metadata,
        created_at="yesterday, verbatim",
        tags=["tool:read", "lane:explore"],
        file_paths=["src/a.py", "docs/b.md"],
        mentioned=["README.md"],
        semantic={"subtypeKey": "read_file", "subtypeLabel": "Read file", "entityType": "file"},
    )


async def test_file_paths_derive_file_changed_events(tracer: Tracer) -> None:
    task_id, _ = await new_task(tracer)
    paths = [f"src/f{i}.py" for i in range(17)]
    out = await tracer.ingest(
        "events",
        event("tool.used", task_id, "implementation", title="Edit", filePaths=paths),
        event("tool.used", task_id, "exploration", filePaths=["x.py"]),
        event("file.changed", task_id, "background", filePaths=["y.py"]),
    )
    kinds = [a["kind"] for a in out["accepted"]]
    assert kinds == ["tool.used", *["file.changed"] * 15, "tool.used", "file.changed"]
    source_id = out["accepted"][0]["eventId"]
    derived = (await tracer.timeline(task_id))[2:17]
    assert derived == [
        view(
            out["accepted"][i + 1]["eventId"],
            "file.changed",
            task_id,
            "implementation",
            title=f"f{i}.py",
            body=path,
            metadata={"sourceKind": "tool.used", "sourceEventId": source_id, "filePaths": [path]},
            file_paths=[path],
        )
        for i, path in enumerate(paths[:15])
    ]


async def test_cross_check_repeats_merge_into_the_first_event(tracer: Tracer) -> None:
    task_id, session_id = await new_task(tracer)
    hook = {"crossCheck": {"source": "hook", "dedupeKey": "call-1"}, "exitCode": 0}
    rollout = {"crossCheck": {"source": "rollout", "dedupeKey": "call-1"}, "durationMs": 40}
    first = await tracer.ingest(
        "events", event("terminal.command", task_id, "implementation", session_id, metadata=hook)
    )
    event_id = first["accepted"][0]["eventId"]
    # a repeat in another request and one in the same request as a new event
    repeat = await tracer.ingest(
        "events",
        event("terminal.command", task_id, "implementation", session_id, metadata=rollout),
        event(
            "terminal.command",
            task_id,
            "implementation",
            session_id,
            metadata={**hook, "crossCheck": {"source": "hook", "dedupeKey": "call-2"}},
        ),
        event(
            "terminal.command",
            task_id,
            "implementation",
            session_id,
            metadata={"crossCheck": {"source": "hook", "dedupeKey": "call-2"}, "again": True},
        ),
    )
    second_id = repeat["accepted"][1]["eventId"]
    assert repeat["accepted"] == [
        {"eventId": event_id, "kind": "terminal.command", "taskId": task_id},
        {"eventId": second_id, "kind": "terminal.command", "taskId": task_id},
        {"eventId": second_id, "kind": "terminal.command", "taskId": task_id},
    ]
    timeline = await tracer.timeline(task_id)
    assert [e["id"] for e in timeline[1:]] == [event_id, second_id]
    assert timeline[1]["metadata"] == {
        "exitCode": 0,
        "durationMs": 40,
        "crossCheck": {"source": "hook", "dedupeKey": "call-1", "mergedFrom": "rollout", "merged": True},
    }
    assert timeline[2]["metadata"]["again"] is True
    # not deduplicated: another source, another session, another kind
    others = await tracer.ingest(
        "events",
        event(
            "terminal.command",
            task_id,
            "implementation",
            session_id,
            metadata={"crossCheck": {"source": "manual", "dedupeKey": "call-1"}},
        ),
        event(
            "terminal.command",
            task_id,
            "implementation",
            metadata={"crossCheck": {"source": "hook", "dedupeKey": "call-1"}},
        ),
        event(
            "tool.used",
            task_id,
            "implementation",
            session_id,
            metadata={"crossCheck": {"source": "hook", "dedupeKey": "call-1"}},
        ),
    )
    assert len({a["eventId"] for a in others["accepted"]} | {event_id}) == 4


async def test_a_resent_event_id_records_nothing(tracer: Tracer) -> None:
    task_id, _ = await new_task(tracer)
    sent = event("tool.used", task_id, "exploration", eventId="client-1")
    assert await tracer.accepted_ids("events", sent) == ["client-1"]
    before = await tracer.log()
    assert await tracer.accepted_ids("events", sent, sent) == ["client-1", "client-1"]
    assert await tracer.log() == before
    assert [e["id"] for e in await tracer.timeline(task_id)][1:] == ["client-1"]


async def test_task_effects(tracer: Tracer) -> None:
    task_id, _ = await new_task(tracer)
    for status, expected in [
        ("waiting", "waiting"),
        ("sleeping", "waiting"),
        ("errored", "errored"),
        ("completed", "completed"),
        ("running", "completed"),
    ]:
        await tracer.ingest(
            "events", event("thought.logged", task_id, "planning", taskEffects={"taskStatus": status})
        )
        assert await tracer.status(task_id) == expected, status


async def test_telemetry_is_rolled_up_per_task_and_session(tracer: Tracer) -> None:
    task_id, session_id = await new_task(tracer)
    other_task, other_session = await new_task(tracer, "other")
    out = await tracer.ingest(
        "telemetry",
        {
            "taskId": task_id,
            "sessionId": session_id,
            "inputTokens": 100,
            "outputTokens": 20,
            "costUsd": 0.25,
            "model": "opus",
        },
        {
            "taskId": task_id,
            "kind": "token.usage",
            "inputTokens": 999,
            "metadata": {
                "inputTokens": 5,
                "outputTokens": 1,
                "cacheReadTokens": 7,
                "cacheCreateTokens": 3,
                "durationMs": 12,
            },
        },
        {"taskId": "nope", "inputTokens": 1, "outputTokens": 1},
    )
    assert out == {
        "accepted": [
            {"eventId": UUID, "kind": "token.usage", "taskId": task_id},
            {"eventId": UUID, "kind": "token.usage", "taskId": task_id},
        ],
        "rejected": [{"index": 2, "code": "task_not_found", "message": "Task not found: nope"}],
    }
    # token.usage through /events counts too
    await tracer.ingest(
        "events",
        event(
            "token.usage", task_id, "telemetry", session_id, metadata={"inputTokens": 1, "outputTokens": 2}
        ),
    )
    detail = await tracer.task(task_id)
    assert detail["tokenUsage"] == {
        "inputTokens": 106,
        "outputTokens": 23,
        "cacheReadTokens": 7,
        "cacheCreateTokens": 3,
        "costUsd": 0.25,
        "events": 3,
    }
    assert detail["sessions"][0]["tokenUsage"] == {
        "inputTokens": 101,
        "outputTokens": 22,
        "cacheReadTokens": 0,
        "cacheCreateTokens": 0,
        "costUsd": 0.25,
        "events": 2,
    }
    timeline = await tracer.timeline(task_id)
    assert timeline[1] == view(
        out["accepted"][0]["eventId"],
        "token.usage",
        task_id,
        "telemetry",
        session_id=session_id,
        metadata={
            "inputTokens": 100,
            "outputTokens": 20,
            "cacheReadTokens": 0,
            "cacheCreateTokens": 0,
            "costUsd": 0.25,
            "model": "opus",
        },
    )
    assert timeline[2]["metadata"] == {
        "inputTokens": 5,
        "outputTokens": 1,
        "cacheReadTokens": 7,
        "cacheCreateTokens": 3,
        "durationMs": 12,
    }
    assert (await tracer.task(other_task))["tokenUsage"] == TOKENS_ZERO
    assert other_session


async def test_a_full_batch_of_100_is_one_transaction(tracer: Tracer) -> None:
    task_id, _ = await new_task(tracer)
    out = await tracer.ingest(
        "events", *(event("thought.logged", task_id, "planning", title=str(i)) for i in range(100))
    )
    assert len(out["accepted"]) == 100
    assert [e["title"] for e in await tracer.timeline(task_id)][1:] == [str(i) for i in range(100)]


# ------------------------------------------------------------- turns (§7)


async def test_turns_open_and_close_with_the_conversation(tracer: Tracer) -> None:
    task_id, session_id = await new_task(tracer)

    def say(kind: str, text: str, at: str, **extra: Any) -> dict[str, Any]:
        return event(kind, task_id, "user", session_id, title=text[:10], body=text, createdAt=at, **extra)

    ids = await tracer.accepted_ids(
        "conversation",
        say("user.message", "Fix the tests please", "T1"),
    )
    ids += await tracer.accepted_ids(
        "events",
        event("tool.used", task_id, "exploration", session_id, createdAt="T2"),
        event("tool.used", task_id, "exploration", createdAt="T2b"),  # no session: no turn
        say("assistant.response", "Fixed them", "T3"),
        event("tool.used", task_id, "exploration", session_id, createdAt="T4"),  # between turns
        say("user.message", "Now the docs", "T5"),
        say("user.message", "Actually, the README", "T6"),  # closes the previous turn unanswered
        say("assistant.response", "README done", "T7"),
        say("assistant.response", "Also tidied up", "T8"),  # no open turn: one is made for it
        say("user.message", "Thanks", "T9"),
    )
    await tracer.ingest("lifecycle", event("session.ended", task_id, "user", session_id, createdAt="T10"))
    turns = (await tracer.task(task_id))["turns"]

    def turn(
        index: int, start: str, end: str, asked: str | None, answer: str | None, count: int
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": UUID,
            "sessionId": session_id,
            "taskId": task_id,
            "turnIndex": index,
            "status": "closed",
            "startedAt": start,
            "endedAt": end,
            "rulesEvaluatedCount": 0,
            "eventCount": count,
        }
        if asked is not None:
            out["askedText"] = asked
        if answer is not None:
            out["assistantText"] = answer
        return out

    assert turns == [
        turn(0, "T1", "T3", "Fix the tests please", "Fixed them", 3),
        turn(1, "T5", "T6", "Now the docs", None, 1),
        turn(2, "T6", "T7", "Actually, the README", "README done", 2),
        turn(3, "T8", "T8", None, "Also tidied up", 1),
        turn(4, "T9", "T10", "Thanks", None, 2),
    ]
    timeline = await tracer.timeline(task_id)
    turn_of = {e["id"]: e.get("turnId") for e in timeline}
    expected_turns = [0, 0, None, 0, None, 1, 2, 2, 3, 4]
    assert [turn_of[i] for i in ids] == [turns[t]["id"] if t is not None else None for t in expected_turns]
    assert timeline[-1]["turnId"] == turns[4]["id"]


# ------------------------------------------------------------- read side


async def test_list_tasks_filters_and_pages(tracer: Tracer, subtests: pytest.Subtests) -> None:
    made = {}
    for i, title in enumerate(["Alpha bug", "beta FEATURE", "Gamma bug", "100% done", "delta"]):
        made[title] = (await tracer.ensure(f"rs-{i}", title))["taskId"]
    await tracer.post(
        "/ingest/v1/tasks/start", {"title": "Manual task", "taskId": "manual", "runtimeSource": "codex"}
    )
    await tracer.end("rs-1", completionReason="idle")
    await tracer.post("/ingest/v1/tasks/complete", {"taskId": made["Gamma bug"]})
    newest_first = ["manual", *reversed(list(made.values()))]

    async def ids(**params: Any) -> list[str]:
        out = data(await tracer.http.get("/api/v1/tasks", params=params))
        assert set(out) <= {"tasks", "nextCursor"}
        return [t["id"] for t in out["tasks"]]

    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({}, newest_first),
        (
            {"status": "running"},
            [t for t in newest_first if t not in (made["beta FEATURE"], made["Gamma bug"])],
        ),
        ({"status": ["waiting", "completed"]}, [made["Gamma bug"], made["beta FEATURE"]]),
        ({"runtimeSource": "codex"}, ["manual"]),
        ({"runtimeSource": CLAUDE, "q": "BUG"}, [made["Gamma bug"], made["Alpha bug"]]),
        ({"q": "100%"}, [made["100% done"]]),
        ({"q": "_"}, []),
    ]
    for params, expected in cases:
        with subtests.test(str(params)):
            assert await ids(**params) == expected
    with subtests.test("pages"):
        seen, cursor = [], None
        while True:
            page = data(
                await tracer.http.get(
                    "/api/v1/tasks", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
                )
            )
            seen += [t["id"] for t in page["tasks"]]
            cursor = page.get("nextCursor")
            if cursor is None:
                break
            assert len(page["tasks"]) == 2
        assert seen == newest_first
    with subtests.test("bad parameters"):
        before = await tracer.log()
        for params, details in [
            (
                {"status": "done"},
                zod(("status.0", enum_message(("running", "waiting", "completed", "errored"), "done"))),
            ),
            ({"limit": 201}, zod(("limit", "Number must be less than or equal to 200"))),
            ({"limit": -1}, zod(("limit", "Number must be greater than or equal to 1"))),
            ({"cursor": "!!!"}, zod(("cursor", "Invalid cursor"))),
            ({"cursor": "Ingi"}, zod(("cursor", "Invalid cursor"))),
        ]:
            err = error(
                await tracer.http.get("/api/v1/tasks", params=params),
                400,
                "validation_error",
                "Invalid request",
            )
            assert err["details"] == details, params
        assert await tracer.log() == before


async def test_task_detail_lineage(tracer: Tracer) -> None:
    root, _ = await new_task(tracer, "root", title="Root")
    child, _ = await new_task(tracer, "child", title="Child", parentTaskId=root)
    grandchild, _ = await new_task(tracer, "grandchild", title="Grandchild", parentTaskId=child)
    sibling, _ = await new_task(tracer, "sibling", title="Sibling", parentTaskId=root)
    tasks = {t: (await tracer.task(t))["task"] for t in (root, child, grandchild, sibling)}
    assert (await tracer.task(grandchild))["lineage"] == {
        "ancestors": [tasks[child], tasks[root]],
        "children": [],
    }
    assert (await tracer.task(child))["lineage"] == {
        "ancestors": [tasks[root]],
        "children": [tasks[grandchild]],
    }
    assert (await tracer.task(root))["lineage"] == {
        "ancestors": [],
        "children": [tasks[child], tasks[sibling]],
    }
    # a cycle made with tasks/link ends the chain instead of looping
    await tracer.post("/ingest/v1/tasks/link", {"taskId": root, "parentTaskId": grandchild})
    ancestors = (await tracer.task(grandchild))["lineage"]["ancestors"]
    assert [a["id"] for a in ancestors] == [child, root]


async def test_timeline_pages(tracer: Tracer) -> None:
    task_id, _ = await new_task(tracer)
    await tracer.ingest(
        "events", *(event("thought.logged", task_id, "planning", title=str(i)) for i in range(7))
    )
    first = data(await tracer.http.get(f"/api/v1/tasks/{task_id}/timeline", params={"limit": 3}))
    assert len(first["events"]) == 3 and "nextCursor" in first
    assert [e["title"] for e in await tracer.timeline(task_id, limit=3)] == ["Task", *map(str, range(7))]
    last = data(await tracer.http.get(f"/api/v1/tasks/{task_id}/timeline", params={"limit": 8}))
    assert set(last) == {"events"} and len(last["events"]) == 8
    err = error(
        await tracer.http.get(f"/api/v1/tasks/{task_id}/timeline", params={"limit": 1001}),
        400,
        "validation_error",
    )
    assert err["details"] == zod(("limit", "Number must be less than or equal to 1000"))
    err = error(
        await tracer.http.get(f"/api/v1/tasks/{task_id}/timeline", params={"cursor": "WyJ4Il0"}),
        400,
        "validation_error",
    )
    assert err["details"] == zod(("cursor", "Invalid cursor"))


async def test_task_detail_embeds_the_newest_timeline_events(tracer: Tracer) -> None:
    """Upstream's web app shows `data.timeline` of the task detail and never
    pages: it gets the newest 1,000 events in order; `timelineOlderCount` says
    how many earlier ones /timeline pages through from the start."""
    task_id, session_id = await new_task(tracer, title="Long task")
    for batch in range(11):
        await tracer.ingest(
            "events",
            *(event("thought.logged", task_id, "planning", title=f"{batch}-{i}") for i in range(100)),
        )
    detail = await tracer.task(task_id)
    first = data(await tracer.http.get(f"/api/v1/tasks/{task_id}/timeline", params={"limit": 1000}))
    rest = data(
        await tracer.http.get(f"/api/v1/tasks/{task_id}/timeline", params={"cursor": first["nextCursor"]})
    )
    everything = first["events"] + rest["events"]
    assert len(everything) == 1101 and "nextCursor" not in rest
    assert detail["timeline"] == everything[101:]
    assert detail["timeline"][-1]["title"] == "10-99"
    assert detail["timelineOlderCount"] == 101
    assert (detail["runtimeSource"], detail["runtimeSessionId"]) == (CLAUDE, "rs")
    # a short timeline comes whole
    small, _ = await new_task(tracer, "small", title="Small")
    small_detail = await tracer.task(small)
    assert [e["kind"] for e in small_detail["timeline"]] == ["task.start"]
    assert "timelineOlderCount" not in small_detail
    assert session_id in {s["id"] for s in detail["sessions"]}


async def test_display_title_is_derived_as_upstream_does(tracer: Tracer) -> None:
    """Upstream's TaskDisplayTitle: a generic `<runtime> — <slug or workspace
    name>` title gives way to the first user prompt, the task.start summary or
    the first real event (skipping "… session started" boilerplate); else the
    title without a " (session…)" suffix. Whitespace collapses; 120 characters at most."""
    long_prompt = "Refactor " + "the parser " * 20
    cases: list[tuple[str, str, list[str], str | None, str]] = [
        # (title, workspacePath, prompts, task.start summary, displayTitle)
        (
            "Claude Code — shop",
            "/src/shop",
            ["  \n  Fix the   cart\ntotal", "Then"],
            None,
            "Fix the cart total",
        ),
        ("Claude Code — shop", "/src/shop", [long_prompt], None, long_prompt[:117] + "..."),
        ("codex app-server - shop", "/src/shop/", ["Add tests"], None, "Add tests"),
        ("AI CLI \u2013 Shop (session 42)", "/src/shop", ["Ship it"], None, "Ship it"),
        ("Aider — fix-login", "/src/fix-login", ["Fix login"], None, "Fix login"),
        ("Claude — shop", "/src/shop", [], "Start from the summary", "Start from the summary"),
        ("Claude Code — shop", "/src/shop", ["Claude Code session started"], None, "Prompt"),
        ("Claude Code — shop (session abc)", "/src/shop", [], None, "Claude Code — shop"),
        ("  Fix   the parser ", "/src/shop", ["Something else"], None, "Fix the parser"),
        ("shop", "/src/shop", ["Not generic: no runtime prefix"], None, "shop"),
        ("Codex — other", "/src/shop", ["Not this workspace"], None, "Codex — other"),
        ("Claude Code — shop — again", "/src/shop", ["Three segments"], None, "Claude Code — shop — again"),
        ("Gemini — shop", "/src/shop", ["Not a listed runtime"], None, "Gemini — shop"),
    ]
    made = []
    for title, path, prompts, summary, expected in cases:
        start: dict[str, Any] = {"title": title, "workspacePath": path, "runtimeSource": "claude-plugin"}
        if summary is not None:
            start["summary"] = summary
        task_id = (await tracer.post("/ingest/v1/tasks/start", start))["task"]["id"]
        for prompt in prompts:
            await tracer.accepted_ids(
                "conversation", event("user.message", task_id, "user", title="Prompt", body=prompt)
            )
        made.append((task_id, title, expected))
    listed = {t["id"]: t for t in data(await tracer.http.get("/api/v1/tasks"))["tasks"]}
    for task_id, title, expected in made:
        assert (listed[task_id]["title"], listed[task_id]["displayTitle"]) == (title, expected)
        assert (await tracer.task(task_id))["task"]["displayTitle"] == expected
