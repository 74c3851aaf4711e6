"""The rule catalogue: create, suggest, update, delete, promote, demote and
list (reference §8.5). Each change is one write operation that logs
`tracer.rules.changed` (with the rule as it now is) and updates the
projection; a new rule is then replayed over the stored turns it applies
to before the call returns (upstream starts that backfill in the
background).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from service.base.errors import FailedPrecondition
from service.base.ids import uuid7
from service.domain.tracer.model import Violations, now_iso
from service.domain.tracer.reasons import TracerReason
from service.domain.tracer.rules import messages, replay
from service.domain.tracer.rules.evaluator import aggregate
from service.domain.tracer.rules.spec import (
    GLOBAL,
    HUMAN,
    SCOPES,
    SOURCES,
    TASK,
    RuleInput,
    RulePatch,
    new_rule,
    patched,
    rule_view,
)
from service.store.log import Tx
from service.store.store import Store
from service.store.tracer import rules as q
from service.store.tracer.rules import RuleRecord

BAD_REQUEST = TracerReason.BAD_REQUEST


def _bad_request(message: str) -> FailedPrecondition:
    return FailedPrecondition(message, reason=BAD_REQUEST)


def _existing(tx: Tx, workspace: str, rule_id: str) -> RuleRecord:
    rule = q.get_rule(tx.conn, workspace, rule_id)
    if rule is None:
        raise replay.rule_not_found(rule_id)
    return rule


def _insert(tx: Tx, workspace: str, rule: RuleRecord) -> None:
    rule.seq = rule.changed_seq = messages.rules_changed(tx, workspace, rule, messages.CREATED)
    q.insert_rule(tx.conn, workspace, rule)


def _update(tx: Tx, workspace: str, rule: RuleRecord, change: str) -> None:
    rule.changed_seq = messages.rules_changed(tx, workspace, rule, change)
    q.update_rule(tx.conn, workspace, rule)


def _delete(tx: Tx, workspace: str, rule: RuleRecord, now: str) -> None:
    rule.deleted_at = now
    _update(tx, workspace, rule, messages.DELETED)


async def create_rule(store: Store, workspace: str, data: RuleInput) -> dict[str, Any]:
    """A new rule (`source: human`), replayed over the stored turns."""
    now = now_iso()
    rule = new_rule(data, rule_id=uuid7(), source=HUMAN, now=now)

    def op(tx: Tx) -> None:
        _insert(tx, workspace, rule)

    await store.write(op)
    await replay.replay(store, workspace, rule.id)
    return rule_view(rule)


async def suggest_rule(store: Store, workspace: str, data: RuleInput) -> tuple[dict[str, Any], bool]:
    """An agent's rule: the existing rule with the same signature, or a new one."""
    now = now_iso()
    rule = new_rule(data, rule_id=uuid7(), source="agent", now=now)

    def op(tx: Tx) -> tuple[RuleRecord, bool]:
        existing = q.rule_by_signature(tx.conn, workspace, rule.signature)
        if existing is not None:
            return existing, False
        _insert(tx, workspace, rule)
        return rule, True

    found, created = await store.write(op)
    if created:
        await replay.replay(store, workspace, found.id)
    return rule_view(found), created


@dataclass
class Updated:
    rule: dict[str, Any]
    signature_changed: bool


async def update_rule(store: Store, workspace: str, rule_id: str, patch: RulePatch) -> Updated:
    """Apply a patch. A new signature drops the rule's verdicts and
    enforcements (the touched turns get their aggregate again)."""

    def op(tx: Tx) -> Updated:
        rule = _existing(tx, workspace, rule_id)
        after = patched(rule, patch)
        changed = after.signature != rule.signature
        if changed:
            _forget_results(tx, workspace, rule_id)
        _update(tx, workspace, after, messages.UPDATED)
        return Updated(rule_view(after), changed)

    return await store.write(op)


def _forget_results(tx: Tx, workspace: str, rule_id: str) -> None:
    lost = q.delete_rule_results(tx.conn, workspace, rule_id)
    if not lost:
        return
    turn_ids = [turn_id for turn_id, _, _ in lost]
    statuses = q.verdict_statuses(tx.conn, workspace, turn_ids)
    counts = q.rules_evaluated(tx.conn, workspace, turn_ids)
    results, payloads = [], []
    for turn_id, session_id, task_id in lost:
        worst = aggregate(statuses[turn_id])
        results.append((turn_id, worst, 0))
        payloads.append(messages.verdict_payload(turn_id, session_id, task_id, worst, counts.get(turn_id, 0)))
    q.bump_turn_results(tx.conn, workspace, results)
    messages.verdicts_updated(tx, workspace, payloads)


async def delete_rule(store: Store, workspace: str, rule_id: str) -> None:
    """Soft delete: verdicts and enforcements stay."""

    def op(tx: Tx) -> None:
        _delete(tx, workspace, _existing(tx, workspace, rule_id), now_iso())

    await store.write(op)


async def promote_rule(store: Store, workspace: str, rule_id: str) -> dict[str, Any]:
    """Replace a task rule by a global one (new id) and replay it over every task's turns."""
    return await _move(store, workspace, rule_id, GLOBAL, None)


async def demote_rule(store: Store, workspace: str, rule_id: str, task_id: str | None) -> dict[str, Any]:
    """Replace a global rule by a rule of `task_id` (new id) and replay it over that task's turns."""
    task = (task_id or "").strip()
    if not task:
        raise _bad_request("Demote requires a non-empty taskId in the body")
    return await _move(store, workspace, rule_id, TASK, task)


async def _move(
    store: Store, workspace: str, rule_id: str, scope: str, task_id: str | None
) -> dict[str, Any]:
    def op(tx: Tx) -> RuleRecord:
        rule = _existing(tx, workspace, rule_id)
        if scope == GLOBAL and rule.scope != TASK:
            raise _bad_request("Only task-scoped rules can be promoted")
        if scope == TASK and rule.scope != GLOBAL:
            raise _bad_request("Only global rules can be demoted")
        now = now_iso()
        _delete(tx, workspace, rule, now)
        moved = RuleRecord(
            **{**rule.__dict__, "id": uuid7(), "scope": scope, "task_id": task_id},
        )
        moved.created_at, moved.deleted_at = now, None
        _insert(tx, workspace, moved)
        return moved

    moved = await store.write(op)
    await replay.replay(store, workspace, moved.id)
    return rule_view(moved)


async def list_rules(
    store: Store, workspace: str, *, scope: str | None, task_id: str | None, source: str | None
) -> list[dict[str, Any]]:
    v = Violations()
    v.optional_enum("scope", scope, SCOPES)
    v.optional_enum("source", source, SOURCES)
    task = task_id.strip() if task_id is not None else None
    if task_id is not None and not task:
        v.add("taskId", "String must contain at least 1 character(s)")
    v.check()

    def read(conn: Connection) -> list[dict[str, Any]]:
        rules = q.list_rules(conn, workspace, scope=scope, task_id=task, source=source)
        return [rule_view(r) for r in rules]

    return await store.read(read)


async def task_rules(store: Store, workspace: str, task_id: str) -> dict[str, list[dict[str, Any]]]:
    """The task's own rules and the global ones, newest first."""

    def read(conn: Connection) -> dict[str, list[dict[str, Any]]]:
        return {
            "task": [rule_view(r) for r in q.list_rules(conn, workspace, scope=TASK, task_id=task_id)],
            "global": [rule_view(r) for r in q.list_rules(conn, workspace, scope=GLOBAL)],
        }

    return await store.read(read)
