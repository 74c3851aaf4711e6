"""The AGH task queue's decisions on states, with no database: who holds a
lease, what a claim and a requeue do to a run, and a task's status derived
from its runs (upstream's `taskStatusFromPolicySnapshot`):

- `draft` and `canceled` stay as they are (a queued run takes a task out of
  draft);
- a run `starting` or `running` makes it `in_progress`;
- else a run `queued` or `claimed` makes it `ready`;
- else the latest finished run decides: `completed`, `canceled`, or after a
  failure `failed` once attempts are exhausted (max attempt + 1 >
  `max_attempts`), `ready` otherwise.

The words are service.base.agh_states (the store's SQL speaks them too); the
records are the rows as the store reads them (service.store.agh.tasks).
"""

from __future__ import annotations

from service.base.agh_states import (
    ACTIVE,
    CANCELED,
    CLAIMED,
    DRAFT,
    FAILED,
    IN_PROGRESS,
    QUEUED,
    READY,
    RUNNING,
    STARTING,
    TERMINAL,
)
from service.store.agh.tasks import RunRecord, TaskRecord


def holds_lease(run: RunRecord, session_id: str, now: int) -> bool:
    """Whether `session_id` holds an unexpired lease on `run`."""
    return (
        run.status in ACTIVE
        and run.session_id == session_id
        and run.claim_token_hash is not None
        and run.lease_until is not None
        and run.lease_until > now
    )


def claim(run: RunRecord, session_id: str, token_hash: str, now: int, lease_until: int) -> None:
    """`run` claimed by `session_id` under the claim `token_hash`, leased until `lease_until`."""
    run.status, run.session_id = CLAIMED, session_id
    run.claimed_by_kind, run.claimed_by_ref = "agent_session", session_id
    run.claim_token_hash = token_hash
    run.claimed_at = run.heartbeat_at = now
    run.lease_until = lease_until
    run.started_at = run.ended_at = run.error = run.result = None


def requeue(run: RunRecord) -> None:
    """The same run back in the queue, attempt unchanged, every trace of the
    claim cleared (as upstream's release and expiry do)."""
    run.status = QUEUED
    run.session_id = run.claimed_by_kind = run.claimed_by_ref = run.claim_token_hash = None
    run.lease_until = run.heartbeat_at = run.claimed_at = run.started_at = run.ended_at = None
    run.error = run.result = None


def derive_status(task: TaskRecord, runs: list[RunRecord]) -> str:
    """The task's status from its runs (see the module docstring)."""
    if task.status in (DRAFT, CANCELED):
        return task.status
    statuses = {r.status for r in runs}
    if statuses & {STARTING, RUNNING}:
        return IN_PROGRESS
    if statuses & {QUEUED, CLAIMED}:
        return READY
    finished = [r for r in runs if r.status in TERMINAL]
    if not finished:
        return task.status
    latest = max(finished, key=lambda r: (r.attempt, r.queued_at, r.id))
    if latest.status == FAILED:
        return FAILED if attempts_exhausted(task, runs) else READY
    return latest.status


def attempts_exhausted(task: TaskRecord, runs: list[RunRecord]) -> bool:
    return max((r.attempt for r in runs), default=0) + 1 > task.max_attempts
