"""Retention: removing each workspace's entries that are older than its
policy allows (or past its stored size), oldest first, in small batches.

Each batch is one operation of the group-commit writer, so it commits
between other writes and never holds the writer for long; batches are
paced so that retention uses at most `DUTY` of the writer's time while it
catches up (a million old entries take minutes, not the writer). A batch
removes, in one transaction, the log entries and the rows they produced in
every family (each family's `forget_range`), and moves the workspace's
horizon: what users still need (sessions, tasks, executions, agents and
their counts, tokens, cost and status) is never removed. Retention writes no
log entry of its own: the horizon is its record (GetRetention), and a cursor
below it is refused, never resumed with a gap."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from service.domain.retention.policy import Limits, Policies
from service.store.agh import channels as channel_rows
from service.store.agh import tasks as task_rows
from service.store.executions import queries as execution_rows
from service.store.log import Tx
from service.store.retention import purge as q
from service.store.store import Store
from service.store.tracer import queries as tracer_rows

# The rows log entries produced, family by family.
FORGET = (
    tracer_rows.forget_range,
    execution_rows.forget_range,
    task_rows.forget_range,
    channel_rows.forget_range,
)
# At most this share of the writer's time goes to retention while it catches up
# (at 10% ingest kept 73% of its rate: committing the deletions costs more than
# the batches' own time, which is what is paced).
DUTY = 0.05
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def _batch(
    workspace: str, cutoff: datetime, max_bytes: int, size: int, now: datetime
) -> Callable[[Tx], tuple[int, float]]:
    """One batch: at most `size` entries, oldest first, while each is older
    than `cutoff` or the workspace holds more than `max_bytes`; returns the
    entries removed and the time the batch took."""

    def op(tx: Tx) -> tuple[int, float]:
        started = time.perf_counter()
        after, stored = q.horizon_of(tx, workspace)
        rows = q.oldest(tx, workspace, after, cutoff, size)
        taken = removed_bytes = 0
        for row in rows:
            if not (row.old or (max_bytes and stored - removed_bytes > max_bytes)):
                break
            taken += 1
            removed_bytes += row.size
        if taken:
            upto = rows[taken - 1].seq
            for forget in FORGET:
                forget(tx, workspace, after, upto)
            q.remove(tx, workspace, after, upto, removed_bytes, now)
        return taken, time.perf_counter() - started

    return op


async def purge_workspace(store: Store, workspace: str, limits: Limits, batch: int) -> int:
    """Remove what `limits` no longer keep of `workspace`; the entries removed."""
    now = store.clock.now()
    cutoff = now - timedelta(seconds=limits.retention_seconds) if limits.retention_seconds else _NEVER
    removed = 0
    while True:
        taken, spent = await store.write(_batch(workspace, cutoff, limits.retention_bytes, batch, now))
        removed += taken
        if taken < batch:
            return removed
        await asyncio.sleep(spent * (1 / DUTY - 1))


async def purge(store: Store, policies: Policies, batch: int) -> dict[str, int]:
    """One retention pass over every workspace: {workspace: entries removed}."""
    await policies.load()
    removed: dict[str, int] = {}
    for workspace in await store.read(q.workspaces):
        limits = policies.of(workspace)
        if limits.removes:
            n = await purge_workspace(store, workspace, limits, batch)
            if n:
                removed[workspace] = n
    return removed
