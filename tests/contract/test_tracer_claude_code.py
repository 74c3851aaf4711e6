"""A Claude Code session replayed over HTTP as the Agent Tracer plugin sends
it (reference §10: each hook ensures the runtime session, then posts its
events to the endpoint the seed's hook table names), and the resulting
task, sessions, turns and timeline checked whole.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import Server
from tests.contract.tracer_contract import CLAUDE, NOW, UUID, Tracer, session, shown, slug_task, view

PROJECT = "/home/dev/agentplane"
PROMPT_1 = "The parser test fails on empty input. Find out why and fix it."
PROMPT_2 = "Now have a subagent look for other callers of parse()."
ANSWER_1 = "Fixed: parse() returned None for empty input; it now returns an empty list."
ANSWER_2 = "The only other caller is cli.py; it already handles an empty list."
TURN_SUMMARY = "Assistant turn completed (end_turn)"


class ClaudeCodePlugin:
    """The hooks of one Claude Code session (`session_id` "cc-1")."""

    def __init__(self, tracer: Tracer, session_id: str = "cc-1") -> None:
        self.tracer = tracer
        self.session_id = session_id
        self.monitor: dict[str, str] = {}

    async def ensure(
        self, runtime_session_id: str | None = None, title: str = "agentplane", **extra: Any
    ) -> dict[str, Any]:
        """Every hook's first call; the title only names a new task."""
        return await self.tracer.ensure(
            runtime_session_id or self.session_id, title, workspacePath=PROJECT, **extra
        )

    async def post(self, endpoint: str, ensured: dict[str, Any], **item: Any) -> str:
        body = {"taskId": ensured["taskId"], "sessionId": ensured["sessionId"], **item}
        [event_id, *_] = await self.tracer.accepted_ids(endpoint, body)
        return event_id

    async def session_start(self) -> dict[str, Any]:
        ensured = await self.ensure()
        await self.post(
            "workflow",
            ensured,
            kind="context.saved",
            lane="planning",
            title="Session started",
            body="Claude Code session started",
            metadata={"trigger": "startup"},
        )
        return ensured

    async def user_prompt_submit(self, prompt: str, phase: str) -> dict[str, Any]:
        ensured = await self.ensure()
        await self.post(
            "conversation",
            ensured,
            kind="user.message",
            lane="user",
            title=prompt[:120],
            body=prompt,
            metadata={"messageId": f"msg-{phase}", "captureMode": "raw", "source": CLAUDE, "phase": phase},
        )
        return ensured

    async def tool(self, endpoint: str, runtime_session_id: str | None = None, **item: Any) -> None:
        await self.ensure(runtime_session_id)  # PreToolUse guarantees the session
        await self.post(endpoint, await self.ensure(runtime_session_id), **item)

    async def stop(self, message: str) -> None:
        ensured = await self.ensure()
        await self.post(
            "conversation",
            ensured,
            kind="assistant.response",
            lane="user",
            title=message[:120],
            body=message,
            metadata={"messageId": "resp", "source": CLAUDE, "stopReason": "end_turn"},
        )
        await self.tracer.end(
            self.session_id,
            completeTask=False,
            completionReason="assistant_turn_complete",
            summary=TURN_SUMMARY,
        )

    async def subagent_start(self, agent_id: str, agent_type: str) -> dict[str, Any]:
        parent = await self.ensure()
        child = await self.ensure(
            f"sub--{agent_id}",
            title=f"Subagent: {agent_type}",
            parentTaskId=parent["taskId"],
            parentSessionId=parent["sessionId"],
        )
        await self.post(
            "workflow",
            parent,
            kind="action.logged",
            lane="background",
            title=f"Subagent started: {agent_type}",
            metadata={"asyncStatus": "running", "agentId": agent_id, "childTaskId": child["taskId"]},
        )
        return child

    async def subagent_stop(self, agent_id: str, agent_type: str) -> None:
        parent = await self.ensure()
        await self.post(
            "workflow",
            parent,
            kind="action.logged",
            lane="background",
            title=f"Subagent finished: {agent_type}",
            metadata={"asyncStatus": "completed", "agentId": agent_id},
        )
        await self.tracer.end(
            f"sub--{agent_id}",
            completeTask=False,
            completionReason="assistant_turn_complete",
            summary=f"Subagent finished: {agent_type}",
        )

    async def session_end(self, reason: str) -> dict[str, Any]:
        ensured = await self.ensure(resume=False)
        exit_ = reason == "prompt_input_exit"
        await self.tracer.end(
            self.session_id,
            completeTask=exit_,
            completionReason="explicit_exit" if exit_ else "runtime_terminated",
            summary=f"Claude Code session ended ({reason})",
        )
        await self.post(
            "lifecycle",
            ensured,
            kind="session.ended",
            lane="user",
            title="Session ended (user exit)",
            metadata={"reason": reason, "completionReason": "explicit_exit", "source": "session-end"},
        )
        return ensured


async def test_a_claude_code_session(server: Server) -> None:
    tracer = Tracer(server.http)
    plugin = ClaudeCodePlugin(tracer)

    # --- first prompt: read, run the tests, edit, todo, answer
    start = await plugin.session_start()
    task_id, first_session = start["taskId"], start["sessionId"]
    assert start["taskCreated"] and start["sessionCreated"]
    assert await plugin.user_prompt_submit(PROMPT_1, "initial") == {
        **start,
        "taskCreated": False,
        "sessionCreated": False,
    }
    await plugin.tool(
        "tool-activity",
        kind="tool.used",
        lane="exploration",
        title="Read: parser.py (lines 1-80)",
        filePaths=[f"{PROJECT}/src/parser.py"],
        metadata={"toolName": "Read", "readOffset": 1, "readLimit": 80},
        toolName="Read",  # a top-level extra the hooks send: ignored
    )
    await plugin.tool(
        "tool-activity",
        kind="terminal.command",
        lane="implementation",
        title="pytest tests/test_parser.py",
        body="$ pytest tests/test_parser.py",
        metadata={"command": "pytest tests/test_parser.py", "exitCode": 1},
    )
    await plugin.tool(
        "tool-activity",
        kind="tool.used",
        lane="implementation",
        title="Edit: parser.py",
        body="Modified src/parser.py",
        filePaths=[f"{PROJECT}/src/parser.py"],
        metadata={"toolName": "Edit", "relPath": "src/parser.py"},
    )
    await plugin.tool(
        "conversation",
        kind="todo.logged",
        lane="todos",
        title="Run the whole suite",
        metadata={"todoId": "t1", "todoState": "added", "toolName": "TodoWrite"},
    )
    await plugin.stop(ANSWER_1)
    assert await tracer.status(task_id) == "waiting"

    # --- second prompt: the session resumes; a subagent runs in the background
    second = await plugin.user_prompt_submit(PROMPT_2, "follow_up")
    assert second == {"taskId": task_id, "sessionId": UUID, "taskCreated": False, "sessionCreated": True}
    second_session = second["sessionId"]
    assert await tracer.status(task_id) == "running"
    await plugin.tool(
        "coordination",
        kind="agent.activity.logged",
        lane="coordination",
        title="Agent: find callers",
        metadata={"activityType": "delegation", "agentName": "explore"},
    )
    child = await plugin.subagent_start("a1", "explore")
    await plugin.tool(
        "tool-activity",
        runtime_session_id="sub--a1",
        kind="tool.used",
        lane="exploration",
        title="Grep: parse\\(",
        metadata={"toolName": "Grep", "searchPattern": "parse\\("},
    )
    await tracer.ingest(
        "telemetry",
        {
            "taskId": task_id,
            "sessionId": second_session,
            "inputTokens": 1200,
            "outputTokens": 300,
            "costUsd": 0.02,
        },
    )
    await plugin.subagent_stop("a1", "explore")
    await plugin.stop(ANSWER_2)

    # --- the user exits
    end = await plugin.session_end("prompt_input_exit")
    assert end == {
        "taskId": task_id,
        "sessionId": second_session,
        "taskCreated": False,
        "sessionCreated": False,
    }

    # --- the task, its sessions, lineage, turns and tokens
    detail = await tracer.task(task_id)
    child_task = shown(
        slug_task(
            "Subagent: explore",
            "subagent-explore",
            task_id=child["taskId"],
            status="completed",
            kind="background",
            workspacePath=PROJECT,
            parentTaskId=task_id,
            parentSessionId=second_session,
            runtimeSource=CLAUDE,
        )
    )
    tokens = {
        "inputTokens": 1200,
        "outputTokens": 300,
        "cacheReadTokens": 0,
        "cacheCreateTokens": 0,
        "costUsd": 0.02,
        "events": 1,
    }
    no_tokens = {**tokens, "inputTokens": 0, "outputTokens": 0, "costUsd": 0, "events": 0}

    def turn(session_id: str, asked: str, answer: str, events: int) -> dict[str, Any]:
        return {
            "id": UUID,
            "sessionId": session_id,
            "taskId": task_id,
            "turnIndex": 0,
            "status": "closed",
            "startedAt": NOW,
            "endedAt": NOW,
            "askedText": asked,
            "assistantText": answer,
            "rulesEvaluatedCount": 0,
            "eventCount": events,
        }

    assert detail == {
        # a bare project name is not upstream's generic `<runtime> — <project>`: it shows as itself
        "task": shown(
            slug_task(
                "agentplane",
                "agentplane",
                task_id=task_id,
                status="completed",
                workspacePath=PROJECT,
                runtimeSource=CLAUDE,
            )
        ),
        "sessions": [
            session(first_session, task_id, "completed", summary=TURN_SUMMARY, tokenUsage=no_tokens),
            session(second_session, task_id, "completed", summary=TURN_SUMMARY, tokenUsage=tokens),
        ],
        "lineage": {"ancestors": [], "children": [child_task]},
        # user.message, Read, Bash, Edit, its file.changed, todo, answer; then
        # user.message, Agent, subagent started, telemetry, subagent finished, answer
        "turns": [turn(first_session, PROMPT_1, ANSWER_1, 7), turn(second_session, PROMPT_2, ANSWER_2, 6)],
        "tokenUsage": tokens,
        # no runtimeSessionId: completing the task dropped its runtime binding
        "timeline": await tracer.timeline(task_id),
    }

    # --- the timeline, in order
    timeline = detail["timeline"]
    assert [(e["kind"], e["lane"], e["title"]) for e in timeline] == [
        ("task.start", "user", "agentplane"),
        ("context.saved", "planning", "Session started"),
        ("user.message", "user", PROMPT_1),
        ("tool.used", "exploration", "Read: parser.py (lines 1-80)"),
        ("terminal.command", "implementation", "pytest tests/test_parser.py"),
        ("tool.used", "implementation", "Edit: parser.py"),
        ("file.changed", "implementation", "parser.py"),
        ("todo.logged", "todos", "Run the whole suite"),
        ("assistant.response", "user", ANSWER_1),
        ("user.message", "user", PROMPT_2),
        ("agent.activity.logged", "coordination", "Agent: find callers"),
        ("action.logged", "background", "Subagent started: explore"),
        ("token.usage", "telemetry", "token.usage"),
        ("action.logged", "background", "Subagent finished: explore"),
        ("assistant.response", "user", ANSWER_2),
        ("task.complete", "user", "Task completed"),
        ("session.ended", "user", "Session ended (user exit)"),
    ]
    edit, derived = timeline[5], timeline[6]
    assert derived == view(
        derived["id"],
        "file.changed",
        task_id,
        "implementation",
        session_id=first_session,
        title="parser.py",
        body=f"{PROJECT}/src/parser.py",
        metadata={
            "sourceKind": "tool.used",
            "sourceEventId": edit["id"],
            "filePaths": [f"{PROJECT}/src/parser.py"],
        },
        file_paths=[f"{PROJECT}/src/parser.py"],
        turn_id=detail["turns"][0]["id"],
    )
    assert timeline[15]["body"] == "Claude Code session ended (prompt_input_exit)"
    assert "turnId" not in timeline[16] and timeline[16]["sessionId"] == second_session
    assert [e.get("turnId") for e in timeline[:3]] == [None, None, detail["turns"][0]["id"]]

    # --- the subagent's own task: its Grep, then completion with the hook's summary
    assert [(e["kind"], e.get("body")) for e in await tracer.timeline(child["taskId"])] == [
        ("task.start", None),
        ("tool.used", None),
        ("task.complete", "Subagent finished: explore"),
    ]

    # --- the monitor sessions are in the shared session list too
    shared = (await server.http.get("/sessions")).json()["sessions"]
    assert {s["session_id"]: s["status"] for s in shared} == {
        first_session: "finished",
        second_session: "finished",
        child["sessionId"]: "finished",
    }

    # --- a new Claude Code session after the exit starts a new task
    again = await plugin.session_start()
    assert again["taskCreated"] is True and again["taskId"] != task_id
