"""The AGH sweeper, run periodically by the Core: task runs whose lease has
ended go back to the queue (attempt unchanged), and spawned sessions whose
time to live has ended, or whose parent stopped when they follow it, stop.

So an expired lease is requeued within its end plus one interval
(AGENTPLANE_LEASE_SWEEP_SECONDS, default 15). A holder past its lease is
refused at once anyway: the sweep only makes the run claimable again. On
several replicas every one sweeps; each change is re-checked in its own
transaction, so a run is requeued once. A failed pass is logged and the next
one runs on schedule.
"""

from __future__ import annotations

import logging

from service.base.periodic import PeriodicTask
from service.domain.agh import leases, spawn
from service.store.store import Store

log = logging.getLogger("agentplane.lease_sweeper")


class LeaseSweeper(PeriodicTask):
    name = "agh-lease-sweeper"

    def __init__(self, store: Store, *, interval_seconds: float) -> None:
        self.store = store
        super().__init__(interval_seconds)

    async def run_once(self) -> tuple[int, int]:
        """(runs requeued, sessions stopped) by one pass."""
        requeued = await leases.sweep_expired(self.store)
        stopped = await spawn.stop_due_sessions(self.store)
        if requeued or stopped:
            log.info("requeued %d expired task run leases, stopped %d spawned sessions", requeued, stopped)
        return requeued, stopped
