"""The follower process's side: the live NDJSON streams of `/v1/log:watch`
handed over by the server, each served on the connection it came with.

It is the same stream as in the server (the LogService's WatchLog behind
the same auth step, rendered by the same endpoint), on a LogFeed of its
own: this process reads each commit once (as a replica would: the server
sends it the log's head after each commit) and writes every follower's
chunks. Its sockets, reads and rendering cost the server's event loop
nothing. When the server asks (shutdown) or is gone, every stream ends
with the cursor to resume from, as in the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
from typing import Any

from agentplane.v1 import log_pb2

from gateway.families import family_of
from gateway.followers.process import FOLLOWED_PATH
from gateway.followers.wire import Channel
from gateway.httprule import bindings
from gateway.routes import Endpoint, http_chunk
from gateway.transport import InProcessTransport
from service.api.log import LogServicer
from service.base.config import Settings
from service.domain.log_feed import LogFeed
from service.rpc.auth import Auth
from service.rpc.dispatch import Dispatcher
from service.store.store import Store

log = logging.getLogger("agentplane.followers")

# How long an ended stream's last bytes may take to reach a stalled client.
FLUSH_SECONDS = 5.0


def watch_endpoint(transport: InProcessTransport, max_body: int) -> Endpoint:
    """The `/v1/log:watch` endpoint, as the server's gateway builds it."""
    service = log_pb2.DESCRIPTOR.services_by_name["LogService"]
    family = family_of(service)
    assert family is not None
    (b,) = (b for b in bindings([service]) if b.path == FOLLOWED_PATH)
    return Endpoint(b, family, lambda: transport, max_body)


class FollowerServer:
    def __init__(self, settings: Settings, channel: Channel) -> None:
        self.channel = channel
        self.grace = settings.shutdown_grace_seconds
        self.store = Store(settings.database_url)
        self.feed = LogFeed(self.store)
        # The server counted the request against the key's rate already.
        auth = Auth(dataclasses.replace(settings, rate_limit_per_minute=None), self.store)
        dispatcher = Dispatcher(
            [LogServicer(self.store, self.feed, settings.heartbeat_seconds)], auth.interceptors
        )
        self.transport = InProcessTransport(dispatcher)
        self.endpoint = watch_endpoint(self.transport, settings.max_body_bytes)
        self.streams: set[asyncio.Task[None]] = set()
        self._reported = -1
        # The last chunk framed: followers at one cursor take the same body
        # (rendered once), and write the same framed bytes too.
        self._framed: tuple[bytes, bytes] = (b"", b"")

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until the server says close, is gone, or `stop` is set (SIGTERM)."""
        await self.store.open(run_migrations=False)
        self.feed.start()
        self.channel.send({"ready": True})
        listening = asyncio.create_task(self._listen())
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([listening, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            listening.cancel()
            stopping.cancel()
            await self._close()

    async def _listen(self) -> None:
        while (packet := await self.channel.receive()) is not None:
            message, fd = packet
            if "head" in message:
                self.store.notifier.publish(message["head"])
            if "follow" in message and fd is not None:
                self._start(fd, message["follow"])
            elif "close" in message:
                return

    def _start(self, fd: int, follow: dict[str, Any]) -> None:
        request = log_pb2.WatchLogRequest.FromString(bytes.fromhex(follow["request"]))
        prefix = bytes.fromhex(follow["prefix"])
        task = asyncio.create_task(self._serve(socket.socket(fileno=fd), prefix, request, follow["metadata"]))
        self.streams.add(task)
        task.add_done_callback(self._ended)
        self._report()

    def _ended(self, task: asyncio.Task[None]) -> None:
        self.streams.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a follower's stream failed", exc_info=task.exception())
        self._report()

    def _report(self) -> None:
        if len(self.streams) != self._reported:
            self._reported = len(self.streams)
            self.channel.send({"streams": self._reported})

    async def _serve(
        self, sock: socket.socket, prefix: bytes, request: log_pb2.WatchLogRequest, metadata: dict[str, str]
    ) -> None:
        reader, writer = await asyncio.open_connection(sock=sock)
        body = asyncio.create_task(self._write(writer, prefix, request, metadata))
        gone = asyncio.create_task(_until_closed(reader))
        try:
            await asyncio.wait([body, gone], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (body, gone):
                task.cancel()
            try:
                await body
            except (asyncio.CancelledError, ConnectionError):
                pass  # the client left, or the stream was cut short
            except Exception:
                log.exception("a follower's stream failed")
            if gone.done():
                writer.transport.abort()  # nobody is reading
            else:
                await _close(writer)

    async def _write(
        self,
        writer: asyncio.StreamWriter,
        prefix: bytes,
        request: log_pb2.WatchLogRequest,
        metadata: dict[str, str],
    ) -> None:
        writer.write(prefix)
        messages = self.transport.stream(
            self.endpoint.binding.path, request, log_pb2.WatchLogResponse, metadata, wire="ndjson"
        )
        async for chunk in self.endpoint.ndjson_body(None, messages):
            writer.write(self._frame(chunk))
            await writer.drain()
        writer.write(http_chunk(b""))  # the body's end

    def _frame(self, chunk: bytes) -> bytes:
        """`chunk` as an HTTP/1.1 chunk."""
        body, framed = self._framed
        if chunk is not body:
            framed = http_chunk(chunk)
            self._framed = (chunk, framed)
        return framed

    async def _close(self) -> None:
        """End every stream with its cursor (the server is going away), then stop."""
        self.feed.close()
        if self.streams:
            await asyncio.wait(self.streams, timeout=self.grace)
        for task in self.streams:
            task.cancel()
        await self.feed.stop()
        await self.store.close()
        self.channel.close()


async def _until_closed(reader: asyncio.StreamReader) -> None:
    """Return when the client has closed its side (what else it sends is dropped)."""
    with contextlib.suppress(ConnectionError):
        while await reader.read(65536):
            pass


async def _close(writer: asyncio.StreamWriter) -> None:
    """Flush and close; a client that stopped reading is cut after FLUSH_SECONDS."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), FLUSH_SECONDS)
    except (TimeoutError, ConnectionError, OSError):
        writer.transport.abort()
