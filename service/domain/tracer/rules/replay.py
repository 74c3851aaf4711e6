"""Re-evaluating one rule over stored turns (reference §8.6): re-evaluate,
and the backfill after create, promote, demote and suggest.

The turns the rule applies to (its task's, or every task's for a global
rule) are read with their events in one pass and matched outside the
writer; only the results are written, in one write operation: the
enforcements not recorded yet, the verdicts on closed turns (open turns get
theirs when they close, from the live hook, since the rule is active), each
touched turn's aggregate, and a `verdict.updated` per touched turn.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from service.base.errors import NotFound
from service.domain.tracer.model import now_iso
from service.domain.tracer.reasons import TracerReason
from service.domain.tracer.rules import messages
from service.domain.tracer.rules.evaluator import (
    Enforcer,
    TurnCalls,
    aggregate,
    evaluate_rule,
    infer_tool_call,
)
from service.domain.tracer.rules.spec import TASK
from service.domain.tracer.turns import CLOSED
from service.store.log import Tx
from service.store.store import Store
from service.store.tracer import rules as q
from service.store.tracer.rules import EnforcementRow, RuleRecord, StoredTurn, VerdictRow


@dataclass
class ReplayResult:
    turns_considered: int = 0
    turns_evaluated: int = 0
    verdicts_created: int = 0


def rule_not_found(rule_id: str) -> NotFound:
    return NotFound(
        f"Rule {rule_id} not found", reason=TracerReason.RULE_NOT_FOUND, metadata={"rule_id": rule_id}
    )


@dataclass
class _Outcome:
    rule: RuleRecord
    turns: list[StoredTurn]
    enforcements: list[EnforcementRow]
    # (turn, verdict row) for closed turns whose trigger matched.
    verdicts: list[tuple[StoredTurn, VerdictRow]]


def _match(rule: RuleRecord, turns: list[StoredTurn]) -> _Outcome:
    now = now_iso()
    out = _Outcome(rule, turns, [], [])
    enforcer = Enforcer([rule])
    for turn in turns:
        calls = []
        for view in turn.events:
            call = infer_tool_call(view)
            if call is not None:
                calls.append(call)
            for _, kind in enforcer.matches(view, call):
                out.enforcements.append(
                    EnforcementRow(view["id"], rule.id, kind, turn.task_id, turn.session_id, turn.id, now)
                )
        if turn.status != CLOSED:
            continue
        verdict = evaluate_rule(rule, turn.asked_text, turn.assistant_text or "", TurnCalls(calls))
        if verdict is not None:
            row = VerdictRow(
                turn.id, rule.id, turn.task_id, turn.session_id, verdict.status, verdict.detail(), now
            )
            out.verdicts.append((turn, row))
    return out


async def replay(store: Store, workspace: str, rule_id: str) -> ReplayResult:
    """Rebuild one rule's enforcements and verdicts from the stored turns."""

    def read(conn: Connection) -> _Outcome:
        rule = q.get_rule(conn, workspace, rule_id)
        if rule is None:
            raise rule_not_found(rule_id)
        turns = q.stored_turns(conn, workspace, rule.task_id if rule.scope == TASK else None)
        return _match(rule, turns)

    outcome = await store.read(read)

    def write(tx: Tx) -> ReplayResult:
        if q.get_rule(tx.conn, workspace, rule_id) is None:
            raise rule_not_found(rule_id)
        return _apply(tx, workspace, outcome)

    return await store.write(write)


def _apply(tx: Tx, workspace: str, outcome: _Outcome) -> ReplayResult:
    conn, rule = tx.conn, outcome.rule
    known = q.enforcement_keys(conn, workspace, rule.id)
    new_enforcements = [e for e in outcome.enforcements if (e.event_id, e.match_kind) not in known]
    q.insert_enforcements(conn, workspace, new_enforcements)
    if new_enforcements:
        messages.enforcements_added(tx, workspace, new_enforcements)

    had_verdict = q.turns_with_verdict(conn, workspace, rule.id)
    q.upsert_verdicts(conn, workspace, [row for _, row in outcome.verdicts])
    touched = [turn for turn, _ in outcome.verdicts]
    new_turns = {turn.id for turn in touched if turn.id not in had_verdict}
    statuses = q.verdict_statuses(conn, workspace, [t.id for t in touched])
    results = []
    payloads = []
    for turn in touched:
        worst = aggregate(statuses[turn.id])
        bump = 1 if turn.id in new_turns else 0
        results.append((turn.id, worst, bump))
        payloads.append(
            messages.verdict_payload(
                turn.id, turn.session_id, turn.task_id, worst, turn.rules_evaluated_count + bump
            )
        )
    q.bump_turn_results(conn, workspace, results)
    if payloads:
        messages.verdicts_updated(tx, workspace, payloads)
    n = len(outcome.turns)
    return ReplayResult(turns_considered=n, turns_evaluated=n, verdicts_created=len(new_turns))
