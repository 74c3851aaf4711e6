"""The control channel between the server and its follower process: a Unix
SOCK_SEQPACKET pair (one JSON object per packet, boundaries kept), on which
a packet may carry a connection's file descriptor (SCM_RIGHTS).

Packets are small (a few hundred bytes: a log head, a handed-over stream's
request), so a send that would block is queued and retried when the socket
is writable, never blocking the event loop.
"""

from __future__ import annotations

import asyncio
import collections
import socket
from typing import Any

import orjson

# The largest packet either side sends (a request with its metadata).
MAX_PACKET = 64 * 1024


def pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


class Channel:
    """One end of the pair, on the running loop."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._out: collections.deque[tuple[bytes, list[int]]] = collections.deque()
        self._writing = False
        self.closed = False

    def send(self, message: dict[str, Any], fd: int | None = None) -> None:
        """Queue `message` (and a duplicate of `fd`, which the caller may close at once)."""
        if self.closed:
            return
        fds = [fd] if fd is not None else []
        if fd is not None:
            fds = [socket.dup(fd)]  # ours until sent: the caller's may be closed meanwhile
        self._out.append((orjson.dumps(message), fds))
        self._flush()

    def _flush(self) -> None:
        while self._out:
            data, fds = self._out[0]
            try:
                socket.send_fds(self._sock, [data], fds) if fds else self._sock.send(data)
            except BlockingIOError:
                if not self._writing:
                    self._writing = True
                    self._loop.add_writer(self._sock.fileno(), self._writable)
                return
            except OSError:
                self._close_out()  # the other end is gone
                return
            self._out.popleft()
            for fd in fds:
                socket.close(fd)

    def _writable(self) -> None:
        self._loop.remove_writer(self._sock.fileno())
        self._writing = False
        self._flush()

    async def receive(self) -> tuple[dict[str, Any], int | None] | None:
        """The next packet and the descriptor it carried; None once the other end is gone."""
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self._sock, MAX_PACKET, 1)
            except BlockingIOError:
                ready = self._loop.create_future()
                self._loop.add_reader(self._sock.fileno(), ready.set_result, None)
                try:
                    await ready
                finally:
                    self._loop.remove_reader(self._sock.fileno())
                continue
            except OSError:
                return None
            if not data:
                for fd in fds:
                    socket.close(fd)
                return None
            return orjson.loads(data), (fds[0] if fds else None)

    def _close_out(self) -> None:
        while self._out:
            for fd in self._out.popleft()[1]:
                socket.close(fd)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._writing:
            self._loop.remove_writer(self._sock.fileno())
        self._close_out()
        self._sock.close()
