"""Live followers of the event log, served by a process of their own.

A live follower costs whoever serves it a read of each commit, a rendering
and a socket write per wake-up. In the server those share one event loop
and one GIL with the write path: on 2 cores, 100 NDJSON followers of
`/v1/log:watch` took a quarter of the write throughput, half of it in the
kernel copying their bytes. So the server hands them over: once a follow
stream has begun (its auth, its input and its cursor checked by the server,
with their own statuses, and its opening heartbeat sent), the connection's
file descriptor goes over a Unix socket to a child process
(`python -m gateway.followers`) that serves the rest of the stream
(gateway/followers/serve.py) on the other core, at the lowest CPU
priority. The server tells it the log's head after each commit; it reads
the log itself, like a replica.

Long reads to the end (`stop_at_end` from far behind the head) go to the
child too: a reader from seq 0 of a large log took most of the server's
loop, and the writes with it. Served here still: short reads to the end,
browser requests (the CORS layer adds their headers), gRPC and WebSocket
followers, and every stream while the process is starting or restarting. A child that
exits is started again after a pause; its streams were cut, and their
clients resume from their cursor as after any disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import sys
from collections.abc import Mapping

from agentplane.v1 import log_pb2
from google.protobuf.message import Message
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from gateway.followers.wire import Channel, pair
from service.base import metrics
from service.base.config import Settings
from service.store.notifier import Notifier

log = logging.getLogger("agentplane.followers")

RESTART_SECONDS = 2.0
# How long an idle log goes between two heads sent (the child's feed re-checks anyway).
HEAD_EVERY_SECONDS = 5.0
# The least time between two heads sent: under load one tells the child of
# several commits (a packet and a read of the log each), for 5 ms at most
# of latency on streams whose followers are woken every few ms anyway.
HEAD_GAP_SECONDS = 0.005
# A read to the end (`stop_at_end`) within this many positions of the log's
# head is served by the server; a longer one (a reader from seq 0 of a large
# log reads ~125,000 entries a second, most of a core) goes to the child.
READ_HERE_POSITIONS = 10_000
# The route the child serves: WatchLog's (`GET /v1/log:watch`).
FOLLOWED_PATH = f"/{log_pb2.DESCRIPTOR.services_by_name['LogService'].full_name}/WatchLog"


class FollowerProcess:
    """The child, as the server sees it: started, supervised, told the log's
    head, and handed connections."""

    def __init__(self, settings: Settings, notifier: Notifier) -> None:
        self.settings = settings
        self.notifier = notifier
        self._proc: asyncio.subprocess.Process | None = None
        self._channel: Channel | None = None
        self._ready = False
        self._stopping = False
        # Streams the child serves, as it last said: heads are sent only while it has some.
        self._streams = 0
        self._serving = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def ready(self) -> bool:
        """Whether a stream handed over now would be served."""
        return self._ready and not self._stopping

    async def start(self) -> bool:
        """Start the child (before the gRPC server, whose threads a fork would
        find); it waits for `open` before it touches the database. False where
        the system has no Unix SOCK_SEQPACKET sockets to hand connections over
        (macOS): every follower is then served by the server."""
        try:
            await self._spawn()
        except (OSError, AttributeError) as exc:
            log.warning("no follower process (%s): live followers are served by the server", exc)
            return False
        return True

    def open(self) -> None:
        """The database is migrated: the child opens it and serves."""
        self._send_settings()
        self._tasks += [
            asyncio.create_task(self._supervise(), name="followers-supervisor"),
            asyncio.create_task(self._relay_heads(), name="followers-heads"),
        ]

    async def _spawn(self) -> None:
        ours, theirs = pair()
        try:
            # A session of its own: a Ctrl-C reaches the server, which stops the child itself.
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway.followers",
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
        finally:
            theirs.close()
        self._channel = Channel(ours)
        self._tasks.append(asyncio.create_task(self._listen(self._channel), name="followers-listen"))

    def _send_settings(self) -> None:
        assert self._channel is not None
        self._channel.send({"settings": dataclasses.asdict(self.settings)})

    async def _listen(self, channel: Channel) -> None:
        while (packet := await channel.receive()) is not None:
            message, _ = packet
            if "ready" in message:
                self._ready = True
            elif "streams" in message:
                self._count(message["streams"])
        self._ready = False
        self._count(0)

    def _count(self, streams: int) -> None:
        self._streams = streams
        metrics.open_streams[metrics.FOLLOWER_PROCESS] = streams
        if streams:
            self._serving.set()
        else:
            self._serving.clear()

    async def _relay_heads(self) -> None:
        sent = 0
        while True:
            await self._serving.wait()  # a hand-over carries the head: an idle child needs none
            await self.notifier.wait_beyond(sent, HEAD_EVERY_SECONDS)
            if self.notifier.head > sent:
                sent = self.notifier.head
                if self._streams and self._ready and self._channel is not None:
                    self._channel.send({"head": sent})
                    await asyncio.sleep(HEAD_GAP_SECONDS)

    async def _supervise(self) -> None:
        while self._proc is not None:
            code = await self._proc.wait()
            self._ready = False
            if self._channel is not None:
                self._channel.close()
            if self._stopping:
                return
            log.warning(
                "the follower process exited (status %s); starting it again in %.0f s", code, RESTART_SECONDS
            )
            await asyncio.sleep(RESTART_SECONDS)
            await self._spawn()
            self._send_settings()

    async def metrics(self) -> list[Metric]:
        """For /metrics: whether the child serves (its streams are in agentplane_open_streams)."""
        up = GaugeMetricFamily(
            "agentplane_follower_process_up",
            "1 while the follower process serves live log followers (0: starting or restarting)",
            value=float(self.ready),
        )
        return [up]

    def resume(self, request: Message, first: object) -> tuple[Message, bool] | None:
        """Whether a WatchLog stream that began with `first` (None: nothing
        yet) is handed over: None to keep it here, else the request the child
        continues with and whether the server sends `first` itself. An
        opening heartbeat is sent (it is what tells the client "now"); a page
        of entries is not: the child starts again from the request's cursor."""
        assert isinstance(request, log_pb2.WatchLogRequest)
        if not self.ready:
            return None
        if request.stop_at_end and not (0 <= request.after_seq < self.notifier.head - READ_HERE_POSITIONS):
            return None  # a short read to the end: answered here, on its keep-alive connection
        if isinstance(first, log_pb2.WatchLogResponse) and first.HasField("heartbeat"):
            after = log_pb2.WatchLogRequest()
            after.CopyFrom(request)
            after.after_seq = first.heartbeat.cursor
            return after, True
        return request, False

    def hand_over(
        self, sock: socket.socket, head: bytes, request: Message, metadata: Mapping[str, str]
    ) -> None:
        """Give the child the connection (the caller closes its `sock`), with
        the bytes to write first and the request to serve on it."""
        assert self._channel is not None
        follow = {
            "request": request.SerializeToString().hex(),
            "prefix": head.hex(),
            "metadata": dict(metadata),
        }
        self._channel.send({"head": self.notifier.head, "follow": follow}, fd=sock.fileno())
        self._count(self._streams + 1)  # until the child's own count comes

    def going_away(self) -> None:
        """Shutdown has begun: the child ends every stream with its cursor."""
        if not self._stopping and self._channel is not None:
            self._channel.send({"close": True})
        self._stopping = True

    async def stop(self) -> None:
        """`going_away`, and wait for the child to exit."""
        self.going_away()
        proc = self._proc
        if proc is not None and proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), self.settings.shutdown_grace_seconds + 1)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._channel is not None:
            self._channel.close()
