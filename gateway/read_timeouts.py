"""Read timeouts for HTTP/1.1 connections: uvicorn (httptools) has none.

uvicorn closes a keep-alive connection idle between requests, but a client
that opens a connection and never finishes its headers, or promises a
Content-Length and sends less, holds it (and the bytes it was admitted for)
forever. `timed_protocol` gives uvicorn a protocol that closes such a
connection: headers not complete within `header_timeout` seconds of the
connection or of the request's first byte; a body not complete within
`body_timeout` seconds of its headers (answered 408 first when no response
has started). A timer is armed only while a request is incomplete after a
read, so a request that arrives in one read costs none.

It also lets an endpoint take a connection from uvicorn for good: the
scope's `extensions[DETACH]` gives a duplicate of the socket (and the
server's default headers, for the response the new owner writes), and
uvicorn forgets the connection without writing or closing anything on it
(gateway.followers serves live log streams so).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_IDLE, _HEAD, _BODY = 0, 1, 2

# The ASGI scope's extension: a callable giving (socket, default headers), or
# None when the connection cannot be given away now.
DETACH = "agentplane.detach"

_TIMED_OUT = b"request body timed out"
_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TIMED_OUT), _TIMED_OUT)
)


class TimedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout: float = 10.0
    body_timeout: float = 30.0

    _state = _IDLE
    _timer: asyncio.TimerHandle | None = None
    _timing = _IDLE  # what the armed timer waits for

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(_HEAD)  # the first request's head must come in time

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.get_protocol() is not self:  # upgraded to a WebSocket
            self._disarm()
        elif self._state != self._timing:
            if self._state == _IDLE:
                self._disarm()
            else:
                self._arm(self._state)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._state = _HEAD

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._state = _BODY
        self.scope["extensions"] = {DETACH: self._detach}  # type: ignore[dict-item]  # (ASGI types it loosely)

    def _detach(self) -> tuple[socket.socket, list[tuple[bytes, bytes]]] | None:
        """The connection, no longer uvicorn's: only for a request that has
        had no answer, nothing left to write and no request queued behind it."""
        cycle = self.cycle
        transport = self.transport
        if (
            cycle is None
            or cycle.response_started
            or self.pipeline
            or transport.is_closing()
            or transport.get_write_buffer_size()
        ):
            return None
        raw = transport.get_extra_info("socket")
        if raw is None:
            return None
        sock = socket.socket(fileno=socket.dup(raw.fileno()))
        self._disarm()
        # The app returns without answering: uvicorn then neither answers nor
        # closes a cycle it believes disconnected.
        cycle.disconnected = True
        cycle.message_event.set()
        transport.close()  # closes uvicorn's descriptor; the connection lives on in `sock`
        return sock, list(self.server_state.default_headers)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._state = _IDLE

    def _arm(self, what: int) -> None:
        self._disarm()
        delay = self.header_timeout if what == _HEAD else self.body_timeout
        if delay > 0:
            self._timing = what
            self._timer = self.loop.call_later(delay, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timing = _IDLE

    def _expire(self) -> None:
        timing, self._timer, self._timing = self._timing, None, _IDLE
        if self.transport.is_closing():
            return
        if timing == _BODY and self.cycle is not None and not self.cycle.response_started:
            self.transport.write(_408)
        self.transport.close()


def timed_protocol(header_timeout: float, body_timeout: float) -> type[HttpToolsProtocol]:
    """The protocol class for `uvicorn.Config(http=...)` (0 turns a timeout off)."""
    attrs: dict[str, Any] = {"header_timeout": header_timeout, "body_timeout": body_timeout}
    return type("TimedHttpToolsProtocol", (TimedHttpToolsProtocol,), attrs)
