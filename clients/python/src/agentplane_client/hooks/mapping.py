"""Each Claude Code and Codex hook as agent-tracer calls (seed 000's hook
tables; reference §10.2 for titles, lanes and metadata).

Every hook first ensures its runtime session (Claude's `session_id`), so a
hook that arrives first (after a restart, or with the SessionStart lost)
still lands in the right task. Inside a subagent (`agent_id` in the
payload) the events go to the virtual runtime session `sub--<agent_id>`, a
background child task of the parent. Codex sends the same JSON shapes for
the hooks it has (SessionStart, UserPromptSubmit, Pre/PostToolUse,
PermissionRequest, Pre/PostCompact, SubagentStart/Stop, Stop, StopFailure).
"""

from __future__ import annotations

import json
import os

from agentplane_client.hooks.plan import MAIN, PlanBuilder
from agentplane_client.hooks.tools import cut, record_tool
from agentplane_client.redaction import redact as redact_secrets

TYPE_CHECKING = False  # (typing itself costs a hook ~4 ms to import)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from agentplane_client.hooks.plan import Plan

SUB = "sub"


class Runtime:
    def __init__(self, name: str, source: str, label: str) -> None:
        self.name = name  # as in `agentplane hook <name>`
        self.source = source  # the tracer's runtimeSource
        self.label = label


RUNTIMES = {
    "claude-code": Runtime("claude-code", "claude-plugin", "Claude Code"),
    "codex": Runtime("codex", "codex", "Codex"),
}


class UnknownHook(ValueError):
    """The payload names no hook this adapter knows."""


class Hook:
    """One hook's payload (`p`) and the plan being built (`b`)."""

    def __init__(self, runtime: Runtime, p: dict[str, Any], b: PlanBuilder) -> None:
        self.runtime = runtime
        self.p = p
        self.b = b

    @property
    def session_id(self) -> str:
        return str(self.p.get("session_id") or "")

    @property
    def cwd(self) -> str:
        return str(self.p.get("cwd") or "")

    @property
    def project(self) -> str:
        return os.path.basename(self.cwd.rstrip("/")) or self.runtime.label

    def ensure(self, title: str | None = None, **fields: Any) -> None:
        self.b.ensure(self.session_id, title or self.project, workspacePath=self.cwd or None, **fields)

    def target(self) -> str:
        """Ensure the session this hook's events belong to; its name in the plan."""
        self.ensure()
        agent_id = self.p.get("agent_id")
        if not agent_id:
            return MAIN
        self.b.ensure(
            f"sub--{agent_id}",
            f"Subagent: {self.p.get('agent_type') or 'agent'}",
            name=SUB,
            parent=MAIN,
            workspacePath=self.cwd or None,
        )
        return SUB

    def event(
        self, route: str, kind: str, lane: str, title: str, body: str | None = None, **meta: Any
    ) -> None:
        self.b.event(route, kind, lane, title, body, _meta(meta), session=self.target())

    def context(self, title: str, trigger: str, lane: str = "planning", **meta: Any) -> None:
        self.event("workflow", "context.saved", lane, title, trigger=trigger, **meta)


def _meta(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if v is not None}


_SESSION_TITLES = {
    "startup": "Session started",
    "resume": "Session resumed",
    "clear": "Conversation cleared",
    "compact": "Session resumed after compact",
}


def session_start(h: Hook) -> None:
    source = str(h.p.get("source") or "startup")
    h.event(
        "workflow",
        "context.saved",
        "planning",
        _SESSION_TITLES.get(source, "Session started"),
        f"{h.runtime.label} session {'started' if source == 'startup' else source}",
        trigger=source,
        model=h.p.get("model"),
    )


def user_prompt_submit(h: Hook) -> None:
    prompt = str(h.p.get("prompt") or "")
    if prompt.strip() in ("exit", "/exit"):
        return
    h.ensure(cut(prompt, 120) or None)
    h.event(
        "conversation",
        "user.message",
        "user",
        cut(prompt, 120),
        prompt,
        captureMode="raw",
        source=h.runtime.source,
        turnId=h.p.get("turn_id"),
    )


def user_prompt_expansion(h: Hook) -> None:
    command = str(h.p.get("command_name") or "")
    args = str(h.p.get("command_args") or "")
    expanded = str(h.p.get("prompt") or h.p.get("expanded_prompt") or "")
    h.event(
        "events",
        "user.prompt.expansion",
        "user",
        cut(f"Slash: /{command} {args}".rstrip(), 200),
        cut(expanded, 2000) or None,
        expansionType=h.p.get("expansion_type"),
        commandName=command or None,
        commandArgs=args or None,
        commandSource=h.p.get("command_source"),
        expandedPromptBytes=len(expanded.encode()),
    )


def pre_tool_use(h: Hook) -> None:
    h.target()  # guarantees the session exists before the tool runs


def post_tool_use(h: Hook) -> None:
    record_tool(h.b, h.p, h.target())


def post_tool_use_failure(h: Hook) -> None:
    record_tool(h.b, h.p, h.target(), failed=True)


def permission_request(h: Hook) -> None:
    tool = str(h.p.get("tool_name") or "")
    summary = cut(json.dumps(h.p.get("tool_input"), ensure_ascii=False), 400)
    h.event(
        "events",
        "permission.request",
        "coordination",
        f"Permission requested: {tool}",
        summary,
        toolName=tool,
        toolUseId=h.p.get("tool_use_id"),
        toolInputSummary=summary,
        suggestionCount=len(h.p.get("permission_suggestions") or []),
    )


def permission_denied(h: Hook) -> None:
    tool = str(h.p.get("tool_name") or "")
    h.event(
        "workflow",
        "rule.logged",
        "rule",
        f"Permission denied: {tool}",
        str(h.p.get("reason") or "") or None,
        toolName=tool,
        ruleStatus="denied",
        ruleOutcome="auto_deny",
        rulePolicy="auto_mode_classifier",
    )


def instructions_loaded(h: Hook) -> None:
    path = str(h.p.get("file_path") or "")
    reason = str(h.p.get("load_reason") or "")
    verb = "reloaded" if reason == "compact" else "loaded"
    rel = os.path.relpath(path, h.cwd) if path and h.cwd and path.startswith(h.cwd) else path
    h.event(
        "lifecycle",
        "instructions.loaded",
        "planning",
        f"Instructions {verb}: {os.path.basename(path)}",
        rel or None,
        filePath=path,
        relPath=rel,
        loadReason=reason or None,
        memoryType=h.p.get("memory_type"),
    )


def setup(h: Hook) -> None:
    trigger = str(h.p.get("trigger") or "init")
    h.event("workflow", "setup.triggered", "planning", f"Setup: {trigger}", trigger=trigger)


def pre_compact(h: Hook) -> None:
    h.context("Context compacting", str(h.p.get("trigger") or "auto"), compactPhase="before")


def post_compact(h: Hook) -> None:
    h.context("Context compacted", str(h.p.get("trigger") or "auto"), compactPhase="after")


def post_tool_batch(h: Hook) -> None:
    count = len(h.p.get("tool_calls") or h.p.get("tools") or [])
    h.context(f"Parallel tool batch ({count})", "tool_batch_completed", itemCount=count)


def cwd_changed(h: Hook) -> None:
    h.context(
        "Working directory changed", "cwd_changed", oldCwd=h.p.get("old_cwd"), newCwd=h.p.get("new_cwd")
    )


def notification(h: Hook) -> None:
    kind = str(h.p.get("notification_type") or "message")
    message = str(h.p.get("message") or "")
    h.context(f"Notification: {cut(h.p.get('title') or kind, 80)}", f"notification:{kind}", message=message)


def config_change(h: Hook) -> None:
    source = str(h.p.get("source") or "settings")
    h.context(f"Config changed: {source}", f"config_change:{source}", filePath=h.p.get("file_path"))


def other_context(h: Hook) -> None:
    """Hooks with nothing to record but that they happened (TeammateIdle, Elicitation...)."""
    name = str(h.p.get("hook_event_name"))
    h.context(name, name.lower())


def file_changed(h: Hook) -> None:
    path = str(h.p.get("file_path") or "")
    h.event(
        "events",
        "file.changed",
        "background",
        f"File changed: {os.path.basename(path)}",
        path or None,
        filePath=path,
        change=h.p.get("event"),
    )


def worktree(h: Hook) -> None:
    create = h.p.get("hook_event_name") == "WorktreeCreate"
    path = str(h.p.get("worktree_path") or h.p.get("name") or "")
    h.event(
        "events",
        "worktree.create" if create else "worktree.remove",
        "background",
        f"Worktree {'created' if create else 'removed'}: {os.path.basename(path)}",
        worktreePath=path,
        worktreeAction="create" if create else "remove",
    )


def task_todo(h: Hook) -> None:
    done = h.p.get("hook_event_name") == "TaskCompleted"
    subject = str(h.p.get("task_subject") or h.p.get("task_id") or "task")
    h.event(
        "conversation",
        "todo.logged",
        "todos",
        cut(subject, 120),
        h.p.get("task_description") or None,
        todoId=h.p.get("task_id"),
        todoState="completed" if done else "added",
    )


def _subagent_fields(h: Hook, status: str) -> dict[str, Any]:
    return {
        "asyncTaskId": h.p.get("agent_id"),
        "asyncStatus": status,
        "agentId": h.p.get("agent_id"),
        "agentType": h.p.get("agent_type"),
    }


def subagent_start(h: Hook) -> None:
    agent_type = str(h.p.get("agent_type") or "agent")
    h.ensure()
    h.b.ensure(
        f"sub--{h.p.get('agent_id')}",
        f"Subagent: {agent_type}",
        name=SUB,
        parent=MAIN,
        workspacePath=h.cwd or None,
    )
    h.b.event(
        "workflow",
        "action.logged",
        "background",
        f"Subagent started: {agent_type}",
        metadata=_meta(_subagent_fields(h, "running")),
        refs={"childTaskId": f"{SUB}.taskId"},
    )


def subagent_stop(h: Hook) -> None:
    agent_type = str(h.p.get("agent_type") or "agent")
    h.ensure()
    h.b.event(
        "workflow",
        "action.logged",
        "background",
        f"Subagent finished: {agent_type}",
        cut(str(h.p.get("last_assistant_message") or ""), 400) or None,
        _meta(_subagent_fields(h, "completed")),
    )
    h.b.end(
        f"sub--{h.p.get('agent_id')}",
        completeTask=False,
        completionReason="assistant_turn_complete",
        summary=f"Subagent finished: {agent_type}",
    )


TRANSCRIPT_TAIL_BYTES = 256 * 1024


def last_assistant_text(path: Any) -> str:
    """The last assistant text in a Claude Code transcript (JSON lines), for
    versions whose Stop hook does not send `last_assistant_message`; only the
    file's tail is read."""
    if not isinstance(path, str) or not path:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - TRANSCRIPT_TAIL_BYTES))
            lines = f.read().splitlines()
    except OSError:
        return ""
    for raw in reversed(lines):
        try:
            entry = json.loads(raw)
        except ValueError:
            continue  # the first, cut line
        message = (
            entry.get("message") if isinstance(entry, dict) and entry.get("type") == "assistant" else None
        )
        content = message.get("content") if isinstance(message, dict) else None
        texts = [c["text"] for c in content or [] if isinstance(c, dict) and isinstance(c.get("text"), str)]
        if texts:
            return "\n".join(texts)
    return ""


def stop(h: Hook) -> None:
    """The answer closes the turn, and the runtime session ends (the task
    waits for the next prompt). First, unless the agent already went on once
    for a rule (`stop_hook_active`), the server checks the open turn against
    the `block` rules: when it says no, nothing more is sent and the hook
    tells the agent why it may not stop (the turn stays open)."""
    message = str(h.p.get("last_assistant_message") or "") or last_assistant_text(h.p.get("transcript_path"))
    reason = str(h.p.get("stop_reason") or "end_turn")
    session = h.target()
    if session == MAIN and not h.p.get("stop_hook_active"):
        h.b.stop_check(h.session_id)
    h.b.event(
        "conversation",
        "assistant.response",
        "user",
        cut(message, 120) or f"Response ({reason})",
        message or None,
        _meta({"source": h.runtime.source, "stopReason": reason, "turnId": h.p.get("turn_id")}),
        session=session,
    )
    if session == MAIN:
        h.b.end(
            h.session_id,
            completeTask=False,
            completionReason="assistant_turn_complete",
            summary=f"Assistant turn completed ({reason})",
        )


def stop_failure(h: Hook) -> None:
    error = str(h.p.get("error") or h.p.get("error_type") or "unknown")
    details = h.p.get("error_details") or h.p.get("error_message") or h.p.get("last_assistant_message")
    h.event(
        "conversation",
        "assistant.response",
        "user",
        f"Turn failed ({error})",
        str(details or "") or None,
        source=h.runtime.source,
        stopReason=f"error:{error}",
    )


def session_end(h: Hook) -> None:
    reason = str(h.p.get("reason") or "other")
    if reason == "clear":
        return
    explicit = reason == "prompt_input_exit"
    completion = "explicit_exit" if explicit else "runtime_terminated"
    h.ensure(resume=False)
    h.b.end(
        h.session_id,
        completeTask=explicit,
        completionReason=completion,
        summary=f"{h.runtime.label} session ended ({reason})",
    )
    label = {"prompt_input_exit": "user exit", "logout": "logout"}.get(reason, reason)
    h.b.event(
        "lifecycle",
        "session.ended",
        "user",
        f"Session ended ({label})",
        metadata=_meta(
            {
                "reason": reason,
                "completionReason": completion,
                "source": "session-end",
                "sessionEndedAt": h.b.at,
                "transcriptPath": h.p.get("transcript_path"),
                "permissionMode": h.p.get("permission_mode"),
                "cwd": h.cwd or None,
            }
        ),
    )


HANDLERS: dict[str, Callable[[Hook], None]] = {
    "SessionStart": session_start,
    "UserPromptSubmit": user_prompt_submit,
    "UserPromptExpansion": user_prompt_expansion,
    "PreToolUse": pre_tool_use,
    "PostToolUse": post_tool_use,
    "PostToolUseFailure": post_tool_use_failure,
    "PermissionRequest": permission_request,
    "PermissionDenied": permission_denied,
    "InstructionsLoaded": instructions_loaded,
    "Setup": setup,
    "PreCompact": pre_compact,
    "PostCompact": post_compact,
    "PostToolBatch": post_tool_batch,
    "CwdChanged": cwd_changed,
    "Notification": notification,
    "ConfigChange": config_change,
    "FileChanged": file_changed,
    "WorktreeCreate": worktree,
    "WorktreeRemove": worktree,
    "TaskCreated": task_todo,
    "TaskCompleted": task_todo,
    "SubagentStart": subagent_start,
    "SubagentStop": subagent_stop,
    "Stop": stop,
    "StopFailure": stop_failure,
    "SessionEnd": session_end,
    "TeammateIdle": other_context,
    "Elicitation": other_context,
    "ElicitationResult": other_context,
}


def plan_for(runtime: Runtime, payload: Any, redact: bool = True) -> Plan:
    """The plan for one hook payload (raises UnknownHook, or ValueError for
    a payload that is not a hook's)."""
    if not isinstance(payload, dict):
        raise ValueError(f"hook input is a JSON {type(payload).__name__}, not an object")
    name = str(payload.get("hook_event_name"))
    handler = HANDLERS.get(name)
    if handler is None:
        raise UnknownHook(f"unknown hook event {name!r}")
    if not payload.get("session_id"):
        raise ValueError(f"{name}: no session_id")
    b = PlanBuilder(runtime.name, name, runtime.source)
    handler(Hook(runtime, payload, b))
    if redact:  # every text it sends or spools, titles from prompts included, before it leaves memory
        b.plan["steps"] = redact_secrets(b.steps)
    return b.plan
