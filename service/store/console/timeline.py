"""A console timeline: one item's events in log order, a bounded page at a
time on an index that starts with (workspace, owner, seq), the turns of the
page with their verdicts, and the tree of parents and children around it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, and_, func, select

from service.store.agh.tables import agh_session_lineage, agh_task_events
from service.store.console import cursors
from service.store.console.records import (
    AGENT,
    AGH_TASK,
    EXECUTION,
    RUNTIME_SESSION,
    TRACER_SESSION,
    TRACER_TASK,
    Item,
    TimelineEvent,
    TreeNode,
    Turn,
    Verdict,
)
from service.store.console.times import from_micros, from_text
from service.store.executions.tables import agents, tool_calls
from service.store.tables import log_entries, sessions
from service.store.tracer.rule_tables import tracer_enforcements, tracer_rules, tracer_verdicts
from service.store.tracer.tables import tracer_events, tracer_sessions, tracer_tasks, tracer_turns

# The most nodes a tree holds, and how far up it climbs.
MAX_TREE = 200
MAX_DEPTH = 32
RULE_LANE = "rule"


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------- events per kind


def _tracer_events(
    conn: Connection, workspace: str, where: Any, after: int, limit: int
) -> list[TimelineEvent]:
    e = tracer_events.c
    rows = conn.execute(
        select(
            e.seq, e.id, e.session_id, e.turn_id, e.kind, e.lane, e.data, log_entries.c.data.label("entry")
        )
        .select_from(tracer_events.join(log_entries, log_entries.c.seq == e.seq))
        .where(e.workspace == workspace, where, e.seq > after)
        .order_by(e.seq)
        .limit(limit)
    ).all()
    ruled = _enforced(conn, workspace, [r.id for r in rows])
    return [_tracer_event(r, r.id in ruled) for r in rows]


def _enforced(conn: Connection, workspace: str, event_ids: list[str]) -> set[str]:
    """The events that matched a rule: the tracer shows them in the rule lane."""
    if not event_ids:
        return set()
    f = tracer_enforcements.c
    return set(
        conn.execute(select(f.event_id).where(f.workspace == workspace, f.event_id.in_(event_ids))).scalars()
    )


def _tracer_event(r: Any, ruled: bool) -> TimelineEvent:
    view: dict[str, Any] = r.data if r.data is not None else (r.entry or {})
    meta = view.get("metadata") if isinstance(view.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    return TimelineEvent(
        seq=r.seq,
        id=r.id,
        kind=r.kind,
        lane=RULE_LANE if ruled else r.lane,
        title=_text(view.get("title")),
        body=_text(view.get("body")),
        session_id=r.session_id or "",
        turn_id=r.turn_id or "",
        occurred_at=from_text(_text(view.get("createdAt"))),
        tool_name=_text(meta.get("toolName")),
        duration_ms=_int(meta.get("durationMs")),
        input_tokens=_int(meta.get("inputTokens")),
        output_tokens=_int(meta.get("outputTokens")),
        cost_usd=_float(meta.get("costUsd")),
        status="failed" if meta.get("failed") is True else "",
        detail=view,
    )


def _lane_of_runtime(event_type: str) -> str:
    """The tracer lane nearest a runtime event's type (seed 004)."""
    if "user" in event_type or "prompt" in event_type:
        return "user"
    if "tool" in event_type:
        return "implementation"
    if "session" in event_type:
        return "telemetry"
    return "planning"


def _log_events(conn: Connection, workspace: str, where: Any, after: int, limit: int) -> list[TimelineEvent]:
    """Log entries as events (runtime sessions' events, AGH task changes). A
    runtime session's are found on the log's (workspace, session_id, ...)
    index and ordered by seq: its cost grows with the session's size, a cost
    taken on purpose over one more index on every log write."""
    g = log_entries.c
    rows = conn.execute(
        select(g.seq, g.event_id, g.type, g.name, g.session_id, g.occurred_at, g.recorded_at, g.data)
        .where(g.workspace == workspace, where, g.seq > after)
        .order_by(g.seq)
        .limit(limit)
    ).all()
    out = []
    for r in rows:
        data = r.data if isinstance(r.data, dict) else {}
        kind = r.name or r.type
        out.append(
            TimelineEvent(
                seq=r.seq,
                id=r.event_id,
                kind=kind,
                lane=_lane_of_runtime(kind) if r.type == "runtime.event" else "coordination",
                title=_text(data.get("title")) or kind,
                session_id=r.session_id or "",
                occurred_at=from_text(r.occurred_at) or from_text(str(r.recorded_at)),
                tool_name=_text(data.get("tool_name")),
                status=_text(data.get("status")),
                detail=data,
            )
        )
    return out


def _execution_events(
    conn: Connection, workspace: str, execution_id: str, after: int, limit: int
) -> list[TimelineEvent]:
    """An execution's agents and tool calls, merged in log order."""
    a, t = agents.c, tool_calls.c
    found = [
        _agent_event(r)
        for r in conn.execute(
            select(
                a.seq,
                a.id,
                a.model,
                a.prompt,
                a.status,
                a.result,
                a.error,
                a.tokens_input,
                a.tokens_output,
                a.started_at,
                a.created_at,
                a.duration_ms,
                a.phase_id,
                a.tool_calls_count,
            )
            .where(a.workspace == workspace, a.execution_id == execution_id, a.seq > after)
            .order_by(a.seq)
            .limit(limit)
        )
    ]
    found += [
        _tool_call_event(r)
        for r in conn.execute(
            select(
                t.seq,
                t.id,
                t.agent_id,
                t.tool_name,
                t.input,
                t.output_inline,
                t.output_summary,
                t.output_size_bytes,
                t.error,
                t.status,
                t.started_at,
                t.created_at,
                t.duration_ms,
            )
            .where(t.workspace == workspace, t.execution_id == execution_id, t.seq > after)
            .order_by(t.seq)
            .limit(limit)
        )
    ]
    found.sort(key=lambda ev: ev.seq)
    return found[:limit]


def _agent_event(r: Any) -> TimelineEvent:
    return TimelineEvent(
        seq=r.seq,
        id=r.id,
        kind=AGENT,
        lane="coordination",
        title=f"{r.model}: {r.prompt[:80]}",
        body=r.prompt,
        occurred_at=from_micros(r.started_at or r.created_at),
        duration_ms=r.duration_ms or 0,
        input_tokens=r.tokens_input or 0,
        output_tokens=r.tokens_output or 0,
        status=r.status,
        detail={
            "agent_id": r.id,
            "model": r.model,
            "phase_id": r.phase_id,
            "prompt": r.prompt,
            "result": r.result,
            "error": r.error,
            "tool_calls_count": r.tool_calls_count,
        },
    )


def _tool_call_event(r: Any) -> TimelineEvent:
    return TimelineEvent(
        seq=r.seq,
        id=r.id,
        kind="tool_call",
        lane="implementation",
        title=r.tool_name,
        body=r.error or r.output_summary or "",
        occurred_at=from_micros(r.started_at or r.created_at),
        tool_name=r.tool_name,
        duration_ms=r.duration_ms or 0,
        status=r.status,
        detail={
            "tool_call_id": r.id,
            "agent_id": r.agent_id,
            "input": r.input,
            "output": r.output_inline,
            "output_summary": r.output_summary,
            "output_size_bytes": r.output_size_bytes,
            "error": r.error,
        },
    )


def _agh_task_events(
    conn: Connection, workspace: str, task_id: str, after: int, limit: int
) -> list[TimelineEvent]:
    k = agh_task_events.c
    seqs = select(k.seq).where(k.workspace == workspace, k.task_id == task_id, k.seq > after)
    return _log_events(
        conn, workspace, log_entries.c.seq.in_(seqs.order_by(k.seq).limit(limit)), after, limit
    )


EventReader = Callable[[Connection, str, str, int, int], list[TimelineEvent]]

EVENTS: dict[str, EventReader] = {
    TRACER_TASK: lambda c, w, i, a, n: _tracer_events(c, w, tracer_events.c.task_id == i, a, n),
    TRACER_SESSION: lambda c, w, i, a, n: _tracer_events(c, w, tracer_events.c.session_id == i, a, n),
    RUNTIME_SESSION: lambda c, w, i, a, n: _log_events(c, w, log_entries.c.session_id == i, a, n),
    EXECUTION: _execution_events,
    AGH_TASK: _agh_task_events,
}


# ---------------------------------------------------------------- turns


def _turns(conn: Connection, workspace: str, turn_ids: list[str]) -> list[Turn]:
    if not turn_ids:
        return []
    u = tracer_turns.c
    rows = conn.execute(
        select(
            u.id,
            u.turn_index,
            u.session_id,
            u.status,
            u.started_at,
            u.ended_at,
            u.asked_text,
            u.assistant_text,
            u.aggregate_verdict,
            u.seq,
        )
        .where(u.workspace == workspace, u.id.in_(turn_ids))
        .order_by(u.seq)
    ).all()
    verdicts = verdicts_of_turns(conn, workspace, turn_ids)
    return [
        Turn(
            id=r.id,
            index=r.turn_index,
            session_id=r.session_id,
            status=r.status,
            started_at=from_text(r.started_at),
            ended_at=from_text(r.ended_at),
            asked_text=r.asked_text or "",
            assistant_text=r.assistant_text or "",
            verdict=r.aggregate_verdict or "",
            verdicts=verdicts.get(r.id, []),
        )
        for r in rows
    ]


VERDICT_COLUMNS = (
    tracer_verdicts.c.rule_id,
    tracer_rules.c.name,
    tracer_rules.c.severity,
    tracer_verdicts.c.status,
    tracer_verdicts.c.detail,
    tracer_verdicts.c.evaluated_at,
    tracer_verdicts.c.turn_id,
    tracer_verdicts.c.task_id,
    tracer_verdicts.c.session_id,
)
VERDICTS_WITH_RULES = tracer_verdicts.join(
    tracer_rules,
    and_(
        tracer_rules.c.workspace == tracer_verdicts.c.workspace,
        tracer_rules.c.id == tracer_verdicts.c.rule_id,
    ),
)


def verdict(r: Any) -> Verdict:
    return Verdict(
        rule_id=r.rule_id,
        rule_name=r.name,
        severity=r.severity,
        status=r.status,
        why=r.detail if isinstance(r.detail, dict) else {},
        evaluated_at=from_text(r.evaluated_at),
        turn_id=r.turn_id,
        task_id=r.task_id,
        session_id=r.session_id,
    )


def verdicts_of_turns(conn: Connection, workspace: str, turn_ids: list[str]) -> dict[str, list[Verdict]]:
    out: dict[str, list[Verdict]] = {}
    q = (
        select(*VERDICT_COLUMNS)
        .select_from(VERDICTS_WITH_RULES)
        .where(tracer_verdicts.c.workspace == workspace, tracer_verdicts.c.turn_id.in_(turn_ids))
        .order_by(tracer_verdicts.c.turn_id, tracer_rules.c.seq)
    )
    for r in conn.execute(q):
        out.setdefault(r.turn_id, []).append(verdict(r))
    return out


# ---------------------------------------------------------------- tree


def _task_node(conn: Connection, workspace: str, task_id: str, relation: str) -> TreeNode | None:
    t = tracer_tasks.c
    r = conn.execute(
        select(t.id, t.title, t.status, t.parent_task_id).where(t.workspace == workspace, t.id == task_id)
    ).first()
    if r is None:
        return None
    parent = r.parent_task_id or ""
    return TreeNode(TRACER_TASK, r.id, r.title, r.status, TRACER_TASK if parent else "", parent, relation)


def _session_node(conn: Connection, workspace: str, session_id: str, relation: str) -> TreeNode | None:
    s, g = sessions.c, agh_session_lineage.c
    r = conn.execute(
        select(s.session_id, s.session_name, s.status, g.parent_session_id)
        .select_from(
            sessions.outerjoin(
                agh_session_lineage, and_(g.workspace == s.workspace, g.session_id == s.session_id)
            )
        )
        .where(s.workspace == workspace, s.session_id == session_id)
    ).first()
    if r is None:
        return None
    parent = r.parent_session_id or ""
    return TreeNode(
        RUNTIME_SESSION,
        r.session_id,
        r.session_name,
        r.status,
        RUNTIME_SESSION if parent else "",
        parent,
        relation,
    )


def _ancestors(
    conn: Connection,
    workspace: str,
    node: TreeNode,
    lookup: Callable[[Connection, str, str, str], TreeNode | None],
) -> list[TreeNode]:
    """The chain above `node`, root first (cycles and depth are bounded)."""
    chain: list[TreeNode] = []
    seen = {node.id}
    parent_id = node.parent_id
    while parent_id and parent_id not in seen and len(chain) < MAX_DEPTH:
        seen.add(parent_id)
        found = lookup(conn, workspace, parent_id, "ancestor")
        if found is None:
            break
        chain.append(found)
        parent_id = found.parent_id
    return chain[::-1]


def tree(conn: Connection, workspace: str, item: Item) -> list[TreeNode]:
    me = TreeNode(item.kind, item.id, item.title, item.status, item.parent_kind, item.parent_id, "self")
    up: list[TreeNode] = []
    down: list[TreeNode] = []
    room = MAX_TREE - 1
    if item.kind in (TRACER_TASK, TRACER_SESSION):
        parent = (
            _task_node(conn, workspace, item.parent_id, "ancestor") if item.kind == TRACER_SESSION else None
        )
        start = parent or me
        up = _ancestors(conn, workspace, start, _task_node) + ([parent] if parent else [])
        if item.kind == TRACER_TASK:
            t, s = tracer_tasks.c, tracer_sessions.c
            room -= len(up)
            down = [
                TreeNode(TRACER_SESSION, r.id, r.summary or r.id, r.status, TRACER_TASK, item.id, "child")
                for r in conn.execute(
                    select(s.id, s.summary, s.status)
                    .where(s.workspace == workspace, s.task_id == item.id)
                    .order_by(s.seq)
                    .limit(room)
                )
            ]
            down += [
                TreeNode(TRACER_TASK, r.id, r.title, r.status, TRACER_TASK, item.id, "child")
                for r in conn.execute(
                    select(t.id, t.title, t.status)
                    .where(t.workspace == workspace, t.parent_task_id == item.id)
                    .order_by(t.seq)
                    .limit(room - len(down))
                )
            ]
    elif item.kind == RUNTIME_SESSION:
        up = _ancestors(conn, workspace, me, _session_node)
        g, s = agh_session_lineage.c, sessions.c
        down = [
            TreeNode(
                RUNTIME_SESSION, r.session_id, r.session_name, r.status, RUNTIME_SESSION, item.id, "child"
            )
            for r in conn.execute(
                select(s.session_id, s.session_name, s.status)
                .select_from(
                    agh_session_lineage.join(
                        sessions, and_(s.workspace == g.workspace, s.session_id == g.session_id)
                    )
                )
                .where(g.workspace == workspace, g.parent_session_id == item.id)
                .order_by(s.created_at, s.session_id)
                .limit(room - len(up))
            )
        ]
    elif item.kind == EXECUTION:
        a = agents.c
        down = [
            TreeNode(AGENT, r.id, f"{r.model}: {r.prompt[:80]}", r.status, EXECUTION, item.id, "child")
            for r in conn.execute(
                select(a.id, a.model, a.prompt, a.status)
                .where(a.workspace == workspace, a.execution_id == item.id)
                .order_by(a.seq)
                .limit(room)
            )
        ]
    return [*up, me, *down]


# ---------------------------------------------------------------- the page


def head_seq(conn: Connection, workspace: str) -> int:
    return int(
        conn.execute(select(func.max(log_entries.c.seq)).where(log_entries.c.workspace == workspace)).scalar()
        or 0
    )


def page(
    conn: Connection, workspace: str, item: Item, size: int, token: str
) -> tuple[list[TimelineEvent], list[Turn], list[TreeNode], str, str]:
    """(events, turns, tree, next_page_token, follow_token) of one page."""
    filters = (item.kind, item.id)
    position = cursors.decode("console.timeline", filters, token)
    after = 0 if position is None else cursors.checked(position, int)[0]
    found = EVENTS[item.kind](conn, workspace, item.id, after, size + 1)
    events = found[:size]
    last = events[-1].seq if events else after
    follow = cursors.encode("console.timeline", filters, [last])
    next_token = follow if len(found) > size else ""
    turn_ids = list(dict.fromkeys(e.turn_id for e in events if e.turn_id))
    return events, _turns(conn, workspace, turn_ids), tree(conn, workspace, item), next_token, follow
