"""A pass the Core runs every `interval` seconds (none when it is 0 or less).
A failed pass is logged and the next one runs on schedule."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any


class PeriodicTask:
    name = "periodic-task"

    def __init__(self, interval_seconds: float) -> None:
        self.interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> Any:
        raise NotImplementedError

    def start(self) -> None:
        """Start the periodic passes (none when the interval is 0 or less)."""
        if self.interval > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.run_once()
            except Exception:
                logging.getLogger(f"agentplane.{self.name}").exception("%s pass failed", self.name)
