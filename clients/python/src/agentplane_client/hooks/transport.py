"""JSON over HTTP/1.1 to the agent-tracer routes, within one time budget.

One keep-alive connection per hook run; every request gets what is left of
the run's budget as its socket timeout, so a slow or absent server costs the
agent at most the budget, whatever the number of requests.

Plain `http://` is spoken over a socket directly: `http.client` (with the
`email`, `ssl` and `urllib` modules it imports) would cost the hook ~20 ms
of start-up on every event. `https://` URLs use `http.client`.

Every call tells the server the spool's backlog (for its /metrics):
`Agentplane-Hook-Spool: <plans waiting>; runtime=<runtime>`, asked of the
spool once the connection is made, so a server that is down costs no read.
"""

from __future__ import annotations

import json
import socket
import time

TYPE_CHECKING = False  # (typing itself costs a hook ~4 ms to import)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from agentplane_client.hooks.config import HookConfig

# Answers that a retry cannot change: the request itself is wrong (the
# adapter logs it and moves on). Anything else (no answer, 5xx, 401/403,
# 429) is worth delivering again later.
FINAL_FAILURES = frozenset((400, 404, 405, 409, 413, 422))


class Unreachable(Exception):
    """No usable answer in time: the call is to be retried later."""


class Response:
    __slots__ = ("body", "status")

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body  # the decoded JSON, or None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def data(self) -> Any:
        """The tracer envelope's `data`."""
        return self.body.get("data") if isinstance(self.body, dict) else None


def split_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path prefix) of an http(s) URL."""
    scheme, _, rest = url.partition("://")
    if not rest:
        scheme, rest = "http", url
    hostport, slash, path = rest.partition("/")
    host, colon, port = hostport.rpartition(":") if hostport.count(":") == 1 else (hostport, "", "")
    default = 443 if scheme == "https" else 80
    return (
        scheme,
        host.strip("[]") or "127.0.0.1",
        int(port) if colon and port else default,
        (slash + path).rstrip("/"),
    )


SPOOL_HEADER = "Agentplane-Hook-Spool"


class Transport:
    def __init__(
        self,
        config: HookConfig,
        deadline: float,
        runtime: str = "",
        backlog: Callable[[], int | None] | None = None,
    ) -> None:
        """`backlog`: the spool's plans waiting, reported with each call as `runtime`'s."""
        self.scheme, self.host, self.port, self.prefix = split_url(config.url)
        headers = f"Host: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
        if config.api_key:
            headers += f"X-API-Key: {config.api_key}\r\n"
        self._headers = headers
        self.deadline = deadline
        self.runtime = runtime
        self.backlog = backlog
        self._sock: socket.socket | None = None
        self._buffer = b""

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def post(self, path: str, body: Any, key: str | None = None) -> Response:
        """POST `body` (with `key` as its Idempotency-Key); raises Unreachable
        when the server does not answer in time."""
        left = self.remaining()
        if left <= 0:
            raise Unreachable("time budget spent")
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        headers = self._headers + (f"Idempotency-Key: {key}\r\n" if key else "")
        if self.scheme == "https":
            return self._post_https(path, payload, left, headers + self._spool_header())
        try:
            if self._sock is None:
                self._sock = socket.create_connection((self.host, self.port), timeout=left)
                self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            else:
                self._sock.settimeout(left)
            headers += self._spool_header()
            head = f"POST {self.prefix}{path} HTTP/1.1\r\n{headers}Content-Length: {len(payload)}\r\n\r\n"
            self._sock.sendall(head.encode() + payload)
            status, raw, keep = self._read_response()
        except (OSError, ValueError) as exc:
            self.close()
            raise Unreachable(f"{type(exc).__name__}: {exc}") from exc
        if not keep:
            self.close()
        return Response(status, _decode(raw))

    def _spool_header(self) -> str:
        entries = self.backlog() if self.backlog is not None else None
        return "" if entries is None else f"{SPOOL_HEADER}: {entries}; runtime={self.runtime}\r\n"

    def _read_response(self) -> tuple[int, bytes, bool]:
        head = self._read_until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._read_until(b"\r\n").split(b";")[0], 16)
                chunk = self._read_exactly(size + 2)[:size]
                if size == 0:
                    break
                body += chunk
        else:
            body = self._read_exactly(int(headers.get("content-length") or 0))
        return status, body, headers.get("connection", "").lower() != "close"

    def _recv(self) -> None:
        assert self._sock is not None
        data = self._sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed by the server")
        self._buffer += data

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            self._recv()
        found, _, self._buffer = self._buffer.partition(marker)
        return found

    def _read_exactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            self._recv()
        found, self._buffer = self._buffer[:n], self._buffer[n:]
        return found

    def _post_https(self, path: str, payload: bytes, timeout: float, raw_headers: str) -> Response:
        import http.client

        conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout)
        headers = dict(line.split(": ", 1) for line in raw_headers.strip().split("\r\n"))
        try:
            conn.request("POST", self.prefix + path, payload, headers)
            resp = conn.getresponse()
            return Response(resp.status, _decode(resp.read()))
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc}") from exc
        finally:
            conn.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buffer = b""


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
