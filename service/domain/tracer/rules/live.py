"""Rules inside tracer writes: the two hooks the turn state machine calls,
in the transaction of the events that triggered them.

- Events stored into an open turn are matched against the task's active
  rules; matches become enforcements (reference §8.3).
- A deleted session takes its verdicts and enforcements with it.
- A turn closed by the assistant's answer or by the next user message is
  evaluated against the active rules: one verdict per rule whose trigger
  matched, the turn's aggregate (its worst verdict) and its count of rules
  evaluated (reference §8.2). A turn force-closed by the session's end is
  not evaluated, as upstream.

With no active rule for the task, each costs one indexed lookup and writes
nothing (no `verdict.updated` either: it would say nothing new).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.domain.tracer import session_deletion, turns
from service.domain.tracer.model import now_iso
from service.domain.tracer.rules import messages, seen_turns
from service.domain.tracer.rules.active import active_rules
from service.domain.tracer.rules.evaluator import (
    Enforcer,
    TurnCalls,
    aggregate,
    evaluate_calls,
    evaluate_turn,
    infer_tool_call,
    turn_texts,
)
from service.store.log import Tx
from service.store.tracer import rules as q
from service.store.tracer.queries import TurnRecord
from service.store.tracer.rules import EnforcementRow, VerdictRow


def enforce(tx: Tx, workspace: str, views: list[dict[str, Any]]) -> None:
    """Record the enforcements of events just stored into open turns (views carry `turnId`)."""
    rows: list[EnforcementRow] = []
    enforcers: dict[str, Enforcer] = {}
    now = now_iso()
    for view in views:
        task_id = view["taskId"]
        enforcer = enforcers.get(task_id)
        if enforcer is None:
            enforcer = enforcers[task_id] = active_rules(tx.conn, workspace, task_id).enforcer
        if not enforcer:
            continue
        call = infer_tool_call(view)
        seen_turns.note(tx.conn, workspace, view, call)
        for rule_id, kind in enforcer.matches(view, call):
            rows.append(
                EnforcementRow(
                    view["id"], rule_id, kind, task_id, view.get("sessionId"), view.get("turnId"), now
                )
            )
    if rows:
        q.insert_enforcements(tx.conn, workspace, rows)
        messages.enforcements_added(tx, workspace, rows)


def evaluate_closed(tx: Tx, workspace: str, turn: TurnRecord, reason: str) -> None:
    """Give a closed turn its verdicts."""
    if reason == turns.BY_SESSION_END:
        seen_turns.forget(tx.conn, workspace, turn.id)
        return
    rules = active_rules(tx.conn, workspace, turn.task_id).rules
    if not rules:
        return
    answer = turn.assistant_text if reason == turns.BY_ANSWER else None
    seen = seen_turns.take(tx.conn, workspace, turn.id)
    if seen is not None:
        assistant_text = answer if answer is not None else (seen.answer or "")
        verdicts = evaluate_calls(rules, seen.user_text, assistant_text, TurnCalls(seen.calls))
    else:
        events = q.turn_views(tx.conn, workspace, turn.id)
        user_text, assistant_text = turn_texts(events, answer)
        verdicts = evaluate_turn(rules, user_text, assistant_text, events)
    now = now_iso()
    q.upsert_verdicts(
        tx.conn,
        workspace,
        [
            VerdictRow(turn.id, v.rule_id, turn.task_id, turn.session_id, v.status, v.detail(), now)
            for v in verdicts
        ],
    )
    # A turn gets verdicts only once it is closed, and it closes once: these are all of them.
    turn.aggregate_verdict = aggregate(v.status for v in verdicts)
    turn.rules_evaluated_count = len(rules)
    q.set_turn_results(tx.conn, workspace, [(turn.id, turn.aggregate_verdict, len(rules))])
    messages.verdicts_updated(
        tx,
        workspace,
        [
            messages.verdict_payload(
                turn.id, turn.session_id, turn.task_id, turn.aggregate_verdict, turn.rules_evaluated_count
            )
        ],
    )


def forget_session(tx: Tx, workspace: str, session_id: str) -> None:
    """A deleted session takes its verdicts and enforcements with it."""
    q.delete_session_results(tx.conn, workspace, session_id)


_installed: list[Callable[[], None]] = []


def install() -> None:
    """Register the hooks with the turn state machine (once per process)."""
    if not _installed:
        _installed.append(turns.on_turn_closed(evaluate_closed))
        _installed.append(turns.on_events_linked(enforce))
        _installed.append(session_deletion.on_session_deleted(forget_session))
