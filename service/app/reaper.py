"""The Agent Tracer stale-task reaper, run periodically by the Core.

A running task whose runtime vanished without calling sessions/end (no
running session, no activity for `stale_seconds`) is completed, as upstream's
StaleTaskReaperService does every 60 s. A failed pass is logged and the next
one runs on schedule.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from service.base.periodic import PeriodicTask
from service.domain.tracer.lifecycle import reap_stale_tasks
from service.store.store import Store

log = logging.getLogger("agentplane.reaper")


class StaleTaskReaper(PeriodicTask):
    name = "tracer-stale-task-reaper"

    def __init__(self, store: Store, *, interval_seconds: float, stale_seconds: float) -> None:
        self.store = store
        super().__init__(interval_seconds)
        self.idle = timedelta(seconds=stale_seconds)

    async def run_once(self) -> list[tuple[str, str]]:
        reaped = await reap_stale_tasks(self.store, idle=self.idle)
        for workspace, task_id in reaped:
            log.info("reaped stale task %s (workspace %s)", task_id, workspace)
        return reaped
