"""The read side: the task list, one task with what hangs off it, its
timeline, and the WebSocket's opening snapshot.

Pages are keyset pages: a cursor names the last item of the previous page
by its log position (opaque to clients: URL-safe base64 of JSON), so a page
never repeats or skips an item when tasks or events are added meanwhile.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection

from service.domain.tracer.display import task_views
from service.domain.tracer.model import (
    TASK_STATUSES,
    Violations,
    enum_error,
    session_view,
    task_not_found,
    turn_view,
)
from service.domain.tracer.rules.reads import show_rule_lane
from service.store.store import Store
from service.store.tracer import queries as q
from service.store.tracer.queries import TaskRecord, TokenTotals

TASK_PAGE = (50, 200)  # (default, largest) page sizes
TIMELINE_PAGE = (200, 1000)
EMBEDDED_TIMELINE = 1000  # the task detail's newest events (upstream's app never pages)
SNAPSHOT_TASKS = 200
MAX_ANCESTORS = 64
INVALID_CURSOR = "Invalid cursor"


@dataclass
class Page:
    items: list[dict[str, Any]] = field(default_factory=list)
    next_cursor: str | None = None


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def _seq_cursor(v: Violations, cursor: str | None) -> int | None:
    """The log position a cursor names (None for the first page)."""
    if not cursor:
        return None
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        value = None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        v.add("cursor", INVALID_CURSOR)
        return None
    return value


def _page_size(v: Violations, limit: int, sizes: tuple[int, int]) -> int:
    default, largest = sizes
    if limit == 0:
        return default
    if limit < 0:
        v.add("limit", "Number must be greater than or equal to 1")
    elif limit > largest:
        v.add("limit", f"Number must be less than or equal to {largest}")
    return limit


def token_view(t: TokenTotals) -> dict[str, Any]:
    return {
        "inputTokens": t.input_tokens,
        "outputTokens": t.output_tokens,
        "cacheReadTokens": t.cache_read_tokens,
        "cacheCreateTokens": t.cache_create_tokens,
        "costUsd": t.cost_usd,
        "events": t.token_events,
    }


async def list_tasks(
    store: Store,
    workspace: str,
    *,
    statuses: list[str],
    runtime_source: str | None,
    text: str | None,
    limit: int,
    cursor: str | None,
) -> Page:
    v = Violations()
    for i, status in enumerate(statuses):
        if status not in TASK_STATUSES:
            v.add(f"status.{i}", enum_error(TASK_STATUSES, status))
    size = _page_size(v, limit, TASK_PAGE)
    before = _seq_cursor(v, cursor)
    v.check()

    def read(conn: Connection) -> Page:
        rows = q.list_tasks(
            conn,
            workspace,
            statuses=statuses,
            runtime_source=runtime_source,
            text=text,
            before_seq=before,
            limit=size + 1,
        )
        page = Page(task_views(conn, workspace, rows[:size]))
        if len(rows) > size:
            page.next_cursor = encode_cursor(rows[size - 1].seq)
        return page

    return await store.read(read)


def _existing(conn: Connection, workspace: str, task_id: str) -> TaskRecord:
    task = q.get_task(conn, workspace, task_id)
    if task is None:
        raise task_not_found(task_id, read=True)
    return task


def _ancestors(conn: Connection, workspace: str, task: TaskRecord) -> list[TaskRecord]:
    """Parent, grandparent, …; a missing parent or a cycle ends the chain."""
    chain: list[TaskRecord] = []
    seen = {task.id}
    current = task
    while current.parent_task_id and current.parent_task_id not in seen and len(chain) < MAX_ANCESTORS:
        parent = q.get_task(conn, workspace, current.parent_task_id)
        if parent is None:
            break
        chain.append(parent)
        seen.add(parent.id)
        current = parent
    return chain


async def task_detail(store: Store, workspace: str, task_id: str) -> dict[str, Any]:
    """The task, its sessions (with their tokens), lineage, turns and tokens,
    its newest timeline events and its latest runtime session."""

    def read(conn: Connection) -> dict[str, Any]:
        task = _existing(conn, workspace, task_id)
        ancestors, children = _ancestors(conn, workspace, task), q.children(conn, workspace, task_id)
        views = task_views(conn, workspace, [task, *ancestors, *children])
        events, older = q.timeline_tail(conn, workspace, task_id, EMBEDDED_TIMELINE)
        binding = q.latest_binding(conn, workspace, task_id)
        return {
            "task": views[0],
            "sessions": [
                {**session_view(s), "tokenUsage": token_view(t)}
                for s, t in q.sessions_of_task(conn, workspace, task_id)
            ],
            "lineage": {
                "ancestors": views[1 : 1 + len(ancestors)],
                "children": views[1 + len(ancestors) :],
            },
            "turns": [
                {**turn_view(turn), "eventCount": n} for turn, n in q.turns_of_task(conn, workspace, task_id)
            ],
            "tokenUsage": token_view(q.task_tokens(conn, workspace, task_id)),
            "timeline": show_rule_lane(conn, workspace, events),
            "timelineOlderCount": older or None,
            "runtimeSource": binding[0] if binding else None,
            "runtimeSessionId": binding[1] if binding else None,
        }

    return await store.read(read)


def _timeline_page(conn: Connection, workspace: str, task_id: str, after: int | None, size: int) -> Page:
    rows = q.timeline(conn, workspace, task_id, after or 0, size + 1)
    page = Page(show_rule_lane(conn, workspace, [data for _, data in rows[:size]]))
    if len(rows) > size:
        page.next_cursor = encode_cursor(rows[size - 1][0])
    return page


async def timeline(store: Store, workspace: str, task_id: str, *, limit: int, cursor: str | None) -> Page:
    """The task's events in recording order."""
    v = Violations()
    size = _page_size(v, limit, TIMELINE_PAGE)
    after = _seq_cursor(v, cursor)
    v.check()

    def read(conn: Connection) -> Page:
        _existing(conn, workspace, task_id)
        return _timeline_page(conn, workspace, task_id, after, size)

    return await store.read(read)


async def snapshot(store: Store, workspace: str) -> dict[str, Any]:
    """Counts by status and the most recently updated tasks."""

    def read(conn: Connection) -> dict[str, Any]:
        counts = q.status_counts(conn, workspace)
        return {
            "stats": {
                "totalTasks": sum(counts.values()),
                **{f"{s}Tasks": counts.get(s, 0) for s in TASK_STATUSES},
                "totalEvents": q.event_count(conn, workspace),
            },
            "tasks": task_views(conn, workspace, q.recent_tasks(conn, workspace, SNAPSHOT_TASKS)),
        }

    return await store.read(read)
