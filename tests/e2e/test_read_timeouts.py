"""Read timeouts of `agentplane serve`, over real sockets: a connection whose
headers never finish is closed, a body slower than its timeout is answered
408 and closed (and what it held of the bytes-in-flight budget is given
back), while a request that arrives in pieces within the timeouts is served."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.test_serve_process import serve

TIMEOUT = 2.0
# A request is closed by its timeout, not by anything slower.
CLOSED_WITHIN = TIMEOUT + 2


@pytest.fixture
def port(tmp_path: Path, migrated_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("AGENTPLANE_HEADER_TIMEOUT_SECONDS", str(TIMEOUT))
    monkeypatch.setenv("AGENTPLANE_BODY_TIMEOUT_SECONDS", str(TIMEOUT))
    monkeypatch.setenv("AGENTPLANE_MAX_INFLIGHT_BYTES", "300")
    http = free_port()
    args = ("--http-port", str(http), "--grpc-port", str(free_port()))
    with serve(tmp_path, migrated_database_url, *args, health=f"http://127.0.0.1:{http}/healthz"):
        yield http


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(CLOSED_WITHIN + 5)
    return sock


def read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    started, data = time.monotonic(), b""
    while chunk := sock.recv(65536):
        data += chunk
    return data, time.monotonic() - started


def create_session(sid: str, pad: int = 0) -> tuple[bytes, bytes]:
    body = json.dumps({"session_id": sid, "session_name": sid}).encode() + b" " * pad
    head = b"POST /sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body), body


def test_headers_that_never_finish_are_closed(port: int) -> None:
    with connect(port) as silent, connect(port) as partial:
        partial.sendall(b"POST /sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for sock in (silent, partial):
            data, took = read_until_closed(sock)
            assert data == b"" and took < CLOSED_WITHIN


def test_a_slow_body_is_timed_out_and_its_bytes_released(port: int) -> None:
    head, body = create_session("slow", pad=200)
    with connect(port) as sock:
        sock.sendall(head + body[:10])
        data, took = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert took < CLOSED_WITHIN
    # Its 250 bytes are free again: a request that needs them is admitted.
    head, body = create_session("next", pad=200)
    with connect(port) as sock:
        sock.sendall(head + body)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")


def test_a_request_in_pieces_within_the_timeouts_is_served(port: int) -> None:
    head, body = create_session("pieces")
    with connect(port) as sock:
        for piece in (head[:20], head[20:], body[:5], body[5:]):
            sock.sendall(piece)
            time.sleep(TIMEOUT / 4)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        # The connection is kept alive and serves the next request.
        sock.sendall(b"GET /sessions/pieces HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
