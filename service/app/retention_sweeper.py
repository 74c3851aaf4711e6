"""The retention sweeper, run periodically by the Core: removes what each
workspace's retention no longer keeps (service.domain.retention.purge).
Every replica may sweep: each batch re-reads the horizon in its own
transaction, so two replicas never remove a range twice. A failed pass is
logged and the next one runs on schedule."""

from __future__ import annotations

import logging

from service.base.periodic import PeriodicTask
from service.domain.retention.policy import Policies
from service.domain.retention.purge import purge
from service.store.store import Store

log = logging.getLogger("agentplane.retention")


class RetentionSweeper(PeriodicTask):
    name = "retention-sweeper"

    def __init__(self, store: Store, policies: Policies, *, interval_seconds: float, batch: int) -> None:
        self.store = store
        self.policies = policies
        self.batch = batch
        super().__init__(interval_seconds)

    async def run_once(self) -> dict[str, int]:
        removed = await purge(self.store, self.policies, self.batch)
        for workspace, n in removed.items():
            log.info("retention removed %d log entries of workspace %s", n, workspace)
        return removed
