"""PostToolUse and PostToolUseFailure: one event per tool call, routed and
shaped per tool as the agent-tracer Claude Code plugin does (reference
§10.2); Codex's `apply_patch` and MCP tools too.
"""

from __future__ import annotations

import json
import os
import re

TYPE_CHECKING = False  # (typing itself costs a hook ~4 ms to import)
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:
    from agentplane_client.hooks.plan import PlanBuilder

_PATCH_FILE = re.compile(r"^\*\*\* (?:Add|Update|Delete) File: (.+)$", re.MULTILINE)
_EDIT_TOOLS = ("Edit", "MultiEdit", "Write", "NotebookEdit")
_TODO_TOOLS = ("TodoWrite", "TaskCreate", "TaskUpdate")


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def head_tail(text: str, head: int, tail: int) -> str:
    """The start and end of a long text (tool output), the middle elided."""
    if len(text) <= head + tail:
        return text
    return f"{text[:head]}\n…[{len(text) - head - tail} characters]…\n{text[-tail:]}"


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if isinstance(value.get("file"), dict):  # Read
            return as_text(value["file"])
        for key in ("output", "stdout", "content", "result", "text"):
            if isinstance(value.get(key), str):
                return str(value[key])
    if isinstance(value, list):
        return "\n".join(as_text(v.get("text") if isinstance(v, dict) else v) for v in value)
    return json.dumps(value, ensure_ascii=False)


def _rel(path: str, cwd: str) -> str:
    if cwd and path.startswith(cwd.rstrip("/") + "/"):
        return path[len(cwd.rstrip("/")) + 1 :]
    return path


def _command(tool_input: dict[str, Any]) -> str:
    command = tool_input.get("command")
    if isinstance(command, list):  # Codex may send argv
        return " ".join(str(c) for c in command)
    return str(command or "")


def record_tool(b: PlanBuilder, p: dict[str, Any], session: str, failed: bool = False) -> None:
    tool = str(p.get("tool_name") or "tool")
    tool_input = obj(p.get("tool_input"))
    cwd = str(p.get("cwd") or "")
    meta: dict[str, Any] = {"toolName": tool, "evidenceLevel": "proven", "evidenceReason": "hook payload"}
    if p.get("tool_use_id"):
        meta["toolUseId"] = p["tool_use_id"]
    if failed:
        meta.update(failed=True, error=str(p.get("error") or ""), isInterrupt=bool(p.get("is_interrupt")))
    output = "" if failed else as_text(p.get("tool_response"))

    def send(route: str, kind: str, lane: str, title: str, body: str | None = None, **extra: Any) -> None:
        if failed:  # a failure is a tool use whatever the tool (an MCP call: an agent activity)
            title, body = f"Failed {tool}", str(p.get("error") or "") or body
            kind = "agent.activity.logged" if route == "coordination" else "tool.used"
            route = route if route == "coordination" else "tool-activity"
        b.event(
            route,
            kind,
            lane,
            title,
            body,
            {k: v for k, v in {**meta, **extra.pop("metadata", {})}.items() if v is not None},
            session=session,
            **extra,
        )

    if tool in ("Bash", "PowerShell", "shell", "exec_command"):
        command = _command(tool_input)
        description = str(tool_input.get("description") or "")
        response = obj(p.get("tool_response"))
        stdout = str(response.get("stdout") or "") if response else output
        stderr = str(response.get("stderr") or "")
        prompt = "> " if tool == "PowerShell" else "$ "
        extra: dict[str, Any] = {"command": command, "stdout": head_tail(stdout, 4096, 4096)}
        if description:
            extra["description"] = description
        if stderr:
            extra["stderr"] = head_tail(stderr, 2048, 2048)
        for key, name in (
            ("exit_code", "exitCode"),
            ("exitCode", "exitCode"),
            ("interrupted", "interrupted"),
        ):
            if response.get(key) is not None:
                extra[name] = response[key]
        body = f"{description}\n{prompt}{command}" if description else f"{prompt}{command}"
        send(
            "tool-activity",
            "terminal.command",
            "implementation",
            cut(description or command, 80),
            body,
            metadata=extra,
        )
    elif tool in _EDIT_TOOLS:
        path = str(tool_input.get("file_path") or tool_input.get("notebook_path") or "")
        rel = _rel(path, cwd)
        extra = {"filePath": path, "relPath": rel, "resultText": head_tail(output, 2048, 2048)}
        if tool_input.get("replace_all") is not None:
            extra["editReplaceAll"] = bool(tool_input["replace_all"])
        send(
            "tool-activity",
            "tool.used",
            "implementation",
            f"{tool}: {os.path.basename(path)}",
            f"Modified {rel}",
            metadata=extra,
            file_paths=[path] if path else None,
        )
    elif tool == "apply_patch":
        patch = _command(tool_input) or as_text(tool_input.get("input"))
        paths = [os.path.join(cwd, f.strip()) if cwd else f.strip() for f in _PATCH_FILE.findall(patch)]
        names = ", ".join(os.path.basename(x) for x in paths) or "patch"
        send(
            "tool-activity",
            "tool.used",
            "implementation",
            f"Edit: {cut(names, 80)}",
            "\n".join(f"Modified {_rel(x, cwd)}" for x in paths) or None,
            metadata={
                "sourceTool": "apply_patch",
                "patch": head_tail(patch, 2048, 2048),
                "resultText": head_tail(output, 2048, 2048),
                **_cross_check(p),
            },
            file_paths=paths or None,
        )
    elif tool in ("Read", "Glob", "Grep", "WebFetch", "WebSearch", "LSP", "ToolSearch", "BashOutput"):
        title, extra = _exploration(tool, tool_input, cwd)
        extra["resultText"] = head_tail(output, 2048, 2048)
        path = str(tool_input.get("file_path") or "")
        send(
            "tool-activity",
            "tool.used",
            "exploration",
            title,
            metadata={**extra, "toolInput": tool_input},
            file_paths=[path] if path else None,
        )
    elif tool == "KillShell":
        send("tool-activity", "tool.used", "implementation", f"KillShell: {tool_input.get('shell_id', '')}")
    elif tool == "Monitor":
        script = str(tool_input.get("script") or tool_input.get("command") or "")
        description = str(tool_input.get("description") or "")
        send(
            "tool-activity",
            "monitor.observed",
            "background",
            cut(description or f"Monitor: {script}", 120),
            metadata={"monitorScript": script, "monitorDescription": description},
        )
    elif tool == "AskUserQuestion" and not failed:
        questions = tool_input.get("questions") or []
        first = questions[0] if questions and isinstance(questions[0], dict) else {}
        question = str(first.get("question") or tool_input.get("question") or "")
        b.event(
            "conversation",
            "question.logged",
            "questions",
            f"Ask: {cut(question, 60)}",
            question,
            {
                **meta,
                "questionId": f"tool-{p.get('tool_use_id', '')}",
                "questionPhase": "asked",
                "toolInput": tool_input,
            },
            session=session,
        )
    elif tool == "ExitPlanMode":
        send(
            "workflow",
            "plan.logged",
            "planning",
            "Exit plan mode",
            str(tool_input.get("plan") or "") or None,
            metadata={"planSource": "ExitPlanMode"},
        )
    elif tool in ("EnterPlanMode", "EnterWorktree", "ExitWorktree"):
        titles = {"EnterPlanMode": "Enter plan mode", "ExitWorktree": "Exit worktree"}
        title = (
            titles.get(tool) or f"Enter worktree: {tool_input.get('path') or tool_input.get('name') or ''}"
        )
        lane = "planning" if tool == "EnterPlanMode" else "background"
        send("workflow", "context.saved", lane, title, metadata={"trigger": f"mode_change:{tool}"})
    elif tool in _TODO_TOOLS and not failed:
        _todos(b, p, tool, tool_input, meta, session)
    elif tool.startswith("Cron"):
        send(
            "coordination",
            "agent.activity.logged",
            "coordination",
            f"Cron schedule: {tool_input.get('schedule') or tool_input.get('cron') or tool[4:].lower()}",
            metadata={"activityType": "delegation"},
        )
    elif tool in ("Agent", "Task"):
        description = str(tool_input.get("description") or tool_input.get("subagent_type") or "")
        send(
            "coordination",
            "agent.activity.logged",
            "coordination",
            f"Agent: {description}",
            cut(str(tool_input.get("prompt") or ""), 400) or None,
            metadata={
                "activityType": "delegation",
                "agentName": tool_input.get("subagent_type"),
                "agentModel": tool_input.get("model"),
                "agentRunInBackground": tool_input.get("run_in_background"),
            },
        )
    elif tool == "Skill":
        name = str(tool_input.get("skill") or tool_input.get("name") or "")
        args = tool_input.get("args")
        send(
            "coordination",
            "agent.activity.logged",
            "coordination",
            f"Skill: {name}",
            f"args: {args}" if args else None,
            metadata={"activityType": "skill_use", "skillName": name},
        )
    elif tool.startswith("mcp__"):
        _, server, name = [*tool.split("__", 2), "", ""][:3]
        send(
            "coordination",
            "agent.activity.logged",
            "coordination",
            f"MCP: {server}/{name}",
            metadata={
                "activityType": "mcp_call",
                "mcpServer": server,
                "mcpTool": name,
                "toolInput": tool_input,
                **_cross_check(p),
            },
        )
    else:
        send(
            "tool-activity",
            "tool.used",
            "implementation",
            tool,
            metadata={"toolInput": tool_input, "resultText": head_tail(output, 2048, 2048)},
        )


def _cross_check(p: dict[str, Any]) -> dict[str, Any]:
    """Codex's rollout file reports these calls too: the same key merges them."""
    if p.get("tool_use_id"):
        return {"crossCheck": {"source": "hook", "dedupeKey": str(p["tool_use_id"])}}
    return {}


def _exploration(tool: str, tool_input: dict[str, Any], cwd: str) -> tuple[str, dict[str, Any]]:
    if tool == "Read":
        path = str(tool_input.get("file_path") or "")
        offset, limit = tool_input.get("offset"), tool_input.get("limit")
        lines = f" (lines {offset or 1}-{(offset or 1) + limit - 1})" if isinstance(limit, int) else ""
        return f"Read: {os.path.basename(path)}{lines}", {"readOffset": offset, "readLimit": limit}
    if tool in ("Glob", "Grep"):
        pattern = str(tool_input.get("pattern") or "")
        mode = tool_input.get("output_mode")
        title = f"{tool}: {pattern}" + (f" [{mode}]" if mode else "")
        return cut(title, 120), {
            "searchPattern": pattern,
            "searchPath": tool_input.get("path"),
            "searchGlob": tool_input.get("glob"),
            "grepOutputMode": mode,
        }
    if tool == "WebSearch":
        query = str(tool_input.get("query") or "")
        return cut(f"WebSearch: {query}", 120), {"webQuery": query}
    if tool == "WebFetch":
        url = str(tool_input.get("url") or "")
        return cut(f"WebFetch: {url}", 120), {"webUrls": [url], "webPrompt": tool_input.get("prompt")}
    if tool == "LSP":
        return cut(f"LSP {tool_input.get('operation', '')}: {tool_input.get('symbol', '')}", 120), {}
    if tool == "ToolSearch":
        return cut(f"ToolSearch: {tool_input.get('query', '')}", 120), {}
    return f"BashOutput: {tool_input.get('bash_id') or tool_input.get('shell_id') or ''}", {}


def _todos(
    b: PlanBuilder,
    p: dict[str, Any],
    tool: str,
    tool_input: dict[str, Any],
    meta: dict[str, Any],
    session: str,
) -> None:
    """One `todo.logged` per item and state. Its id is derived from the
    session, the item and the state, so TodoWrite's full list, sent again on
    every change, records each item's state once."""
    import uuid  # only here: slow to import

    if tool == "TodoWrite":
        items = [t for t in tool_input.get("todos") or [] if isinstance(t, dict)]
    else:
        items = [tool_input]
    for item in items:
        text = str(item.get("content") or item.get("subject") or item.get("description") or "")
        todo_id = str(item.get("id") or item.get("taskId") or text)
        state = {"pending": "added", "in_progress": "in_progress", "completed": "completed"}.get(
            str(item.get("status") or "pending"), str(item.get("status"))
        )
        key = f"{p.get('session_id')}\x1f{todo_id}\x1f{state}"
        b.event(
            "conversation",
            "todo.logged",
            "todos",
            cut(text or todo_id, 120),
            metadata={**meta, "todoId": todo_id, "todoState": state, "priority": item.get("priority")},
            session=session,
            event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, key)),
        )
