"""`agentplane serve` as real processes: both ports, graceful SIGTERM, restart
with nothing acknowledged lost, and the gateway run apart from gRPC."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import httpx
import pytest
from agentplane.v1 import runtime_pb2, runtime_pb2_grpc

from tests.conftest import free_port


@contextmanager
def serve(
    workdir: Path,
    database_url: str,
    *args: str,
    health: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """`agentplane serve` in `workdir`; `database_url` "" keeps the default database."""
    env = dict(os.environ if env is None else env)
    if database_url:
        env["AGENTPLANE_DATABASE_URL"] = database_url
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentplane_cli.main", "serve", *args],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        if health:
            deadline = time.monotonic() + 30
            # One client for every try: each new one loads the CA bundle (~50 ms of CPU).
            with httpx.Client(timeout=1) as client:
                while True:
                    try:
                        client.get(health)
                        break
                    except httpx.HTTPError:
                        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                        assert time.monotonic() < deadline, "server did not start in 30 s"
                        time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_for_grpc(target: str) -> None:
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)


def stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()
    return out.decode()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'e2e.db'}"


def test_serve_answers_both_ports_and_stops_gracefully(tmp_path: Path, sqlite_url: str) -> None:
    http_port, grpc_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    ports = ("--http-port", str(http_port), "--grpc-port", str(grpc_port))
    with serve(tmp_path, sqlite_url, *ports, health=f"{base}/healthz") as proc:
        created = httpx.post(f"{base}/sessions", json={"session_id": "e2e", "session_name": "End to end"})
        assert created.status_code == 200
        for i in range(20):
            event = {
                "event_type": "message",
                "session_id": "e2e",
                "session_name": "End to end",
                "timestamp": f"2026-01-01T00:00:{i:02d}Z",
                "role": "assistant",
                "content": [{"type": "text", "text": f"reply {i}"}],
            }
            assert httpx.post(f"{base}/sessions/e2e/events", json=event).status_code == 200
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            got = runtime_pb2_grpc.SessionServiceStub(channel).GetSession(
                runtime_pb2.GetSessionRequest(session_id="e2e"), timeout=5
            )
        assert got.session.session_name == "End to end"
        output = stop(proc)
    assert "SQLite file" in output  # where the data lives is printed at start

    # Everything acknowledged before SIGTERM is there after a restart.
    with serve(tmp_path, sqlite_url, *ports, health=f"{base}/healthz") as proc:
        events = httpx.get(f"{base}/sessions/e2e/events").json()["events"]
        assert [e["content"][0]["text"] for e in events] == [f"reply {i}" for i in range(20)]
        stop(proc)


def test_gateway_runs_apart_from_grpc(tmp_path: Path, sqlite_url: str) -> None:
    grpc_port, http_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    with serve(tmp_path, sqlite_url, "--grpc-only", "--grpc-port", str(grpc_port)) as backend:
        wait_for_grpc(f"127.0.0.1:{grpc_port}")
        with serve(
            tmp_path,
            sqlite_url,
            "--gateway-only",
            "--upstream",
            f"127.0.0.1:{grpc_port}",
            "--http-port",
            str(http_port),
            health=f"{base}/healthz",
        ) as gateway:
            assert (
                httpx.post(f"{base}/sessions", json={"session_id": "apart", "session_name": "A"}).status_code
                == 200
            )
            conflict = httpx.post(f"{base}/sessions", json={"session_id": "apart", "session_name": "A"})
            assert (conflict.status_code, conflict.json()) == (409, {"detail": "Session already exists"})
            # Free-form JSON crosses to the other process whole (the gateway
            # keeps it as parsed only for requests it serves in process).
            tool_input = {"file_path": "/src/app.py", "opts": {"limit": 10, "tags": ["a", None, True]}}
            event = {
                "event_type": "post_tool",
                "session_id": "apart",
                "session_name": "A",
                "timestamp": "2026-01-01T00:00:00Z",
                "tool_name": "Read",
                "tool_input": tool_input,
            }
            assert httpx.post(f"{base}/sessions/apart/events", json=event).status_code == 200
            stored = httpx.get(f"{base}/sessions/apart/events").json()["events"]
            assert [e["tool_input"] for e in stored] == [tool_input]
            missing = httpx.post(f"{base}/sessions", json={"session_id": "x"})
            assert (missing.status_code, missing.json()) == (
                400,
                {"detail": "missing required field: session_name"},
            )
            with httpx.stream("GET", f"{base}/v1/log:watch", params={"stop_at_end": "true"}) as stream:
                lines = [line for line in stream.iter_lines() if line]
            assert len(lines) == 2 and '"session.created"' in lines[0] and '"/src/app.py"' in lines[1]
            stop(gateway)
        stop(backend)


@pytest.mark.parametrize("busy", ["--http-port", "--grpc-port"])
def test_a_port_in_use_is_one_line_and_a_non_zero_exit(tmp_path: Path, sqlite_url: str, busy: str) -> None:
    """Both ports are checked before anything is announced or started."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"--http-port": free_port(), "--grpc-port": free_port(), busy: port}
        args = [str(a) for pair in ports.items() for a in pair]
        with serve(tmp_path, sqlite_url, *args) as proc:
            out, _ = proc.communicate(timeout=30)
    what = "the HTTP gateway" if busy == "--http-port" else "gRPC"
    assert proc.returncode == 1
    assert out.decode() == (
        f"agentplane serve: cannot listen on 127.0.0.1:{port} for {what} ({busy}): address already in use\n"
    )
    assert not (tmp_path / "e2e.db").exists()  # nothing was started


def test_refused_requests_are_logged_in_the_servers_format(tmp_path: Path, sqlite_url: str) -> None:
    http_port, grpc_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    ports = ("--http-port", str(http_port), "--grpc-port", str(grpc_port))
    with serve(tmp_path, sqlite_url, *ports, health=f"{base}/healthz") as proc:
        assert httpx.get(f"{base}/sessions").status_code == 200
        assert httpx.get(f"{base}/sessions/nope").status_code == 404
        assert httpx.post(f"{base}/api/v1/events", content=b"{").status_code == 400
        out = stop(proc)
    lines = out.splitlines()
    access = [line for line in lines if " agentplane.access: " in line]
    assert len(access) == 2  # the 200 is not logged (all are with AGENTPLANE_DEBUG)
    assert '"GET /sessions/nope" 404 ' in access[0] and '"POST /api/v1/events" 400 ' in access[1]
    # one format for every line the server writes, uvicorn's own included (a
    # migration's message may go on over a second line)
    stamped = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) [\w.]+: ")
    assert stamped.match(lines[0]) and not any(line.startswith("INFO: ") for line in lines)
    assert any(stamped.match(line) and " uvicorn.error: Uvicorn running on " in line for line in lines)
