"""The follower process: `python -m gateway.followers FD`, started by
`agentplane serve` (process.py), FD being its end of the control channel.
Its settings come as the channel's first packet. It stops when the server
says so, when the server is gone (the channel closes), or on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys

from gateway.followers.serve import FollowerServer
from gateway.followers.wire import Channel
from service.base import interpreter
from service.base.config import Settings

log = logging.getLogger("agentplane.followers")

# The lowest CPU priority: the follower process takes what CPU the server
# leaves. On a busy machine the write path keeps its speed and followers fall
# behind (and, past the window, are ended with their cursor), not the other
# way round. On the followers bench (2 cores, 100 followers) the writes kept
# a median 89% of their rate at nice 10 (five pairs), 92% at 19 (ten pairs).
FOLLOWERS_NICE = 19


async def _main(fd: int) -> int:
    channel = Channel(socket.socket(fileno=fd))
    first = await channel.receive()
    if first is None:
        return 1  # the server went away before it said anything
    settings = Settings(**first[0]["settings"])
    logging.getLogger().setLevel(logging.DEBUG if settings.debug_logging else logging.INFO)
    interpreter.tune_for_serving()
    with contextlib.suppress(OSError):
        os.nice(FOLLOWERS_NICE)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await FollowerServer(settings, channel).run(stop)
    return 0


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    fd = int(sys.argv[1])
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_main(fd))
    return uvloop.run(_main(fd))


if __name__ == "__main__":
    sys.exit(main())
