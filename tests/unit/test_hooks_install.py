"""`agentplane hooks install|uninstall` on the runtimes' settings files:
merged with what is there, idempotent, `--dry-run`, and uninstall restores
the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agentplane_client.hooks.install import CLAUDE_EVENTS, CODEX_EVENTS

AGENTPLANE = Path(sys.executable).with_name("agentplane")

EXISTING = {
    "permissions": {"allow": ["Bash(npm test:*)"], "deny": ["Read(./.env)"]},
    "model": "opus",
    "hooks": {
        "PostToolUse": [
            {
                "matcher": "Edit|Write",
                "hooks": [{"type": "command", "command": "prettier --write", "timeout": 30}],
            }
        ],
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
    },
}


def hooks_cli(home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home)}
    env.pop("CODEX_HOME", None)
    return subprocess.run(
        [str(AGENTPLANE), "hooks", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def commands(settings: dict[str, Any], event: str) -> list[str]:
    return [h["command"] for g in settings["hooks"].get(event, []) for h in g["hooks"]]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "shop"
    (path / ".claude").mkdir(parents=True)
    (path / ".claude" / "settings.json").write_text(json.dumps(EXISTING, indent=4) + "\n")
    return path


def test_install_merges_is_idempotent_and_uninstall_restores(tmp_path: Path, project: Path) -> None:
    settings_file = project / ".claude" / "settings.json"
    original = settings_file.read_text()

    dry = hooks_cli(tmp_path, project, "install", "--runtime", "claude-code", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    added = [line for line in dry.stdout.splitlines() if line.startswith("+") and "agentplane-hook" in line]
    assert len(added) == len(CLAUDE_EVENTS)
    assert not [line for line in dry.stdout.splitlines() if line.startswith("-") and "---" not in line]
    assert settings_file.read_text() == original  # a dry run writes nothing

    done = hooks_cli(tmp_path, project, "install", "--runtime", "claude-code")
    assert done.returncode == 0, done.stderr
    installed = json.loads(settings_file.read_text())
    assert installed["permissions"] == EXISTING["permissions"] and installed["model"] == "opus"
    assert set(installed["hooks"]) == set(CLAUDE_EVENTS)
    assert "WorktreeCreate" not in installed["hooks"]  # Claude Code expects that hook to make the worktree
    [ours] = commands(installed, "SessionStart")
    assert ours.endswith("agentplane-hook claude-code")
    assert commands(installed, "PostToolUse") == ["prettier --write", ours]  # theirs first, kept
    assert commands(installed, "Stop") == ["notify-send done", ours]

    again = hooks_cli(tmp_path, project, "install", "--runtime", "claude-code")
    assert again.returncode == 0 and "already installed, nothing to do" in again.stdout
    assert json.loads(settings_file.read_text()) == installed

    removed = hooks_cli(tmp_path, project, "uninstall", "--runtime", "claude-code")
    assert removed.returncode == 0, removed.stderr
    assert settings_file.read_text() == original  # its indentation kept too
    assert "already clean" in hooks_cli(tmp_path, project, "uninstall", "--runtime", "claude-code").stdout


def test_user_install_for_codex(tmp_path: Path) -> None:
    """--user writes ~/.codex/hooks.json (created when missing); uninstall
    leaves the file with nothing of ours."""
    done = hooks_cli(tmp_path, tmp_path, "install", "--runtime", "codex", "--user")
    assert done.returncode == 0, done.stderr
    path = tmp_path / ".codex" / "hooks.json"
    installed = json.loads(path.read_text())
    assert list(installed["hooks"]) == list(CODEX_EVENTS)
    assert all(commands(installed, e)[0].endswith("agentplane-hook codex") for e in CODEX_EVENTS)
    hooks_cli(tmp_path, tmp_path, "uninstall", "--runtime", "codex", "--user")
    assert json.loads(path.read_text()) == {}


def test_a_settings_file_that_is_not_json_is_left_alone(tmp_path: Path, project: Path) -> None:
    settings_file = project / ".claude" / "settings.json"
    settings_file.write_text("{ not json")
    result = hooks_cli(tmp_path, project, "install", "--runtime", "claude-code")
    assert result.returncode == 1 and "agentplane hooks:" in result.stderr
    assert settings_file.read_text() == "{ not json"


def test_an_unknown_runtime_is_refused(tmp_path: Path) -> None:
    result = hooks_cli(tmp_path, tmp_path, "install", "--runtime", "cursor")
    assert result.returncode == 2 and "invalid choice: 'cursor'" in result.stderr
