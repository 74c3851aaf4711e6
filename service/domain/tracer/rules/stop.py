"""The Stop check: before an agent ends its turn (Claude Code's `Stop`
hook), evaluate the session's open turn now against the active rules with
`severity: block`. A contradicted rule blocks, and the reason tells the
agent what is missing, so it finishes the work instead of being graded
afterwards. Nothing is written: the turn gets its verdicts when it closes.

A rule that cannot be verified (a regular expression that does not compile)
never blocks: the agent could do nothing about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from service.base.errors import NotFound
from service.domain.tracer.model import Violations
from service.domain.tracer.reasons import TracerReason
from service.domain.tracer.rules.active import active_rules
from service.domain.tracer.rules.evaluator import ASSISTANT, CONTRADICTED, Verdict, evaluate_turn, turn_texts
from service.domain.tracer.rules.spec import BLOCK
from service.store.store import Store
from service.store.tracer import queries as tracer_q
from service.store.tracer import rules as q
from service.store.tracer.rules import RuleRecord

# What each expected action is called in a reason.
_CALLS = {"command": "command", "file-read": "file read", "file-write": "file edit", "web": "web lookup"}
SESSION_REQUIRED = "Required: sessionId, or runtimeSource and runtimeSessionId"


@dataclass
class StopCheck:
    may_stop: bool = True
    reason: str = ""
    # (rule id, name, verdict)
    blocking: list[tuple[str, str, str]] = field(default_factory=list)


def missing(rule: RuleRecord) -> str:
    """What the turn lacks, in words: "no command matching `npm test` ran"."""
    call = _CALLS.get(rule.action or "", "tool call")
    if rule.command_matches and rule.action in (None, "command"):
        wanted = " or ".join(f"`{c}`" for c in rule.command_matches)
        return f"no command matching {wanted} ran"
    if rule.pattern:
        return f"no {call} matching `{rule.pattern}` happened"
    return f"no {call} happened"


def reason_for(rule: RuleRecord, verdict: Verdict) -> str:
    """The sentence the Stop hook shows the agent for one blocking rule."""
    if verdict.matched_phrase is not None and rule.trigger_on == ASSISTANT:
        text = f"Rule '{rule.name}': you said \"{verdict.matched_phrase}\" but {missing(rule)}."
    elif verdict.matched_phrase is not None:
        text = f"Rule '{rule.name}': you were asked to \"{verdict.matched_phrase}\" but {missing(rule)}."
    else:
        text = f"Rule '{rule.name}': {missing(rule)} in this turn."
    return f"{text} ({rule.rationale})" if rule.rationale else text


def _session_id(
    conn: Connection,
    workspace: str,
    session_id: str | None,
    source: str | None,
    runtime_session_id: str | None,
) -> str | None:
    """The monitor session to check (None: its runtime session has ended)."""
    if session_id:
        if tracer_q.get_session(conn, workspace, session_id) is None:
            raise NotFound(f"Session not found: {session_id}", reason=TracerReason.SESSION_NOT_FOUND)
        return session_id
    assert source and runtime_session_id
    binding = tracer_q.get_binding(conn, workspace, source.strip(), runtime_session_id)
    if binding is None:
        raise NotFound(
            f"Runtime session not found: {source}/{runtime_session_id}", reason=TracerReason.SESSION_NOT_FOUND
        )
    return binding.monitor_session_id


async def check_stop(
    store: Store,
    workspace: str,
    *,
    session_id: str | None,
    runtime_source: str | None,
    runtime_session_id: str | None,
) -> StopCheck:
    if not session_id and not (runtime_source and runtime_session_id):
        v = Violations()
        v.add("sessionId", SESSION_REQUIRED)
        v.check()

    def read(conn: Connection) -> StopCheck:
        monitor = _session_id(conn, workspace, session_id, runtime_source, runtime_session_id)
        turn = tracer_q.open_turn(conn, workspace, monitor) if monitor else None
        if turn is None:
            return StopCheck()
        rules = [r for r in active_rules(conn, workspace, turn.task_id).rules if r.severity == BLOCK]
        if not rules:
            return StopCheck()
        events: list[dict[str, Any]] = q.turn_views(conn, workspace, turn.id)
        user_text, assistant_text = turn_texts(events, None)
        by_id = {r.id: r for r in rules}
        blocking = [
            v for v in evaluate_turn(rules, user_text, assistant_text, events) if v.status == CONTRADICTED
        ]
        if not blocking:
            return StopCheck()
        return StopCheck(
            may_stop=False,
            reason=" ".join(reason_for(by_id[v.rule_id], v) for v in blocking),
            blocking=[(v.rule_id, by_id[v.rule_id].name, v.status) for v in blocking],
        )

    return await store.read(read)
