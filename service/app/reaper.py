"""The Agent Tracer stale-task reaper, run periodically by the Core.

A running task whose runtime vanished without calling sessions/end (no
running session, no activity for `stale_seconds`) is completed, as upstream's
StaleTaskReaperService does every 60 s. A failed pass is logged and the next
one runs on schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from service.domain.tracer.lifecycle import reap_stale_tasks
from service.store.store import Store

log = logging.getLogger("agentplane.reaper")


class StaleTaskReaper:
    def __init__(self, store: Store, *, interval_seconds: float, stale_seconds: float) -> None:
        self.store = store
        self.interval = interval_seconds
        self.idle = timedelta(seconds=stale_seconds)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the periodic passes (none when the interval is 0 or less)."""
        if self.interval > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="tracer-stale-task-reaper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> list[tuple[str, str]]:
        reaped = await reap_stale_tasks(self.store, idle=self.idle)
        for workspace, task_id in reaped:
            log.info("reaped stale task %s (workspace %s)", task_id, workspace)
        return reaped

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.run_once()
            except Exception:
                log.exception("stale-task reaper pass failed")
