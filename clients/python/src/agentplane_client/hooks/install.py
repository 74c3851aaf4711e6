"""`agentplane hooks install|uninstall`: the runtimes' hook configuration.

Claude Code reads `hooks` from `.claude/settings.json` (a project) or
`~/.claude/settings.json` (the user); Codex from `.codex/hooks.json` or
`$CODEX_HOME/hooks.json` (`~/.codex`). Both use the same shape:
`{"hooks": {"<Event>": [{"matcher"?, "hooks": [{"type": "command",
"command", "timeout"}]}]}}`.

Install merges: every other key, event and hook is kept; an event that
already runs the adapter is left alone, so installing twice changes
nothing. Uninstall removes the adapter's entries (and the groups and events
that held only them), which restores a file the installer changed.
`WorktreeCreate` is never installed: Claude Code expects that hook to
create the worktree and print its path.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentplane_client.hooks.mapping import HANDLERS

HOOK_TIMEOUT_SECONDS = 5
CODEX_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PermissionRequest",
    "PreCompact",
    "PostCompact",
    "SubagentStart",
    "SubagentStop",
    "Stop",
    "StopFailure",
)
CLAUDE_EVENTS = tuple(e for e in HANDLERS if e != "WorktreeCreate")
EVENTS = {"claude-code": CLAUDE_EVENTS, "codex": CODEX_EVENTS}
# A command that runs this adapter, whatever its path or spelling.
_OURS = re.compile(
    r"(?:agentplane-hook|agentplane_client\.hooks|agentplane\s+hook)\s+(?:claude-code|codex)\b"
)


@dataclass
class Change:
    path: Path
    before: str  # "" when the file does not exist
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(True), self.after.splitlines(True), str(self.path), str(self.path)
            )
        )


def settings_path(runtime: str, project: Path | None, env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    home = Path(env.get("HOME") or Path.home())
    if runtime == "claude-code":
        return (project / ".claude" if project else home / ".claude") / "settings.json"
    codex_home = Path(env["CODEX_HOME"]) if env.get("CODEX_HOME") else home / ".codex"
    return (project / ".codex" if project else codex_home) / "hooks.json"


def default_command(runtime: str) -> str:
    """The adapter's command: the `agentplane-hook` script by absolute path
    (the agent's PATH may not have it), else this Python running the module."""
    script = shutil.which("agentplane-hook") or str(Path(sys.executable).with_name("agentplane-hook"))
    if Path(script).exists():
        return f"{shlex.quote(script)} {runtime}"
    return f"{shlex.quote(sys.executable)} -m agentplane_client.hooks {runtime}"


def _load(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return "", {}
    settings = json.loads(text) if text.strip() else {}
    if not isinstance(settings, dict):
        raise ValueError(f"{path}: not a JSON object")
    return text, settings


def _dump(settings: dict[str, Any], like: str) -> str:
    """JSON indented as the file was (two spaces for a new file)."""
    indent: str | int = 2
    for line in like.splitlines()[1:]:
        stripped = line.lstrip(" \t")
        if stripped and stripped != line:
            indent = line[: len(line) - len(stripped)]
            break
    return json.dumps(settings, indent=indent, ensure_ascii=False) + "\n"


def _is_ours(hook: Any) -> bool:
    return isinstance(hook, dict) and bool(_OURS.search(str(hook.get("command") or "")))


def _change(path: Path, before: str, original: dict[str, Any], settings: dict[str, Any]) -> Change:
    """The file's new text, or its old text untouched when nothing changed."""
    return Change(path, before, before if settings == original else _dump(settings, before))


def install(runtime: str, path: Path, command: str, events: tuple[str, ...] | None = None) -> Change:
    before, settings = _load(path)
    original = json.loads(json.dumps(settings))
    hooks = settings.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise ValueError(f"{path}: `hooks` is not an object")
    for event in events or EVENTS[runtime]:
        groups = hooks.setdefault(event, [])
        if not isinstance(groups, list):
            raise ValueError(f"{path}: `hooks.{event}` is not a list")
        if not any(_is_ours(h) for g in groups if isinstance(g, dict) for h in g.get("hooks") or []):
            groups.append(
                {"hooks": [{"type": "command", "command": command, "timeout": HOOK_TIMEOUT_SECONDS}]}
            )
    return _change(path, before, original, settings)


def uninstall(path: Path) -> Change:
    before, settings = _load(path)
    original = json.loads(json.dumps(settings))
    hooks = settings.get("hooks")
    if not isinstance(hooks, dict):
        return Change(path, before, before)
    for event, groups in list(hooks.items()):
        if not isinstance(groups, list):
            continue
        kept = []
        for group in groups:
            inner = group.get("hooks") if isinstance(group, dict) else None
            if isinstance(inner, list) and any(_is_ours(h) for h in inner):
                rest = [h for h in inner if not _is_ours(h)]
                if rest:
                    kept.append({**group, "hooks": rest})
            else:
                kept.append(group)
        if kept or not groups:
            hooks[event] = kept
        else:
            del hooks[event]  # it held only the adapter
    if not hooks and original["hooks"]:
        del settings["hooks"]
    return _change(path, before, original, settings)


def write(change: Change) -> None:
    if not change.changed:
        return
    change.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = change.path.with_name(change.path.name + ".agentplane.tmp")
    tmp.write_text(change.after, encoding="utf-8")
    os.replace(tmp, change.path)
