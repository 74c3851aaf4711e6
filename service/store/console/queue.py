"""The AGH task queue as the console shows it: tasks newest first on their
per-workspace number, each with its latest run; the held leases soonest
expiry first; runs of one task by attempt."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from service.base.agh_states import ACTIVE
from service.store.agh.tables import agh_task_runs, agh_tasks
from service.store.console import cursors
from service.store.console.records import Count, QueueTask, Run
from service.store.console.times import from_micros, to_micros

MAX_LEASES = 100
_TASK_PREFIX = "TASK-"

_RUN_COLUMNS = (
    agh_task_runs.c.id,
    agh_task_runs.c.task_id,
    agh_task_runs.c.attempt,
    agh_task_runs.c.status,
    agh_task_runs.c.session_id,
    agh_task_runs.c.claimed_by_kind,
    agh_task_runs.c.claimed_by_ref,
    agh_task_runs.c.queued_at,
    agh_task_runs.c.claimed_at,
    agh_task_runs.c.started_at,
    agh_task_runs.c.ended_at,
    agh_task_runs.c.heartbeat_at,
    agh_task_runs.c.lease_until,
    agh_task_runs.c.failure_kind,
    agh_task_runs.c.error,
)
_TASK_COLUMNS = (
    agh_tasks.c.number,
    agh_tasks.c.id,
    agh_tasks.c.title,
    agh_tasks.c.priority,
    agh_tasks.c.status,
    agh_tasks.c.paused,
    agh_tasks.c.max_attempts,
    agh_tasks.c.created_at,
    agh_tasks.c.updated_at,
)


def _run(r: Any, now_us: int) -> Run:
    held = r.status in ACTIVE and r.lease_until is not None
    return Run(
        id=r.id,
        task_id=r.task_id,
        attempt=r.attempt,
        status=r.status,
        session_id=r.session_id or "",
        holder_kind=r.claimed_by_kind or "",
        holder_ref=r.claimed_by_ref or "",
        queued_at=from_micros(r.queued_at),
        claimed_at=from_micros(r.claimed_at),
        started_at=from_micros(r.started_at),
        ended_at=from_micros(r.ended_at),
        heartbeat_at=from_micros(r.heartbeat_at),
        lease_until=from_micros(r.lease_until),
        lease_ms_left=(r.lease_until - now_us) // 1000 if held else 0,
        failure_kind=r.failure_kind or "",
        error=r.error or "",
    )


def _tasks_with_runs(conn: Connection, workspace: str, rows: Sequence[Any], now_us: int) -> list[QueueTask]:
    """The tasks of `rows` with their attempt counts and latest runs."""
    r = agh_task_runs.c
    latest: dict[str, Run] = {}
    attempts: dict[str, int] = {}
    if rows:
        for run in conn.execute(
            select(*_RUN_COLUMNS)
            .where(r.workspace == workspace, r.task_id.in_([t.id for t in rows]))
            .order_by(r.task_id, r.attempt)
        ):
            attempts[run.task_id] = attempts.get(run.task_id, 0) + 1
            latest[run.task_id] = _run(run, now_us)
    return [
        QueueTask(
            id=t.id,
            identifier=f"{_TASK_PREFIX}{t.number}",
            title=t.title,
            priority=t.priority,
            status=t.status,
            paused=t.paused,
            attempts=attempts.get(t.id, 0),
            max_attempts=t.max_attempts,
            created_at=from_micros(t.created_at),
            updated_at=from_micros(t.updated_at),
            latest_run=latest.get(t.id),
        )
        for t in rows
    ]


def counts(conn: Connection, workspace: str, by: str) -> list[Count]:
    """The workspace's tasks counted by `status` or `priority`."""
    column = agh_tasks.c[by]
    return [
        Count(r[0], int(r[1]))
        for r in conn.execute(
            select(column, func.count())
            .where(agh_tasks.c.workspace == workspace)
            .group_by(column)
            .order_by(column)
        )
    ]


def tasks(
    conn: Connection, workspace: str, state: str, priority: str, size: int, token: str, now: datetime
) -> tuple[list[QueueTask], str]:
    filters = (state, priority)
    position = cursors.decode("console.queue", filters, token)
    t = agh_tasks.c
    q = select(*_TASK_COLUMNS).where(t.workspace == workspace)
    if position is not None:
        q = q.where(t.number < cursors.checked(position, int)[0])
    if state:
        q = q.where(t.status == state)
    if priority:
        q = q.where(t.priority == priority)
    rows = conn.execute(q.order_by(t.number.desc()).limit(size + 1)).all()
    page = rows[:size]
    token_out = cursors.encode("console.queue", filters, [page[-1].number]) if len(rows) > size else ""
    return _tasks_with_runs(conn, workspace, page, to_micros(now)), token_out


def leases(conn: Connection, workspace: str, now: datetime) -> list[Run]:
    r = agh_task_runs.c
    rows = conn.execute(
        select(*_RUN_COLUMNS)
        .where(r.workspace == workspace, r.status.in_(ACTIVE))
        .order_by(r.lease_until, r.id)
        .limit(MAX_LEASES)
    )
    now_us = to_micros(now)
    return [_run(x, now_us) for x in rows]


def find_task(conn: Connection, workspace: str, task_id: str, now: datetime) -> QueueTask | None:
    """A task by id or by its identifier (`TASK-7`)."""
    t = agh_tasks.c
    q = select(*_TASK_COLUMNS).where(t.workspace == workspace)
    number = task_id[len(_TASK_PREFIX) :]
    if task_id.startswith(_TASK_PREFIX) and number.isdigit() and len(number) < 19:
        q = q.where(t.number == int(number))
    else:
        q = q.where(t.id == task_id)
    row = conn.execute(q).first()
    return None if row is None else _tasks_with_runs(conn, workspace, [row], to_micros(now))[0]


def runs(
    conn: Connection, workspace: str, task_id: str, size: int, token: str, now: datetime
) -> tuple[list[Run], str]:
    """A task's runs, newest attempt first (`task_id` is the task's id)."""
    position = cursors.decode("console.runs", (task_id,), token)
    r = agh_task_runs.c
    q = select(*_RUN_COLUMNS).where(r.workspace == workspace, r.task_id == task_id)
    if position is not None:
        q = q.where(r.attempt < cursors.checked(position, int)[0])
    rows = conn.execute(q.order_by(r.attempt.desc()).limit(size + 1)).all()
    page = rows[:size]
    token_out = cursors.encode("console.runs", (task_id,), [page[-1].attempt]) if len(rows) > size else ""
    now_us = to_micros(now)
    return [_run(x, now_us) for x in page], token_out
