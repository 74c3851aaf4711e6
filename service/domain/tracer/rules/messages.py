"""The log entries rules write, whose payloads are the tracer WebSocket's
`rules.changed`, `verdict.updated` and `rule_enforcement.added` messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from service.domain.tracer.rules.spec import rule_view
from service.store.log import Tx
from service.store.tracer.rules import EnforcementRow, RuleRecord

RULES_CHANGED = "tracer.rules.changed"
VERDICT_UPDATED = "tracer.verdict.updated"
ENFORCEMENT_ADDED = "tracer.rule_enforcement.added"
CREATED, UPDATED, DELETED = "created", "updated", "deleted"


def rules_changed(tx: Tx, workspace: str, rule: RuleRecord, change: str) -> int:
    """Log a change to a rule (with the rule as it now is); returns the entry's seq."""
    payload: dict[str, Any] = {"ruleId": rule.id, "change": change, "scope": rule.scope}
    if rule.task_id is not None:
        payload["taskId"] = rule.task_id
    return tx.append(RULES_CHANGED, workspace, {"payload": payload, "rule": rule_view(rule)})


def verdict_payload(
    turn_id: str, session_id: str, task_id: str, aggregate: str | None, evaluated: int
) -> dict[str, Any]:
    return {
        "turnId": turn_id,
        "sessionId": session_id,
        "taskId": task_id,
        "aggregateVerdict": aggregate,
        "rulesEvaluatedCount": evaluated,
    }


def verdicts_updated(tx: Tx, workspace: str, payloads: Sequence[dict[str, Any]]) -> None:
    """Log `verdict.updated` for each turn whose verdicts changed."""
    tx.append_many(
        VERDICT_UPDATED,
        workspace,
        [(p["sessionId"], None, None, orjson.dumps(p).decode()) for p in payloads],
    )


def enforcements_added(tx: Tx, workspace: str, rows: Sequence[EnforcementRow]) -> None:
    """Log `rule_enforcement.added` for each new enforcement."""
    entries = []
    for r in rows:
        payload: dict[str, Any] = {
            "eventId": r.event_id,
            "ruleId": r.rule_id,
            "matchKind": r.match_kind,
            "taskId": r.task_id,
        }
        if r.session_id is not None:
            payload["sessionId"] = r.session_id
        entries.append((r.session_id, None, None, orjson.dumps(payload).decode()))
    tx.append_many(ENFORCEMENT_ADDED, workspace, entries)
