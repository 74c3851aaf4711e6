"""Leases on task runs: claim, heartbeat, complete, fail, release, and the
sweep that puts expired leases back in the queue.

A claim takes the highest-priority, oldest queued run and gives the caller
a lease until now + `lease_seconds`. Each claim carries a fencing token: a
random token of which only the SHA-256 is kept and shown
(`claim_token_hash`, `sha256:<hex>`, as upstream). A lease operation is
accepted only from the session that holds the run, while its lease has not
passed its end, and (if the caller passes the hash back) for the same claim:
so a holder that paused past its lease, or whose run was swept and claimed
again (even by the same session), is refused with 409 and changes nothing,
at once, before any sweep.

Upstream finds the caller's lease from its session, so the token never
travels; its decisions and messages are kept (`AUTONOMY_*`). Every change is
one log entry in the same transaction as the run and task updates.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.base.agh_states import ACTIVE, CANCELED, COMPLETED, FAILED
from service.base.errors import Aborted, PermissionDenied
from service.domain.agh import states, tasks
from service.domain.agh.common import invalid_field, iso, now_us, record
from service.domain.agh.identity import Caller, Claimed, admit, check_workspace, require_headers, resolve
from service.domain.agh.reasons import AghReason
from service.domain.validation import reject_nul_characters
from service.store.agh import tasks as q
from service.store.agh.tasks import RUNS, TASKS, RunRecord, TaskRecord
from service.store.log import Db, Tx
from service.store.store import Store

DEFAULT_LEASE_SECONDS = 300
MAX_LEASE_SECONDS = 86_400
DEFAULT_WAIT_SECONDS = 30
# How long before the caller's deadline a wait ends.
DEADLINE_MARGIN = 0.2
MAX_WAIT_SECONDS = 300
_REJECTED = "task: autonomy lease rejected"


@dataclass
class Claim:
    task: TaskRecord
    run: RunRecord


@dataclass(frozen=True)
class ClaimSpec:
    workspace_id: str = ""
    priority_min: int = 0
    lease_seconds: int = 0
    wait: bool = False
    wait_seconds: int = 0


def lease_micros(lease_seconds: int) -> int:
    """The lease length asked for, in microseconds (0 means the default)."""
    if lease_seconds < 0:
        raise invalid_field("lease_seconds", "must not be negative")
    if lease_seconds > MAX_LEASE_SECONDS:
        raise invalid_field("lease_seconds", f"exceeds {MAX_LEASE_SECONDS}")
    return (lease_seconds or DEFAULT_LEASE_SECONDS) * 1_000_000


def _check_claim(spec: ClaimSpec) -> None:
    """Validate the request (after the caller's identity, as upstream)."""
    if spec.priority_min < 0:
        raise invalid_field("priority_min", "must not be negative")
    lease_micros(spec.lease_seconds)
    if not 0 <= spec.wait_seconds <= MAX_WAIT_SECONDS:
        raise invalid_field("wait_seconds", f"must be between 0 and {MAX_WAIT_SECONDS}")


def _token_hash() -> str:
    """A new claim's fencing token, of which only the hash is kept."""
    return "sha256:" + hashlib.sha256(secrets.token_bytes(32)).hexdigest()


def _already_leased(caller: Caller, held: RunRecord) -> Aborted:
    return Aborted(
        f'task: active run lease exists: session "{caller.session_id}" already owns an active task-run lease',
        reason=AghReason.TASK_RUN_STILL_ACTIVE,
        metadata={"session_id": caller.session_id, "run_id": held.id},
    )


def _claim_op(workspace: str, claimed: Claimed, spec: ClaimSpec) -> Callable[[Tx], Claim | None]:
    def op(tx: Tx) -> Claim | None:
        caller = resolve(tx.conn, workspace, claimed)
        check_workspace(workspace, spec.workspace_id)
        _check_claim(spec)
        now = now_us()
        found = q.next_queued(
            tx,
            workspace,
            caller.session_id,
            now,
            spec.priority_min,
            workspace_scope_only=bool(spec.workspace_id),
        )
        if found is None:
            held = q.active_lease(tx, workspace, caller.session_id, now)
            if held is not None:
                raise _already_leased(caller, held)
            return None
        run, task = found
        states.claim(run, caller.session_id, _token_hash(), now, now + lease_micros(spec.lease_seconds))
        RUNS.save(tx, workspace, run)
        # A claimed run leaves its task `ready`, as the queued one did.
        record(
            tx,
            workspace,
            "task_run.claimed",
            task,
            run,
            actor=caller.actor(),
            session_id=caller.session_id,
            now=now,
        )
        TASKS.save(tx, workspace, task)
        return Claim(task, run)

    return op


async def claim_next(
    store: Store, workspace: str, claimed: Claimed, spec: ClaimSpec, *, give_up_in: float | None = None
) -> Claim | None:
    """Claim the next run; None when nothing is queued (after waiting, if asked).
    `give_up_in`: seconds before the caller gives up (its deadline): a wait
    ends a little before, so the caller hears "nothing queued" rather than
    a timeout.

    A waiting claimer never polls: it sleeps on the store's notifier, which
    wakes on every commit (on PostgreSQL, on every replica's, through
    LISTEN/NOTIFY), then reads whether anything is claimable before it asks
    the writer to claim. Anything committed after the claim attempt moves the
    notifier past the position noted before it, so no wake-up is lost."""
    require_headers(claimed)
    # Validated by the first attempt, before any waiting.
    wait = float(spec.wait_seconds or DEFAULT_WAIT_SECONDS) if spec.wait else 0.0
    if give_up_in is not None:
        wait = max(0.0, min(wait, give_up_in - DEADLINE_MARGIN))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    notifier = store.notifier
    scope_only = bool(spec.workspace_id)
    while True:
        seen = notifier.head
        claim = await store.write(_claim_op(workspace, claimed, spec))
        if claim is not None or not wait:
            return claim
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0 or not await notifier.wait_beyond(seen, remaining):
                return None
            seen = notifier.head
            if await store.read(
                lambda conn: q.any_queued(conn, workspace, spec.priority_min, workspace_scope_only=scope_only)
            ):
                break


def _rejected(reason: AghReason, code: str, detail: str, run_id: str, **extra: str) -> Aborted:
    return Aborted(f"{_REJECTED}: {code}: {detail}", reason=reason, metadata={"run_id": run_id, **extra})


def _caller_and_run(
    db: Db, workspace: str, claimed: Claimed, run_id: str
) -> tuple[Caller, tuple[RunRecord, TaskRecord] | None]:
    """The caller (or its identity error) and the run it names, in one read."""
    session, found = q.session_and_run(db, workspace, claimed.session_id, run_id)
    return admit(claimed, session), found


def _held_run(
    db: Db,
    workspace: str,
    caller: Caller,
    run_id: str,
    found: tuple[RunRecord, TaskRecord] | None,
    fence: str,
    now: int,
    stale: AghReason,
) -> tuple[RunRecord, TaskRecord]:
    """The run `run_id` (`found`, with its task) if the caller holds an
    unexpired lease on it (and, if `fence` is given, under that claim); else
    upstream's refusal. `stale` is the reason for a lease that is no longer
    the caller's."""
    run = found[0] if found else None
    if found is None or run is None or run.session_id != caller.session_id or run.claim_token_hash is None:
        held = q.active_lease(db, workspace, caller.session_id, now)
        if held is not None and held.id != run_id:
            raise PermissionDenied(
                f'{_REJECTED}: AUTONOMY_FOREIGN_RUN: run "{run_id}" is not owned by session "{caller.session_id}"',
                reason=AghReason.TASK_RUN_NOT_OWNED,
                metadata={"run_id": run_id, "session_id": caller.session_id},
            )
        raise _rejected(stale, "AUTONOMY_NO_ACTIVE_LEASE", "invalid claim token", run_id)
    if run.status in (COMPLETED, FAILED, "canceled"):
        reason = stale if stale != AghReason.TASK_RUN_STALE_LEASE else AghReason.TASK_RUN_ALREADY_TERMINAL
        raise _rejected(
            reason, "AUTONOMY_LEASE_EXPIRED", f"run is already {run.status}", run_id, status=run.status
        )
    if run.status not in ACTIVE or run.lease_until is None or run.lease_until <= now:
        raise _rejected(stale, "AUTONOMY_LEASE_EXPIRED", "lease expired", run_id)
    if fence and fence != run.claim_token_hash:
        raise _rejected(stale, "AUTONOMY_LEASE_EXPIRED", "invalid claim token", run_id)
    return found


def _ending_op(
    workspace: str,
    claimed: Claimed,
    run_id: str,
    fence: str,
    check: Callable[[], None],
    end: Callable[[RunRecord, int], str],
    *,
    stale: AghReason = AghReason.TASK_RUN_STALE_LEASE,
) -> Callable[[Tx], tuple[TaskRecord, RunRecord]]:
    """The shape of complete, fail and release: resolve the caller, validate,
    find the held run, end its lease (`end` returns the log entry type),
    queue a retry if due, derive the task's status, log, save."""

    def op(tx: Tx) -> tuple[TaskRecord, RunRecord]:
        caller, found = _caller_and_run(tx, workspace, claimed, run_id)
        check()
        now = now_us()
        run, task = _held_run(tx, workspace, caller, run_id, found, fence, now, stale)
        kind = end(run, now)
        RUNS.save(tx, workspace, run)
        record(tx, workspace, kind, task, run, actor=caller.actor(), session_id=caller.session_id, now=now)
        retry_or_settle(tx, workspace, task, run, now)
        TASKS.save(tx, workspace, task)
        return task, run

    return op


def retry_or_settle(tx: Tx, workspace: str, task: TaskRecord, run: RunRecord, now: int) -> None:
    """After a run's lease ended: queue a retry when it failed with attempts
    left, then derive the task's status. A task has at most one unfinished
    run at a time (a run is queued only when none is), so the run that just
    ended is its latest attempt and the only one that decides."""
    runs = [run]
    if run.status == FAILED and task.status != CANCELED and not states.attempts_exhausted(task, runs):
        actor = {"kind": "daemon", "ref": "retry"}
        retry = tasks.queue_run(
            tx,
            workspace,
            task,
            run.attempt + 1,
            now,
            actor=actor,
            origin=("daemon", "retry"),
            previous=run.id,
        )
        runs.append(retry)
    tasks.settle(tx, workspace, task, runs)


async def heartbeat(
    store: Store, workspace: str, claimed: Claimed, run_id: str, lease_seconds: int, fence: str
) -> tuple[TaskRecord, RunRecord]:
    """Extend the caller's lease to now + `lease_seconds` (default 300). The
    hottest write of the queue: two columns of the run and a small log entry."""

    def op(tx: Tx) -> tuple[TaskRecord, RunRecord]:
        caller, found = _caller_and_run(tx, workspace, claimed, run_id)
        extension = lease_micros(lease_seconds)
        now = now_us()
        run, task = _held_run(
            tx, workspace, caller, run_id, found, fence, now, AghReason.TASK_RUN_STALE_LEASE
        )
        run.heartbeat_at, run.lease_until = now, now + extension
        q.extend_lease(tx, workspace, run)
        data = {
            "task_id": run.task_id,
            "run_id": run.id,
            "heartbeat_at": iso(now),
            "lease_until": iso(run.lease_until),
            "actor": caller.actor(),
        }
        tx.append("task_run.heartbeat", workspace, data, session_id=caller.session_id, occurred_at=iso(now))
        return task, run

    require_headers(claimed)
    return await store.write(op)


def _no_claim_token(field: str, value: Any) -> None:
    """Upstream refuses a payload that carries a `claim_token` key anywhere."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "claim_token":
                raise invalid_field(f"{field}.{key}", "must not contain a claim_token field")
            _no_claim_token(f"{field}.{key}", item)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _no_claim_token(f"{field}[{i}]", item)


async def complete(
    store: Store, workspace: str, claimed: Claimed, run_id: str, result: Any, fence: str
) -> tuple[TaskRecord, RunRecord]:
    """Complete the caller's run with `result` (JSON, at most 64 KiB)."""

    def check() -> None:
        reject_nul_characters(result, "result")
        tasks.payload_size("result", result)
        _no_claim_token("result", result)

    def end(run: RunRecord, now: int) -> str:
        run.status, run.ended_at, run.result, run.error = COMPLETED, now, result, None
        run.lease_until = run.heartbeat_at = None
        return "task_run.completed"

    require_headers(claimed)
    return await store.write(_ending_op(workspace, claimed, run_id, fence, check, end))


async def fail(
    store: Store, workspace: str, claimed: Claimed, run_id: str, error: str, metadata: Any, fence: str
) -> tuple[TaskRecord, RunRecord]:
    """Fail the caller's run with `error`; a retry is queued while attempts remain."""

    def check() -> None:
        reject_nul_characters({"error": error, "metadata": metadata})
        if not error.strip():
            raise invalid_field("error", "is required")
        tasks.payload_size("metadata", metadata)
        _no_claim_token("metadata", metadata)

    def end(run: RunRecord, now: int) -> str:
        run.status, run.ended_at, run.error, run.result = FAILED, now, error.strip(), None
        run.failure_kind, run.metadata = "error", metadata
        run.lease_until = run.heartbeat_at = None
        return "task_run.failed"

    require_headers(claimed)
    return await store.write(_ending_op(workspace, claimed, run_id, fence, check, end))


async def release(
    store: Store, workspace: str, claimed: Claimed, run_id: str, reason: str, fence: str
) -> tuple[TaskRecord, RunRecord]:
    """Give the caller's run back to the queue."""

    def check() -> None:
        reject_nul_characters({"reason": reason})

    def end(run: RunRecord, now: int) -> str:
        states.requeue(run)
        return "task_run.released"

    require_headers(claimed)
    op = _ending_op(workspace, claimed, run_id, fence, check, end, stale=AghReason.TASK_RUN_NOT_RELEASABLE)
    return await store.write(op)


SWEEP_BATCH = 500


def _sweep_op(now: int) -> Callable[[Tx], int]:
    def op(tx: Tx) -> int:
        count = 0
        for workspace, run_id in q.expired(tx, now, SWEEP_BATCH):
            found = q.run_with_task(tx, workspace, run_id)
            assert found is not None, "an expired run vanished in its own transaction"
            run, task = found
            holder = run.session_id
            states.requeue(run)
            RUNS.save(tx, workspace, run)
            tasks.settle(tx, workspace, task, [run])
            actor = {"kind": "daemon", "ref": "lease_sweeper"}
            payload = {"expired_session_id": holder}
            record(tx, workspace, "task_run.lease_expired", task, run, actor=actor, payload=payload, now=now)
            TASKS.save(tx, workspace, task)
            count += 1
        return count

    return op


async def sweep_expired(store: Store) -> int:
    """Put every run whose lease has ended back in the queue; returns how many."""
    total = 0
    while True:
        swept = await store.write(_sweep_op(now_us()))
        total += swept
        if swept < SWEEP_BATCH:
            return total


async def queue_figures(store: Store) -> tuple[int, int, int]:
    """(queued, leased, expired) task runs now, across workspaces (for /metrics)."""
    now = now_us()
    return await store.read(lambda conn: q.queue_figures(conn, now))
