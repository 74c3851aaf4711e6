"""The operator's side of the AGH task queue: tasks and their runs.

A task is created with its first run queued (unless it is a draft); more
runs are queued by the operator or, after a failure with attempts left, by
the queue itself. A task's status is never set directly: it is derived from
its runs after every change (service.domain.agh.states.derive_status).

Every change appends to the event log (`task.*`, `task_run.*`) in the same
transaction, indexed under the task for its context's recent events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from service.base.agh_states import CANCELED, DRAFT, QUEUED, READY, UNFINISHED
from service.base.errors import FailedPrecondition, NotFound, PermissionDenied, ResourceExhausted
from service.base.ids import uuid7
from service.domain.agh.channels.messaging import open_run_channel
from service.domain.agh.common import invalid_field, now_us, record
from service.domain.agh.reasons import AghReason
from service.domain.agh.states import derive_status
from service.domain.validation import reject_nul_characters
from service.store.agh import tasks as q
from service.store.agh.tasks import RUNS, TASKS, RunRecord, TaskRecord
from service.store.log import Db, Tx
from service.store.store import Store

GLOBAL = "global"
WORKSPACE = "workspace"
SCOPES = (GLOBAL, WORKSPACE)
PRIORITY_RANKS = {"low": 10, "medium": 20, "high": 30, "urgent": 40}
DEFAULT_PRIORITY = "medium"
DEFAULT_MAX_ATTEMPTS = 3
MAX_ATTEMPTS_LIMIT = 10
# JSON payloads (a result, failure metadata, task metadata): at most 64 KiB.
MAX_PAYLOAD_BYTES = 64 * 1024
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_FIRST_PAGE = 2**62


@dataclass
class TaskWithRuns:
    task: TaskRecord
    runs: list[RunRecord]


# A task's identifier: `TASK-<number>` (any case).
_IDENTIFIER = re.compile(r"(?i)TASK-([1-9][0-9]{0,17})")


def not_found(task_id: str) -> NotFound:
    return NotFound(
        f'task "{task_id}" not found', reason=AghReason.TASK_NOT_FOUND, metadata={"task_id": task_id}
    )


def existing(db: Db, workspace: str, task_id: str) -> TaskRecord:
    task = TASKS.get(db, workspace, task_id)
    if task is None:
        raise not_found(task_id)
    return task


def payload_size(field: str, value: Any) -> None:
    """Refuse a JSON payload over 64 KiB (413 `payload_too_large`), as upstream."""
    size = len(orjson.dumps(value))
    if size > MAX_PAYLOAD_BYTES:
        raise ResourceExhausted(
            f"task: payload too large: {field} is {size} bytes, more than {MAX_PAYLOAD_BYTES}",
            reason=AghReason.PAYLOAD_TOO_LARGE,
            metadata={"field": field, "limit_bytes": str(MAX_PAYLOAD_BYTES)},
        )


def new_run(
    task: TaskRecord, attempt: int, now: int, *, origin: tuple[str, str], previous: str | None = None
) -> RunRecord:
    return RunRecord(
        id=uuid7(),
        task_id=task.id,
        attempt=attempt,
        status=QUEUED,
        priority_rank=PRIORITY_RANKS[task.priority],
        previous_run_id=previous,
        failure_kind=None,
        session_id=None,
        claimed_by_kind=None,
        claimed_by_ref=None,
        claim_token_hash=None,
        origin_kind=origin[0],
        origin_ref=origin[1],
        queued_at=now,
    )


def queue_run(
    tx: Tx,
    workspace: str,
    task: TaskRecord,
    attempt: int,
    now: int,
    *,
    actor: dict[str, str],
    origin: tuple[str, str],
    previous: str | None = None,
) -> RunRecord:
    """Insert a queued run with its coordination channel and log it (the
    caller derives and saves the task)."""
    run = new_run(task, attempt, now, origin=origin, previous=previous)
    RUNS.insert(tx, workspace, run)
    open_run_channel(tx, workspace, task.id, run.id, now)
    record(tx, workspace, "task_run.queued", task, run, actor=actor, now=now)
    return run


def settle(db: Db, workspace: str, task: TaskRecord, runs: list[RunRecord] | None = None) -> None:
    """Derive the task's status from its runs (the caller saves the task)."""
    task.status = derive_status(task, runs if runs is not None else q.runs_of_task(db, workspace, task.id))


@dataclass(frozen=True)
class NewTask:
    """What the operator asks for (as received; checked by `create_task`)."""

    title: str
    description: str = ""
    scope: str = ""
    workspace: str = ""
    priority: str = ""
    max_attempts: int = 0
    draft: bool = False
    metadata: dict[str, Any] | None = None


def _checked(spec: NewTask, caller_workspace: str) -> tuple[str, str | None, str, int]:
    """(scope, scope workspace, priority, max attempts), or the first bad field."""
    reject_nul_characters(spec.__dict__)
    scope = spec.scope.strip() or GLOBAL
    if scope not in SCOPES:
        raise invalid_field("scope", "must be global or workspace")
    if not spec.title.strip():
        raise invalid_field("title", "is required")
    priority = spec.priority.strip() or DEFAULT_PRIORITY
    if priority not in PRIORITY_RANKS:
        raise invalid_field("priority", "must be low, medium, high or urgent")
    max_attempts = spec.max_attempts or DEFAULT_MAX_ATTEMPTS
    if not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT:
        raise invalid_field("max_attempts", f"must be between 1 and {MAX_ATTEMPTS_LIMIT}")
    if spec.metadata is not None:
        payload_size("metadata", spec.metadata)
    named = spec.workspace.strip()
    if scope == GLOBAL:
        if named:
            raise invalid_field("workspace", "must be empty for a global task")
        return scope, None, priority, max_attempts
    if named and named != caller_workspace:
        raise PermissionDenied(
            f'task: workspace "{named}" is not the caller\'s workspace',
            reason=AghReason.WORKSPACE_MISMATCH,
            metadata={"workspace": named},
        )
    return scope, caller_workspace, priority, max_attempts


async def create_task(
    store: Store, workspace: str, spec: NewTask, *, actor: dict[str, str]
) -> tuple[TaskRecord, RunRecord | None]:
    """Create a task and, unless it is a draft, queue its first run."""
    scope, scope_workspace, priority, max_attempts = _checked(spec, workspace)

    def op(tx: Tx) -> tuple[TaskRecord, RunRecord | None]:
        now = now_us()
        task = TaskRecord(
            id=uuid7(),
            number=q.next_number(tx, workspace),
            title=spec.title.strip(),
            description=spec.description,
            scope=scope,
            scope_workspace=scope_workspace,
            priority=priority,
            status=DRAFT if spec.draft else READY,
            max_attempts=max_attempts,
            paused=False,
            metadata=spec.metadata,
            latest_event_seq=0,
            created_at=now,
            updated_at=now,
        )
        TASKS.insert(tx, workspace, task)
        record(tx, workspace, "task.created", task, actor=actor, now=now)
        run = None
        if not spec.draft:
            run = queue_run(tx, workspace, task, 1, now, actor=actor, origin=("daemon", "task_api"))
        settle(tx, workspace, task, [run] if run else [])
        TASKS.save(tx, workspace, task)
        return task, run

    return await store.write(op)


def _page(page_size: int, page_token: str) -> tuple[int, int]:
    size = page_size or DEFAULT_PAGE_SIZE
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise invalid_field("page_size", f"must be between 1 and {MAX_PAGE_SIZE}")
    if not page_token:
        return size, _FIRST_PAGE
    if not page_token.isdigit() or not 0 < int(page_token) < _FIRST_PAGE:
        raise invalid_field("page_token", "is not a token this server gave")
    return size, int(page_token)


async def list_tasks(
    store: Store, workspace: str, *, status: str, priority: str, scope: str, page_size: int, page_token: str
) -> tuple[list[TaskRecord], str]:
    """A page of tasks, newest first, and the token of the next page ("" at the end)."""
    size, before = _page(page_size, page_token)
    reject_nul_characters({"status": status, "priority": priority, "scope": scope})

    def read(conn: Any) -> list[TaskRecord]:
        return q.list_tasks(
            conn, workspace, status=status, priority=priority, scope=scope, before=before, limit=size + 1
        )

    found = await store.read(read)
    more = len(found) > size
    page = found[:size]
    return page, str(page[-1].number) if more else ""


async def get_task(store: Store, workspace: str, task_id: str) -> TaskWithRuns:
    """A task by its id or by its identifier (`TASK-7`, as lists show it)."""

    def read(conn: Any) -> TaskWithRuns:
        task = TASKS.get(conn, workspace, task_id)
        numbered = _IDENTIFIER.fullmatch(task_id.strip())
        if task is None and numbered:
            task = q.task_by_number(conn, workspace, int(numbered.group(1)))
        if task is None:
            raise not_found(task_id)
        return TaskWithRuns(task, q.runs_of_task(conn, workspace, task.id))

    return await store.read(read)


async def queue_another_run(
    store: Store, workspace: str, task_id: str, *, actor: dict[str, str]
) -> tuple[TaskRecord, RunRecord]:
    """Queue a run (attempt = highest + 1); a draft task leaves draft."""

    def op(tx: Tx) -> tuple[TaskRecord, RunRecord]:
        task = existing(tx, workspace, task_id)
        if task.status == CANCELED:
            raise FailedPrecondition(
                f'task "{task_id}" is canceled', reason=AghReason.TASK_CANCELED, metadata={"task_id": task_id}
            )
        runs = q.runs_of_task(tx, workspace, task_id)
        busy = next((r for r in runs if r.status in UNFINISHED), None)
        if busy is not None:
            raise FailedPrecondition(
                f'task "{task_id}" already has run "{busy.id}" {busy.status}',
                reason=AghReason.TASK_RUN_STILL_ACTIVE,
                metadata={"task_id": task_id, "run_id": busy.id},
            )
        now = now_us()
        if task.status == DRAFT:
            task.status = READY
        attempt = max((r.attempt for r in runs), default=0) + 1
        run = queue_run(tx, workspace, task, attempt, now, actor=actor, origin=("daemon", "task_api"))
        settle(tx, workspace, task, [*runs, run])
        TASKS.save(tx, workspace, task)
        return task, run

    return await store.write(op)


async def cancel_task(
    store: Store, workspace: str, task_id: str, reason: str, *, actor: dict[str, str]
) -> TaskRecord:
    """Cancel a task and every run not yet finished (a no-op when already canceled)."""
    reject_nul_characters({"reason": reason})

    def op(tx: Tx) -> TaskRecord:
        task = existing(tx, workspace, task_id)
        if task.status == CANCELED:
            return task
        now = now_us()
        ended = []
        for run in q.runs_of_task(tx, workspace, task_id):
            if run.status in UNFINISHED:
                run.status, run.ended_at, run.lease_until, run.heartbeat_at = CANCELED, now, None, None
                RUNS.save(tx, workspace, run)
                ended.append(run.id)
        task.status = CANCELED
        payload = {"reason": reason, "canceled_run_ids": ended}
        record(tx, workspace, "task.canceled", task, actor=actor, payload=payload, now=now)
        TASKS.save(tx, workspace, task)
        return task

    return await store.write(op)


async def set_paused(
    store: Store, workspace: str, task_id: str, paused: bool, *, actor: dict[str, str]
) -> TaskRecord:
    """Pause or resume a task (a no-op when it already is)."""

    def op(tx: Tx) -> TaskRecord:
        task = existing(tx, workspace, task_id)
        if task.paused == paused:
            return task
        task.paused = paused
        now = now_us()
        record(tx, workspace, "task.paused" if paused else "task.resumed", task, actor=actor, now=now)
        TASKS.save(tx, workspace, task)
        return task

    return await store.write(op)
