"""The hooks redact before anything touches disk: with the server down,
every recorded hook of a Claude Code and a Codex session, secrets put in
every text it carries (prompts, which become task titles, tool inputs and
outputs, messages), is spooled, and the spool holds none of them; with
AGENTPLANE_HOOK_REDACT=off it holds them as sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentplane_client.hooks.config import HookConfig
from agentplane_client.hooks.run import run_hook

from tests.conftest import free_port
from tests.e2e.hook_support import Hooks, payloads, spooled
from tests.redaction_support import FOUND, SECRETS

# What the adapter reads as structure rather than text: left as recorded.
STRUCTURE = {
    "session_id", "hook_event_name", "tool_name", "cwd", "transcript_path", "permission_mode", "source",
    "agent_id", "agent_type", "subagent_type", "tool_use_id", "turn_id", "model", "trigger", "matcher",
    "notification_type", "reason", "stop_reason", "status", "type", "id", "call_id", "name",
}  # fmt: skip
PROMPT = "deploy with AWS key AKIAIOSFODNN7EXAMPLE and password=hunter2"


def with_secrets(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: with_secrets(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [with_secrets(v, key) for v in value]
    if isinstance(value, str) and key not in STRUCTURE:
        return PROMPT if key == "prompt" else value + SECRETS
    return value


def spool_everything(tmp_path: Path, env: dict[str, str] | None = None) -> str:
    """Every recorded hook, secrets in, against a port where nothing listens."""
    hooks = Hooks(f"http://127.0.0.1:{free_port()}", tmp_path / "state", timeout_ms=200)
    config = HookConfig.from_env({**hooks.env, **(env or {})})

    for runtime in ("claude-code", "codex"):
        for name, raw in payloads(runtime):
            result = run_hook(runtime, json.dumps(with_secrets(json.loads(raw))).encode(), config)
            assert (result.delivered, result.spooled) == (False, True), name
    assert spooled(hooks)
    return hooks.spool.read_text()


def test_the_spool_never_holds_a_secret(tmp_path: Path) -> None:
    spool = spool_everything(tmp_path)
    assert [s for s in (*FOUND, "hunter2") if s in spool] == []
    titles = [
        step["body"]["title"]
        for plan in map(json.loads, spool.splitlines())
        for step in plan["steps"]
        if step["op"] == "ensure"
    ]
    assert "deploy with AWS key [REDACTED] and password=[REDACTED]" in titles  # the first prompt's title


def test_redaction_off_spools_as_sent(tmp_path: Path) -> None:
    spool = spool_everything(tmp_path, {"AGENTPLANE_HOOK_REDACT": "off"})
    assert all(s in spool for s in FOUND)


def test_bad_input_is_logged_without_its_secrets(tmp_path: Path) -> None:
    hooks = Hooks(f"http://127.0.0.1:{free_port()}", tmp_path / "state", timeout_ms=200)
    truncated = b'{"session_id": "cc-1", "hook_event_name": "UserPromptSubmit", "prompt": "' + PROMPT.encode()
    run_hook("claude-code", truncated, hooks.config)
    assert "input ignored" in hooks.log()
    assert "AKIAIOSFODNN7EXAMPLE" not in hooks.log() and "hunter2" not in hooks.log()
