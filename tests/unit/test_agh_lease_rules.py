"""The task queue's lease rules without a database: who holds a lease, what
a claim and a requeue do to a run, and a task's status derived from its runs
(service.domain.agh.states). The same rules through the store, operation by
operation and on each backend: test_agh_lease_states.py."""

from __future__ import annotations

import pytest

from service.base.agh_states import (
    ACTIVE,
    CANCELED,
    CLAIMED,
    COMPLETED,
    FAILED,
    NEEDS_ATTENTION,
    QUEUED,
    RUNNING,
    STARTING,
    TERMINAL,
    UNFINISHED,
)
from service.domain.agh import states
from service.domain.agh.tasks import new_run
from service.store.agh.tasks import RunRecord, TaskRecord

RUN_STATUSES = (QUEUED, CLAIMED, STARTING, RUNNING, COMPLETED, FAILED, CANCELED, NEEDS_ATTENTION)
NOW = 1_000_000
LEASE = 30_000_000
W, OTHER = "w", "other"


def _task(status: str = "ready", max_attempts: int = 3) -> TaskRecord:
    return TaskRecord("t", 1, "t", "", "global", None, "medium", status, max_attempts, False, None, 0, 0, 0)


def _claimed_run() -> RunRecord:
    run = new_run(_task(), 1, NOW, origin=("daemon", "test"))
    states.claim(run, W, "sha256:token", NOW, NOW + LEASE)
    return run


def test_every_run_status_is_queued_active_terminal_or_needs_attention() -> None:
    assert not set(ACTIVE) & set(TERMINAL)
    assert set(UNFINISHED) == {QUEUED, *ACTIVE}
    assert {QUEUED, *ACTIVE, *TERMINAL, NEEDS_ATTENTION} == set(RUN_STATUSES)


@pytest.mark.parametrize("status", RUN_STATUSES)
def test_only_an_active_run_holds_a_lease(status: str) -> None:
    run = _claimed_run()
    run.status = status
    assert states.holds_lease(run, W, NOW) == (status in ACTIVE)


def test_a_claim_gives_its_session_a_lease_until_its_end() -> None:
    run = _claimed_run()
    assert (run.status, run.session_id, run.claimed_by_ref, run.attempt) == (CLAIMED, W, W, 1)
    assert states.holds_lease(run, W, NOW)
    assert states.holds_lease(run, W, NOW + LEASE - 1)
    assert not states.holds_lease(run, W, NOW + LEASE)  # the lease has ended
    assert not states.holds_lease(run, OTHER, NOW)  # someone else's lease


def test_a_run_without_a_claim_token_holds_no_lease() -> None:
    run = _claimed_run()
    run.claim_token_hash = None
    assert not states.holds_lease(run, W, NOW)


def test_a_requeued_run_keeps_its_attempt_and_forgets_its_claim() -> None:
    run = _claimed_run()
    run.error, run.result = "x", {"partial": True}
    states.requeue(run)
    assert run.status == QUEUED and run.attempt == 1
    assert (run.session_id, run.claimed_by_kind, run.claimed_by_ref, run.claim_token_hash) == (None,) * 4
    assert (run.lease_until, run.heartbeat_at, run.claimed_at, run.started_at, run.ended_at) == (None,) * 5
    assert (run.error, run.result) == (None, None)
    assert not states.holds_lease(run, W, NOW)


def test_a_claim_clears_what_a_previous_holder_left() -> None:
    run = _claimed_run()
    run.started_at, run.ended_at, run.error, run.result = NOW, NOW, "x", 1
    states.claim(run, OTHER, "sha256:again", NOW + 1, NOW + 1 + LEASE)
    assert (run.started_at, run.ended_at, run.error, run.result) == (None,) * 4
    assert states.holds_lease(run, OTHER, NOW + 1) and not states.holds_lease(run, W, NOW + 1)


@pytest.mark.parametrize(
    ("runs", "attempts", "exhausted"),
    [([], 1, False), ([1], 1, True), ([1], 2, False), ([1, 2], 2, True), ([2, 1], 3, False)],
)
def test_attempts_are_exhausted_when_the_next_would_pass_the_maximum(
    runs: list[int], attempts: int, exhausted: bool
) -> None:
    task = _task(max_attempts=attempts)
    records = [new_run(task, a, NOW, origin=("daemon", "test")) for a in runs]
    assert states.attempts_exhausted(task, records) == exhausted


@pytest.mark.parametrize(
    ("runs", "current", "max_attempts", "expected"),
    [
        ([], "draft", 3, "draft"),
        ([("queued", 1)], "draft", 3, "draft"),
        ([("queued", 1)], "ready", 3, "ready"),
        ([("claimed", 1)], "ready", 3, "ready"),
        ([("running", 1)], "ready", 3, "in_progress"),
        ([("starting", 1), ("failed", 1)], "ready", 3, "in_progress"),
        ([("completed", 1)], "ready", 3, "completed"),
        ([("failed", 1)], "ready", 3, "ready"),
        ([("failed", 1), ("failed", 2), ("failed", 3)], "ready", 3, "failed"),
        ([("failed", 1)], "ready", 1, "failed"),
        ([("failed", 1), ("completed", 2)], "ready", 3, "completed"),
        ([("completed", 1), ("canceled", 2)], "ready", 3, "canceled"),
        ([("queued", 1)], "canceled", 3, "canceled"),
    ],
)
def test_task_status_is_derived_from_its_runs(
    runs: list[tuple[str, int]], current: str, max_attempts: int, expected: str
) -> None:
    task = TaskRecord("t", 1, "t", "", "global", None, "medium", current, max_attempts, False, None, 0, 0, 0)
    records = [new_run(task, attempt, i, origin=("daemon", "test")) for i, (_, attempt) in enumerate(runs)]
    for record, (status, _) in zip(records, runs, strict=True):
        record.status = status
    assert states.derive_status(task, records) == expected
