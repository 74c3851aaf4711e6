"""The access log: one line per HTTP request the gateway answers, in the
server's own log format (logger `agentplane.access`). Requests answered
4xx or 5xx are always logged, so a refused call leaves a trace; every
request is, with debug logging on (AGENTPLANE_DEBUG). WebSockets and the
lifespan pass through untouched."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("agentplane.access")


class AccessLog:
    def __init__(self, app: ASGIApp, *, every_request: bool = False) -> None:
        self.app = app
        self.every_request = every_request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 0

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, answer)
        except BaseException:
            status = status or 500  # what the server answers for an unhandled error
            raise
        finally:
            if status >= 400 or self.every_request:
                client = scope.get("client")
                where = f"{client[0]}:{client[1]}" if client else "-"
                took = (time.perf_counter() - started) * 1000
                log.info('%s "%s %s" %s %.1f ms', where, scope["method"], scope["path"], status or "-", took)
