"""What rules show on the read side: verdict counts, the evidence of a rule
in a task, and the timeline's `rule` lane (reference §3, §8.5)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from service.domain.tracer.rules.evaluator import EXPECT_FULFILLED, STATUSES, TRIGGER
from service.store.store import Store
from service.store.tracer import rules as q
from service.store.tracer.rules import RuleRecord

RULE_LANE = "rule"
BODY_LIMIT, COMMAND_LIMIT = 400, 200


async def verdict_counts(store: Store, workspace: str, task_id: str) -> dict[str, int]:
    """Every verdict of the task's turns, by status (zeros for an unknown task)."""

    def read(conn: Connection) -> dict[str, int]:
        found = q.verdict_counts(conn, workspace, task_id)
        return {status: found.get(status, 0) for status in STATUSES}

    return await store.read(read)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _matched_by(rule: RuleRecord | None) -> tuple[list[str], list[str]]:
    """(trigger, expect) conditions an enforcement of the rule met ([] for a deleted rule)."""
    if rule is None or rule.deleted_at is not None:
        return [], []
    triggers = ["trigger-phrase"] if rule.phrases else []
    expects = [
        name
        for name, configured in (
            ("action", rule.action),
            ("commandMatch", rule.command_matches),
            ("pattern", rule.pattern),
        )
        if configured
    ]
    return triggers, expects


def _entry(kind: str, decided_at: str, view: dict[str, Any], matched_by: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "eventId": view["id"],
        "kind": view["kind"],
        "title": view.get("title", view["kind"]),
    }
    found = view.get("metadata")
    metadata: dict[str, Any] = found if isinstance(found, dict) else {}
    if kind == TRIGGER:
        body = _str(view.get("body"))
        if body is not None:
            out["body"] = _cut(body, BODY_LIMIT)
    else:
        command = _str(metadata.get("command"))
        if command is not None:
            out["command"] = _cut(command, COMMAND_LIMIT)
        paths = metadata.get("filePaths")
        path = paths[0] if isinstance(paths, list) and paths else metadata.get("filePath")
        if isinstance(path, str):
            out["filePath"] = path
        tool = _str(metadata.get("toolName")) or _str(metadata.get("sourceTool"))
        if tool is None and view["kind"] == "terminal.command":
            tool = "Bash"
        if tool is not None:
            out["toolName"] = tool
    out.update(
        {
            "decidedAt": decided_at,
            "createdAt": view.get("createdAt", ""),
            "matchKind": kind,
            "matchedBy": matched_by,
        }
    )
    return out


async def evidence(store: Store, workspace: str, task_id: str, rule_id: str) -> dict[str, Any]:
    """The task's events that matched the rule's trigger or fulfilled its
    expectation, each list by the events' `createdAt`."""

    def read(conn: Connection) -> dict[str, Any]:
        rule = q.get_rule(conn, workspace, rule_id, deleted=True)
        trigger_by, expect_by = _matched_by(rule)
        triggers, expects = [], []
        for kind, decided_at, view in q.evidence_rows(conn, workspace, task_id, rule_id):
            if kind == TRIGGER:
                triggers.append(_entry(kind, decided_at, view, trigger_by))
            elif kind == EXPECT_FULFILLED:
                expects.append(_entry(kind, decided_at, view, expect_by))
        triggers.sort(key=lambda e: e["createdAt"])
        expects.sort(key=lambda e: e["createdAt"])
        if not expects:
            for entry in triggers:
                entry["unfulfilled"] = True
        return {"taskId": task_id, "ruleId": rule_id, "triggers": triggers, "expects": expects}

    return await store.read(read)


def show_rule_lane(conn: Connection, workspace: str, views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Timeline views with the events that have enforcements moved to the
    `rule` lane: their matches and enforcements in `classification` and
    `metadata`, their stored lane in `metadata.originalLane`."""
    found = q.enforcements_of_events(conn, workspace, [v["id"] for v in views])
    if not found:
        return views
    out = []
    for view in views:
        hits = found.get(view["id"])
        if hits is None:
            out.append(view)
            continue
        metadata = dict(view.get("metadata") or {})
        metadata["ruleEnforcements"] = [{"ruleId": r, "matchKind": k} for r, k in hits]
        if view["lane"] != RULE_LANE:
            metadata["originalLane"] = view["lane"]
        classification = dict(view.get("classification") or {})
        classification["lane"] = RULE_LANE
        classification["matches"] = [
            {"ruleId": r, "score": 1, "tags": [], "reasons": []} for r in dict.fromkeys(r for r, _ in hits)
        ]
        out.append({**view, "lane": RULE_LANE, "metadata": metadata, "classification": classification})
    return out
