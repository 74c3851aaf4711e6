"""Spawning child sessions, within a budget, and stopping them.

A session's place in a spawn tree, its budget and permissions live in
`agh_session_lineage`; a session without a row there is a root with the
default budget (5 live children, depth 1) and no permissions. An operator
may give a root session a budget and permissions (SetSessionSpawnPolicy).

A spawn (upstream's `session.Spawn`) checks, in order: the request (422),
the depth (`parent depth + 1 > max_depth`: 409), the live children (`>=
max_children`: 409) and, when set, the live sessions of the tree (409),
then that every permission atom of the child is one of the parent's (403).
The child is a new running session of the shared session projection (so
every family lists it), created in the same transaction as its lineage.

The sweeper stops a child whose time to live has ended, and a child that
follows its parent (`auto_stop_on_parent`) once the parent is no longer
running: its session becomes `finished`, as a seed 004 session_stop would.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from service.base.errors import Aborted, FailedPrecondition, NotFound, PermissionDenied
from service.base.ids import uuid7
from service.domain.agh.common import invalid_field, now_us
from service.domain.agh.identity import Claimed, require_headers, resolve
from service.domain.agh.reasons import AghReason
from service.domain.validation import reject_nul_characters
from service.store import sessions
from service.store.agh import tasks as q
from service.store.agh.tasks import LineageRecord
from service.store.log import Db, Tx
from service.store.sessions import SessionRecord
from service.store.store import Store

CATEGORIES = ("tools", "skills", "mcp_servers", "workspace_paths", "network_channels", "sandbox_profiles")
DEFAULT_MAX_CHILDREN = 5
DEFAULT_MAX_DEPTH = 1
DEFAULT_ROLE = "worker"
# A child lives at most 30 days (upstream sets no bound; a TTL is required).
MAX_TTL_SECONDS = 30 * 86_400
MAX_CHILDREN_LIMIT = 50
MAX_DEPTH_LIMIT = 10
FINISHED = "finished"
RUNNING = "running"


def empty_policy() -> dict[str, list[str]]:
    return {c: [] for c in CATEGORIES}


def root_lineage(session_id: str) -> LineageRecord:
    """What a session without a lineage row is: a root with the defaults."""
    return LineageRecord(
        session_id=session_id,
        parent_session_id=None,
        root_session_id=None,
        spawn_depth=0,
        spawn_role=None,
        ttl_expires_at=None,
        auto_stop_on_parent=False,
        max_children=DEFAULT_MAX_CHILDREN,
        max_depth=DEFAULT_MAX_DEPTH,
        ttl_seconds=0,
        max_active_per_workspace=0,
        permissions=empty_policy(),
        provider="",
        created_at=0,
    )


def lineage_of(db: Db, workspace: str, session_id: str) -> tuple[LineageRecord, bool]:
    """(the session's lineage, whether it has a row)."""
    found = q.get_lineage(db, workspace, session_id)
    return (found, True) if found is not None else (root_lineage(session_id), False)


@dataclass(frozen=True)
class SpawnSpec:
    agent_name: str
    ttl_seconds: int
    spawn_role: str = ""
    auto_stop_on_parent: bool = True
    permissions: dict[str, list[str]] = field(default_factory=empty_policy)
    provider: str = ""
    name: str = ""


@dataclass
class Spawned:
    session: SessionRecord
    lineage: LineageRecord


def _trimmed(permissions: dict[str, list[str]]) -> dict[str, list[str]]:
    """Trimmed atoms per category (a blank one stays: no parent grants it)."""
    return {category: [a.strip() for a in permissions.get(category, [])] for category in CATEGORIES}


def _checked_permissions(permissions: dict[str, list[str]], prefix: str) -> dict[str, list[str]]:
    """Trimmed atoms per category; a blank atom is refused."""
    out = _trimmed(permissions)
    for category, atoms in out.items():
        if any(not a for a in atoms):
            raise invalid_field(
                f"{prefix}.{category}",
                "must not contain a blank atom",
                area="spawn",
                reason=AghReason.SPAWN_VALIDATION_FAILED,
            )
    return out


def _check_spec(spec: SpawnSpec) -> tuple[str, dict[str, list[str]]]:
    """(role, permissions), or the first bad field (422)."""
    reject_nul_characters(spec.__dict__)

    def bad(field_name: str, description: str) -> Exception:
        return invalid_field(field_name, description, area="spawn", reason=AghReason.SPAWN_VALIDATION_FAILED)

    if not spec.agent_name.strip():
        raise bad("agent_name", "is required")
    if spec.ttl_seconds <= 0:
        raise bad("ttl_seconds", "must be greater than 0")
    if spec.ttl_seconds > MAX_TTL_SECONDS:
        raise bad("ttl_seconds", f"must be at most {MAX_TTL_SECONDS}")
    role = spec.spawn_role.strip() or DEFAULT_ROLE
    if role == "coordinator":
        raise bad("spawn_role", "coordinator is not supported in MVP")
    # A blank atom is a permission denial (403), as upstream's subset check makes it.
    return role, _trimmed(spec.permissions)


def _check_budget(db: Db, workspace: str, parent: LineageRecord) -> int:
    """The child's depth, if the parent's budget allows one more child."""
    depth = parent.spawn_depth + 1
    if depth > parent.max_depth:
        raise Aborted(
            f"child depth {depth} exceeds max_depth {parent.max_depth}",
            reason=AghReason.SPAWN_DEPTH_EXCEEDED,
            metadata={"spawn_depth": str(depth), "max_depth": str(parent.max_depth)},
        )
    children = q.live_children(db, workspace, parent.session_id)
    if children >= parent.max_children:
        raise Aborted(
            f"session has {children} live children, max_children is {parent.max_children}",
            reason=AghReason.SPAWN_CHILDREN_EXCEEDED,
            metadata={"live_children": str(children), "max_children": str(parent.max_children)},
        )
    if parent.max_active_per_workspace > 0:
        root = parent.root_session_id or parent.session_id
        live = q.live_in_tree(db, workspace, root)
        if live >= parent.max_active_per_workspace:
            raise Aborted(
                f"spawn tree has {live} live sessions, max_active_per_workspace is {parent.max_active_per_workspace}",
                reason=AghReason.SPAWN_WORKSPACE_LIMIT_EXCEEDED,
                metadata={"live_sessions": str(live), "limit": str(parent.max_active_per_workspace)},
            )
    return depth


def _check_subset(child: dict[str, list[str]], parent: dict[str, list[str]]) -> None:
    for category in CATEGORIES:
        allowed = set(parent.get(category, []))
        for atom in child[category]:
            if atom not in allowed:
                raise PermissionDenied(
                    f'child {category} permission atom "{atom}" widens parent permissions',
                    reason=AghReason.SPAWN_PERMISSION_DENIED,
                    metadata={"category": category, "atom": atom},
                )


def _iso_now() -> str:
    return datetime.now(UTC).isoformat()


def lineage_view(lineage: LineageRecord) -> dict[str, object]:
    return {k: v for k, v in lineage.__dict__.items() if k != "created_at"}


async def spawn(store: Store, workspace: str, claimed: Claimed, spec: SpawnSpec) -> Spawned:
    """Create a child session under the caller."""
    require_headers(claimed)

    def op(tx: Tx) -> Spawned:
        caller = resolve(tx.conn, workspace, claimed)
        role, permissions = _check_spec(spec)
        parent, _ = lineage_of(tx, workspace, caller.session_id)
        depth = _check_budget(tx, workspace, parent)
        _check_subset(permissions, parent.permissions)
        now = now_us()
        child_id = uuid7()
        lineage = LineageRecord(
            session_id=child_id,
            parent_session_id=caller.session_id,
            root_session_id=parent.root_session_id or caller.session_id,
            spawn_depth=depth,
            spawn_role=role,
            ttl_expires_at=now + spec.ttl_seconds * 1_000_000,
            auto_stop_on_parent=spec.auto_stop_on_parent,
            max_children=parent.max_children,
            max_depth=parent.max_depth,
            ttl_seconds=math.ceil(spec.ttl_seconds),
            max_active_per_workspace=parent.max_active_per_workspace,
            permissions=permissions,
            provider=spec.provider.strip(),
            created_at=now,
        )
        session = SessionRecord(
            session_id=child_id,
            session_name=spec.name.strip() or spec.agent_name.strip(),
            status=RUNNING,
            created_at=_iso_now(),
            project_dir=caller.session.project_dir,
            agent_name=spec.agent_name.strip(),
        )
        sessions.insert_one(tx.conn, workspace, session)
        q.insert_lineage(tx, workspace, lineage)
        tx.append(
            "session.created",
            workspace,
            {"session": session.as_dict(), "lineage": lineage_view(lineage)},
            session_id=child_id,
        )
        return Spawned(session, lineage)

    return await store.write(op)


@dataclass(frozen=True)
class PolicySpec:
    permissions: dict[str, list[str]] = field(default_factory=empty_policy)
    max_children: int = 0
    max_depth: int = 0
    max_active_per_workspace: int = 0


def _check_policy(spec: PolicySpec) -> dict[str, list[str]]:
    reject_nul_characters(spec.__dict__)
    if not 0 <= spec.max_children <= MAX_CHILDREN_LIMIT:
        raise invalid_field("max_children", f"must be between 0 and {MAX_CHILDREN_LIMIT}", area="spawn")
    if not 0 <= spec.max_depth <= MAX_DEPTH_LIMIT:
        raise invalid_field("max_depth", f"must be between 0 and {MAX_DEPTH_LIMIT}", area="spawn")
    if spec.max_active_per_workspace < 0:
        raise invalid_field("max_active_per_workspace", "must not be negative", area="spawn")
    return _checked_permissions(spec.permissions, "permissions")


async def set_policy(store: Store, workspace: str, session_id: str, spec: PolicySpec) -> LineageRecord:
    """Give a running root session a spawn budget and permissions."""
    permissions = _check_policy(spec)

    def op(tx: Tx) -> LineageRecord:
        record = sessions.get(tx.conn, workspace, session_id)
        if record is None:
            raise NotFound(
                f'session "{session_id}" not found',
                reason=AghReason.SESSION_NOT_FOUND,
                metadata={"session_id": session_id},
            )
        if record.status != RUNNING:
            raise FailedPrecondition(
                f'session "{session_id}" is not running', reason=AghReason.SESSION_NOT_RUNNING
            )
        lineage, stored = lineage_of(tx, workspace, session_id)
        if lineage.parent_session_id is not None:
            raise FailedPrecondition(
                f'session "{session_id}" was spawned: its budget and permissions come from its parent',
                reason=AghReason.SESSION_IS_SPAWNED,
            )
        lineage.permissions = permissions
        lineage.max_children = spec.max_children or DEFAULT_MAX_CHILDREN
        lineage.max_depth = spec.max_depth or DEFAULT_MAX_DEPTH
        lineage.max_active_per_workspace = spec.max_active_per_workspace
        if stored:
            q.set_policy(tx, workspace, lineage)
        else:
            lineage.created_at = now_us()
            q.insert_lineage(tx, workspace, lineage)
        tx.append(
            "session.spawn_policy_set", workspace, {"lineage": lineage_view(lineage)}, session_id=session_id
        )
        return lineage

    return await store.write(op)


STOP_BATCH = 500


def _stop_op(now: int) -> Callable[[Tx], int]:
    def op(tx: Tx) -> int:
        due = q.sessions_to_stop(tx, now, STOP_BATCH)
        for workspace, session_id, ttl_ended in due:
            record = sessions.get(tx.conn, workspace, session_id)
            if record is None or record.status != RUNNING:
                continue
            sessions.update_fields(tx.conn, workspace, session_id, status=FINISHED)
            record.status = FINISHED
            reason = "ttl_expired" if ttl_ended else "parent_stopped"
            tx.append(
                "session.updated",
                workspace,
                {"session": record.as_dict(), "reason": reason},
                session_id=session_id,
            )
        return len(due)

    return op


async def stop_due_sessions(store: Store) -> int:
    """Stop every spawned session that is due (a parent's stop reaches its
    whole subtree: each round stops the next level)."""
    total = 0
    while True:
        stopped = await store.write(_stop_op(now_us()))
        total += stopped
        if stopped == 0:
            return total
