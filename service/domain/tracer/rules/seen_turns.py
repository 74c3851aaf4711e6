"""What this process saw of each open turn of a task with rules: its tool
calls, its request and its last answer, gathered as its events are stored
(the enforcement hook infers every call anyway). When the turn closes, its
evaluation uses them instead of reading and decoding every event again,
but only when they are provably complete: the turn holds exactly as many
events as were seen and none of them was rewritten since (a cross-check
merge). Anything else (another replica stored some of the events, a
restart, a rule created mid-turn, a rolled-back write) reads the events.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

from service.domain.tracer.rules.evaluator import ASSISTANT_RESPONSE, USER_MESSAGE, ToolCall, body_or_title
from service.store.tracer import rules as q

# Past this many open turns (abandoned ones never close) the memory starts over.
MAX_TURNS = 10_000


@dataclass
class SeenTurn:
    events: int = 0
    calls: list[ToolCall] = field(default_factory=list)
    user_text: str | None = None
    answer: str | None = None


# engine -> (workspace, turn id) -> what was seen
_seen: weakref.WeakKeyDictionary[Engine, dict[tuple[str, str], SeenTurn]] = weakref.WeakKeyDictionary()


def note(conn: Connection, workspace: str, view: dict[str, Any], call: ToolCall | None) -> None:
    """Remember an event just stored into an open turn (its view carries `turnId`)."""
    turns = _seen.setdefault(conn.engine, {})
    key = (workspace, view["turnId"])
    seen = turns.get(key)
    if seen is None:
        if len(turns) >= MAX_TURNS:
            turns.clear()
        seen = turns[key] = SeenTurn()
    seen.events += 1
    if call is not None:
        seen.calls.append(call)
    kind = view.get("kind")
    if kind == USER_MESSAGE and seen.user_text is None:
        seen.user_text = body_or_title(view)
    elif kind == ASSISTANT_RESPONSE:
        seen.answer = body_or_title(view)


def forget(conn: Connection, workspace: str, turn_id: str) -> None:
    _seen.get(conn.engine, {}).pop((workspace, turn_id), None)


def take(conn: Connection, workspace: str, turn_id: str) -> SeenTurn | None:
    """What was seen of a closing turn, if it is all of it (forgotten either way)."""
    seen = _seen.get(conn.engine, {}).pop((workspace, turn_id), None)
    if seen is None:
        return None
    stored, rewritten = q.turn_event_counts(conn, workspace, turn_id)
    return seen if stored == seen.events and rewritten == 0 else None
