"""Verification rules as the console shows them: the rule set newest first
with verdict counts per rule, and one rule's verdicts newest first."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select, tuple_

from service.store.console import cursors
from service.store.console.records import Rule, Verdict
from service.store.console.timeline import VERDICT_COLUMNS, VERDICTS_WITH_RULES, verdict
from service.store.console.times import from_text
from service.store.tracer.rule_tables import tracer_rules, tracer_verdicts

_r = tracer_rules.c
_v = tracer_verdicts.c
_RULE_COLUMNS = (
    _r.seq,
    _r.id,
    _r.name,
    _r.scope,
    _r.task_id,
    _r.source,
    _r.severity,
    _r.rationale,
    _r.phrases,
    _r.trigger_on,
    _r.action,
    _r.pattern,
    _r.command_matches,
    _r.created_at,
    _r.deleted_at,
)


def _rule(r: Any, counts: dict[str, int]) -> Rule:
    phrases = r.phrases if isinstance(r.phrases, list) else []
    return Rule(
        id=r.id,
        name=r.name,
        scope=r.scope,
        task_id=r.task_id or "",
        source=r.source,
        severity=r.severity,
        rationale=r.rationale or "",
        trigger_phrases=[p for p in phrases if isinstance(p, str)],
        trigger_on=r.trigger_on or "",
        expected_action=r.action or "",
        expected_pattern=r.pattern or " | ".join(m for m in r.command_matches or [] if isinstance(m, str)),
        created_at=from_text(r.created_at),
        deleted_at=from_text(r.deleted_at),
        verified=counts.get("verified", 0),
        contradicted=counts.get("contradicted", 0),
        unverifiable=counts.get("unverifiable", 0),
    )


def _counts(conn: Connection, workspace: str, rule_ids: list[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    if rule_ids:
        for rule_id, status, n in conn.execute(
            select(_v.rule_id, _v.status, func.count())
            .where(_v.workspace == workspace, _v.rule_id.in_(rule_ids))
            .group_by(_v.rule_id, _v.status)
        ):
            out.setdefault(rule_id, {})[status] = int(n)
    return out


def list_rules(conn: Connection, workspace: str, size: int, token: str) -> tuple[list[Rule], str]:
    position = cursors.decode("console.rules", (), token)
    q = select(*_RULE_COLUMNS).where(_r.workspace == workspace)
    if position is not None:
        q = q.where(_r.seq < cursors.checked(position, int)[0])
    rows = conn.execute(q.order_by(_r.seq.desc()).limit(size + 1)).all()
    page = rows[:size]
    counts = _counts(conn, workspace, [r.id for r in page])
    token_out = cursors.encode("console.rules", (), [page[-1].seq]) if len(rows) > size else ""
    return [_rule(r, counts.get(r.id, {})) for r in page], token_out


def get_rule(conn: Connection, workspace: str, rule_id: str) -> Rule | None:
    row = conn.execute(select(*_RULE_COLUMNS).where(_r.workspace == workspace, _r.id == rule_id)).first()
    return None if row is None else _rule(row, _counts(conn, workspace, [rule_id]).get(rule_id, {}))


def verdicts(
    conn: Connection, workspace: str, rule_id: str, status: str, size: int, token: str
) -> tuple[list[Verdict], str]:
    """A rule's verdicts, newest first (by evaluation time, then turn)."""
    filters = (rule_id, status)
    position = cursors.decode("console.verdicts", filters, token)
    q = (
        select(*VERDICT_COLUMNS)
        .select_from(VERDICTS_WITH_RULES)
        .where(_v.workspace == workspace, _v.rule_id == rule_id)
    )
    if status:
        q = q.where(_v.status == status)
    if position is not None:
        at, turn_id = cursors.checked(position, str, str)
        q = q.where(tuple_(_v.evaluated_at, _v.turn_id) < tuple_(at, turn_id))
    rows = conn.execute(q.order_by(_v.evaluated_at.desc(), _v.turn_id.desc()).limit(size + 1)).all()
    page = rows[:size]
    token_out = (
        cursors.encode("console.verdicts", filters, [page[-1].evaluated_at, page[-1].turn_id])
        if len(rows) > size
        else ""
    )
    return [verdict(r) for r in page], token_out
