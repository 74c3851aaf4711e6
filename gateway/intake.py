"""Request bodies against the bytes-in-flight budget (service.rpc.admission).

A body is counted from its headers until its response is sent: by its
Content-Length up front (capped at the body limit, which refuses larger
ones), so a request that cannot be admitted is refused before a byte of
its body is read; a chunked body by its bytes as they arrive.
"""

from __future__ import annotations

from starlette.types import Message, Receive, Scope

from service.rpc.admission import ByteBudget


def declared_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class MeteredBody:
    """What a request holds of the budget; `receive` counts a chunked body."""

    __slots__ = ("_receive", "budget", "counting", "held")

    def __init__(self, receive: Receive, budget: ByteBudget, scope: Scope, cap: int) -> None:
        """Take the declared length now (UNAVAILABLE when it does not fit)."""
        self._receive = receive
        self.budget = budget
        self.held = 0
        declared = declared_length(scope)
        self.counting = declared is None
        if declared:
            size = min(declared, cap + 1)
            budget.acquire(size)
            self.held = size

    async def receive(self) -> Message:
        message = await self._receive()
        if self.counting and message["type"] == "http.request":
            size = len(message.get("body", b""))
            self.budget.acquire(size, self.held)
            self.held += size
            self.counting = bool(message.get("more_body"))
        return message

    def release(self) -> None:
        self.budget.release(self.held)
        self.held = 0
