"""`agentplane serve` as a real process for the browser tests, the console
benchmark and `make screenshots`: started on free ports, stopped and started
again on the same ports, with API keys made by the `agentplane keys` command."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from agentplane_cli.main import main as agentplane_main
from tests.conftest import free_port

CHROMIUM = os.environ.get("AGENTPLANE_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")


def _two_ports() -> tuple[int, int]:
    while True:
        a, b = free_port(), free_port()
        if a != b:
            return a, b


class ServeProcess:
    """One `agentplane serve` on `database_url`; `auth` "keys" turns API keys on."""

    def __init__(self, database_url: str, workdir: Path, *, auth: str = "off") -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.auth = auth
        self.http_port, self.grpc_port = _two_ports()
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"serve-{self.http_port}.log"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            AGENTPLANE_DATABASE_URL=self.database_url,
            AGENTPLANE_AUTH=self.auth,
            AGENTPLANE_HOME=str(self.workdir),
            AGENTPLANE_HEARTBEAT_SECONDS="1",
            AGENTPLANE_SHUTDOWN_GRACE_SECONDS="2",
        )
        return env

    def start(self) -> ServeProcess:
        ports = ["--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agentplane_cli.main", "serve", *ports],
                cwd=self.workdir,
                env=self._env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        # One client for every try: each new one loads the CA bundle (~50 ms of CPU).
        with httpx.Client(timeout=1) as client:
            while True:
                try:
                    if client.get(f"{self.base_url}/healthz").status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"agentplane serve did not start:\n{self.log.read_text()}")
                time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM, as a user's Ctrl-C or a service manager stops it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def create_key(self, workspace: str, scopes: str = "admin") -> str:
        """A new API key of `workspace` (the secret), made by `agentplane keys create`
        (run in this process: a second interpreter would only add its start-up time)."""
        out = io.StringIO()
        args = ["keys", "--database-url", self.database_url, "create", "--name", "console-test"]
        args += ["--workspace", workspace, "--scopes", scopes]
        # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
        with contextlib.redirect_stdout(out), ThreadPoolExecutor(1) as pool:
            status = pool.submit(agentplane_main, args).result()
        assert status == 0, out.getvalue()
        return out.getvalue().strip().splitlines()[-1]

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
