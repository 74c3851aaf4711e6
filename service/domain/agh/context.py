"""What an agent reads about itself: /me, /context and the coordinator
configuration, each assembled in one read (one consistent snapshot).

agentplane has no agent definitions or capability registry, so
capabilities are an empty list, with its section metadata; everything the
task queue, the session projection, lineage, souls and channels know is
filled in (channels: service.domain.agh.channels.reading.channel_situation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from service.domain.agh import soul as souls
from service.domain.agh import states
from service.domain.agh.channels.reading import ChannelSituation, channel_situation
from service.domain.agh.identity import Caller, Claimed, require_headers, resolve
from service.domain.agh.spawn import lineage_of
from service.store.agh import tasks as q
from service.store.agh.tasks import TASKS, LineageRecord, RunRecord, TaskRecord
from service.store.log import Db
from service.store.store import Store

CONTEXT_SECTION_LIMIT = 8
MAX_ACTIVE_TASK_LEASES = 1
# The caller's current run: running > starting > claimed > queued.
_RUN_RANK = {"running": 4, "starting": 3, "claimed": 2, "queued": 1}
_SESSION_RUNS_SCANNED = 50
BUNDLE_LIMITS = {
    "context_body_max_bytes": souls.MAX_BODY_BYTES,
    "max_runtime_seconds": 0,
    "summary_max_bytes": 4096,
}
COORDINATOR_DEFAULTS = {
    "enabled": False,
    "agent_name": "coordinator",
    "default_ttl_seconds": 7200,
    "max_children": 5,
    "max_active_sessions_per_workspace": 5,
}


@dataclass
class TaskEvent:
    seq: int
    event_id: str
    type: str
    recorded_at: Any
    data: dict[str, Any]


@dataclass
class CurrentTask:
    task: TaskRecord
    run: RunRecord
    holds_lease: bool
    prior_attempts: list[RunRecord]
    events: list[TaskEvent]


@dataclass
class Situation:
    """Everything /me and /context show, read in one snapshot."""

    workspace: str
    caller: Caller
    lineage: LineageRecord
    has_lineage: bool
    session_updated_at: Any
    current: CurrentTask | None
    soul: souls.SoulState
    channels: ChannelSituation


def section(total: int, limit: int = CONTEXT_SECTION_LIMIT) -> dict[str, Any]:
    """Upstream's SectionMeta: returned = min(total, limit), truncated = total > limit."""
    return {"limit": limit, "returned": min(total, limit), "truncated": total > limit}


def _current(db: Db, workspace: str, caller: Caller, now: int) -> CurrentTask | None:
    runs = [
        r
        for r in q.runs_of_session(db, workspace, caller.session_id, _SESSION_RUNS_SCANNED)
        if r.status in _RUN_RANK
    ]
    if not runs:
        return None
    # Sorted by recent activity already: max() keeps the first of equal rank.
    run = max(runs, key=lambda r: _RUN_RANK[r.status])
    task = TASKS.get(db, workspace, run.task_id)
    if task is None:
        return None
    others = [r for r in reversed(q.runs_of_task(db, workspace, task.id)) if r.id != run.id]
    return CurrentTask(
        task=task,
        run=run,
        holds_lease=states.holds_lease(run, caller.session_id, now),
        prior_attempts=others[:CONTEXT_SECTION_LIMIT],
        events=[TaskEvent(*row) for row in q.recent_events(db, workspace, task.id, CONTEXT_SECTION_LIMIT)],
    )


def _situation(conn: Connection, workspace: str, claimed: Claimed, now: int) -> Situation:
    caller = resolve(conn, workspace, claimed)
    lineage, stored = lineage_of(conn, workspace, caller.session_id)
    soul = souls.state_of(caller.agent_name, q.get_soul(conn, workspace, caller.agent_name))
    current = _current(conn, workspace, caller, now)
    channels = channel_situation(
        conn, workspace, caller.session_id, current.run.id if current else None, CONTEXT_SECTION_LIMIT
    )
    return Situation(
        workspace=workspace,
        caller=caller,
        lineage=lineage,
        has_lineage=stored,
        session_updated_at=q.session_updated_at(conn, workspace, caller.session_id),
        current=current,
        soul=soul,
        channels=channels,
    )


async def situation(store: Store, workspace: str, claimed: Claimed, now: int) -> Situation:
    require_headers(claimed)
    return await store.read(lambda conn: _situation(conn, workspace, claimed, now))


def limits(lineage: LineageRecord) -> dict[str, int]:
    return {
        "max_children": lineage.max_children,
        "max_spawn_depth": lineage.max_depth,
        "max_active_task_leases": MAX_ACTIVE_TASK_LEASES,
        "context_section_limit": CONTEXT_SECTION_LIMIT,
    }


def coordinator(workspace: str) -> dict[str, Any]:
    """The coordinator configuration of a workspace: upstream's defaults
    (agentplane runs no coordinator), from the caller's workspace."""
    return {**COORDINATOR_DEFAULTS, "source": "workspace", "workspace_id": workspace}


async def coordinator_config(store: Store, workspace: str, claimed: Claimed) -> dict[str, Any]:
    require_headers(claimed)
    await store.read(lambda conn: resolve(conn, workspace, claimed))
    return coordinator(workspace)
