"""The hook adapter's settings, from the environment the agent runs it in.

| variable | default |
|---|---|
| `AGENTPLANE_URL` (or seed 004's `AGENT_ORCHESTRATOR_SESSION_MANAGER_URL`) | `http://127.0.0.1:8765` |
| `AGENTPLANE_API_KEY` | none (sent as `X-API-Key`) |
| `AGENTPLANE_HOOK_TIMEOUT_MS` | 500: the most a hook waits on the server |
| `AGENTPLANE_HOOK_STATE_DIR` | `$XDG_STATE_HOME/agentplane`, else `~/.agentplane` |
| `AGENTPLANE_HOOK_SPOOL_DIR` | `<state dir>/spool` |
| `AGENTPLANE_HOOK_SPOOL_MAX_BYTES` | 16 MiB |
| `AGENTPLANE_HOOK_LOG` | `<state dir>/hook.log` |
| `AGENTPLANE_HOOK_REDACT` | `on` (`off` sends tool inputs and outputs as they are) |
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # (typing itself costs a hook ~4 ms to import)
if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_URL = "http://127.0.0.1:8765"
DEFAULT_TIMEOUT_MS = 500
DEFAULT_SPOOL_MAX_BYTES = 16 * 1024 * 1024
_OFF = ("0", "off", "false", "no")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(env.get(name) or default)
    except ValueError:
        return default


class HookConfig:
    """The settings (paths are strings: pathlib is too slow to import here)."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        spool_dir: str = os.path.join("~", ".agentplane", "spool"),
        spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        log_file: str = os.path.join("~", ".agentplane", "hook.log"),
        redact: bool = True,
    ) -> None:
        self.url = url
        self.api_key = api_key
        self.timeout_ms = timeout_ms
        self.spool_dir = os.path.expanduser(spool_dir)
        self.spool_max_bytes = spool_max_bytes
        self.log_file = os.path.expanduser(log_file)
        self.redact = redact

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HookConfig:
        env = os.environ if env is None else env
        state_dir = env.get("AGENTPLANE_HOOK_STATE_DIR") or ""
        if not state_dir:
            xdg = env.get("XDG_STATE_HOME")
            home = env.get("HOME") or os.path.expanduser("~")
            state_dir = os.path.join(xdg, "agentplane") if xdg else os.path.join(home, ".agentplane")
        url = env.get("AGENTPLANE_URL") or env.get("AGENT_ORCHESTRATOR_SESSION_MANAGER_URL") or DEFAULT_URL
        return cls(
            url=url.rstrip("/"),
            api_key=env.get("AGENTPLANE_API_KEY") or None,
            timeout_ms=max(1, _int(env, "AGENTPLANE_HOOK_TIMEOUT_MS", DEFAULT_TIMEOUT_MS)),
            spool_dir=env.get("AGENTPLANE_HOOK_SPOOL_DIR") or os.path.join(state_dir, "spool"),
            spool_max_bytes=_int(env, "AGENTPLANE_HOOK_SPOOL_MAX_BYTES", DEFAULT_SPOOL_MAX_BYTES),
            log_file=env.get("AGENTPLANE_HOOK_LOG") or os.path.join(state_dir, "hook.log"),
            redact=(env.get("AGENTPLANE_HOOK_REDACT") or "on").strip().lower() not in _OFF,
        )
