"""Helpers for the hook adapter tests: a real `agentplane serve` process, the
recorded hook payloads (tests/fixtures/hooks/<runtime>/NN-<Hook>.json), the
adapter run in-process or as the real command, and reads over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from agentplane_client.hooks.config import HookConfig
from agentplane_client.hooks.run import RunResult, run_hook

from tests.conftest import free_port
from tests.e2e.test_serve_process import serve

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hooks"
HOOK_COMMAND = Path(sys.executable).with_name("agentplane-hook")


def payloads(runtime: str) -> list[tuple[str, bytes]]:
    """The recorded payloads of a runtime's session, in order: (file stem, bytes)."""
    return [(p.stem, p.read_bytes()) for p in sorted((FIXTURES / runtime).glob("*.json"))]


@dataclass
class Hooks:
    """The adapter's environment: where it sends, spools and logs."""

    url: str
    state: Path
    timeout_ms: int = 10_000  # generous: the machines running the tests are loaded

    @property
    def env(self) -> dict[str, str]:
        return {
            "AGENTPLANE_URL": self.url,
            "AGENTPLANE_HOOK_STATE_DIR": str(self.state),
            "AGENTPLANE_HOOK_TIMEOUT_MS": str(self.timeout_ms),
        }

    @property
    def config(self) -> HookConfig:
        return HookConfig.from_env(self.env)

    @property
    def spool(self) -> Path:
        return self.state / "spool" / "spool.jsonl"

    def log(self) -> str:
        path = self.state / "hook.log"
        return path.read_text() if path.exists() else ""

    def run(self, runtime: str, raw: bytes) -> RunResult:
        """The adapter, in-process."""
        return run_hook(runtime, raw, self.config)

    def command(
        self, runtime: str, raw: bytes, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """The real command (`agentplane-hook <runtime>`, or `args` instead)."""
        argv = list(args) if args else [str(HOOK_COMMAND), runtime]
        env = {**os.environ, **self.env, **(env or {})}
        return subprocess.run(argv, input=raw, capture_output=True, env=env, timeout=60, check=False)


@dataclass
class Api:
    """Reads (and a few writes) over the agent-tracer routes."""

    base: str
    # One client for every call: each new one loads the CA bundle (~50 ms of CPU).
    http: httpx.Client

    def get(self, path: str, **params: Any) -> Any:
        resp = self.http.get(self.base + path, params=params)
        assert resp.status_code == 200, resp.text
        return resp.json()["data"]

    def post(self, path: str, body: Any) -> Any:
        resp = self.http.post(self.base + path, json=body)
        assert resp.status_code in (200, 201), resp.text
        return resp.json()["data"]

    def tasks(self) -> list[dict[str, Any]]:
        tasks: list[dict[str, Any]] = self.get("/api/v1/tasks", limit=100)["tasks"]
        return tasks

    def task(self, task_id: str) -> dict[str, Any]:
        detail: dict[str, Any] = self.get(f"/api/v1/tasks/{task_id}")
        return detail

    def timeline(self, task_id: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.get(f"/api/v1/tasks/{task_id}/timeline", **({"cursor": cursor} if cursor else {}))
            events += page["events"]
            cursor = page.get("nextCursor")
            if cursor is None:
                return events

    def task_by_title(self, title: str) -> dict[str, Any]:
        [task] = [t for t in self.tasks() if t["title"] == title]
        return task


@contextmanager
def live_agentplane(workdir: Path, database_url: str, port: int | None = None, *args: str) -> Iterator[Api]:
    """`agentplane serve` as a process (on `port`, or a free one; `args`: more options)."""
    http_port = port or free_port()
    base = f"http://127.0.0.1:{http_port}"
    ports = ("--http-port", str(http_port), "--grpc-port", str(free_port()))
    with (
        serve(workdir, database_url, *ports, *args, health=f"{base}/healthz") as proc,
        httpx.Client(timeout=30) as http,
    ):
        try:
            yield Api(base, http)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def spooled(hooks: Hooks) -> list[dict[str, Any]]:
    if not hooks.spool.exists():
        return []
    return [json.loads(line) for line in hooks.spool.read_text().splitlines() if line.strip()]
