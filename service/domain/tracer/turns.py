"""Turns: the unit verification rules evaluate (reference §7).

A turn belongs to a monitor session. A `user.message` closes the session's
open turn and opens the next one; an `assistant.response` is linked to the
open turn (one is opened for it if none is) and closes it; a `session.ended`
event closes the open turn. Every other event of the session is linked to
the open turn, if there is one. Events without a session take no part.

Rules are not evaluated here: whoever evaluates them registers a hook with
`on_turn_closed`; it runs in the same transaction as the event that closed
the turn, after that event and the turn's other events are stored (so
`service.store.tracer.queries.turn_events` sees them all), and what it writes
commits or rolls back with them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from service.base.ids import uuid7
from service.domain.tracer.entries import PendingEntries
from service.domain.tracer.model import (
    ASSISTANT_RESPONSE,
    SESSION_ENDED,
    TURN_CLOSED,
    TURN_OPENED,
    USER_MESSAGE,
    turn_view,
)
from service.store.log import Tx
from service.store.tracer import queries as q
from service.store.tracer.queries import TurnRecord

OPEN, CLOSED = "open", "closed"
# Why a turn closed (the hook's last argument). Upstream evaluates a turn
# closed by an answer or by the next user message, and only force-closes one
# at the session's end.
BY_ANSWER = "assistant_response"
BY_NEXT_MESSAGE = "user_message"
BY_SESSION_END = "session_ended"

# hook(tx, workspace, turn, reason)
TurnClosedHook = Callable[[Tx, str, TurnRecord, str], None]
_hooks: list[TurnClosedHook] = []


def on_turn_closed(hook: TurnClosedHook) -> Callable[[], None]:
    """Call `hook` whenever a turn closes; returns a function that unregisters it."""
    _hooks.append(hook)
    return lambda: _hooks.remove(hook)


# hook(tx, workspace, views): events just stored that belong to a turn (each
# view carries `turnId`), called once per batch of rows, before the hooks of
# a turn those events closed (verification rules record enforcements here).
EventsLinkedHook = Callable[[Tx, str, list[dict[str, Any]]], None]
linked_hooks: list[EventsLinkedHook] = []


def on_events_linked(hook: EventsLinkedHook) -> Callable[[], None]:
    """Call `hook` with the events stored into a turn; returns a function that unregisters it."""
    linked_hooks.append(hook)
    return lambda: linked_hooks.remove(hook)


class Turns:
    """The open turn of each session one write operation touches, loaded on
    first use and kept up to date in memory for the rest of the operation.
    Their log entries go to `entries`; their rows are written by `flush`,
    right after the entries (a new turn's seq is its opening entry's)."""

    def __init__(self, tx: Tx, workspace: str, entries: PendingEntries) -> None:
        self.tx = tx
        self.workspace = workspace
        self.entries = entries
        self._open: dict[str, TurnRecord | None] = {}
        self._next_index: dict[str, int] = {}
        # Rows to write: turns opened since the last flush (with the index of
        # their opening entry), and stored turns closed since.
        self._new: dict[str, tuple[TurnRecord, int]] = {}
        self._closed_stored: dict[str, TurnRecord] = {}
        # Closed turns whose hooks have not run yet.
        self.closed: list[tuple[TurnRecord, str]] = []

    def _current(self, session_id: str) -> TurnRecord | None:
        if session_id not in self._open:
            self._open[session_id] = q.open_turn(self.tx.conn, self.workspace, session_id)
        return self._open[session_id]

    def link(self, session_id: str, task_id: str, kind: str, text: str, at: str) -> str | None:
        """Before an event is stored: the turn it belongs to, opening one for a
        user message (after closing the previous) or for an answer with none open."""
        current = self._current(session_id)
        if kind == USER_MESSAGE:
            if current is not None:
                self._close(current, at, BY_NEXT_MESSAGE)
            return self._start(session_id, task_id, at, asked=text).id
        if kind == ASSISTANT_RESPONSE and current is None:
            current = self._start(session_id, task_id, at, asked=None)
        return current.id if current is not None else None

    def settle(self, session_id: str, kind: str, text: str, at: str) -> None:
        """After an event is stored: an answer closes its turn, a session end any open one."""
        if kind not in (ASSISTANT_RESPONSE, SESSION_ENDED):
            return
        current = self._current(session_id)
        if current is None:
            return
        if kind == ASSISTANT_RESPONSE:
            current.assistant_text = text
            self._close(current, at, BY_ANSWER)
        else:
            self._close(current, at, BY_SESSION_END)

    def run_hooks(self) -> None:
        closed, self.closed = self.closed, []
        for turn, reason in closed:
            for hook in list(_hooks):
                hook(self.tx, self.workspace, turn, reason)

    def _start(self, session_id: str, task_id: str, at: str, *, asked: str | None) -> TurnRecord:
        index = self._next_index.get(session_id)
        if index is None:
            index = q.turn_count(self.tx.conn, self.workspace, session_id)
        turn = TurnRecord(uuid7(), session_id, task_id, index, OPEN, at, asked_text=asked)
        opened = self.entries.add(TURN_OPENED, {"turn": turn_view(turn)}, session_id=session_id)
        self._new[turn.id] = (turn, opened)
        self._open[session_id] = turn
        self._next_index[session_id] = index + 1
        return turn

    def _close(self, turn: TurnRecord, at: str, reason: str) -> None:
        turn.status, turn.ended_at = CLOSED, at
        if turn.id not in self._new:  # a new turn's row is inserted as it is at the flush
            self._closed_stored[turn.id] = turn
        self.entries.add(TURN_CLOSED, {"turn": turn_view(turn), "reason": reason}, session_id=turn.session_id)
        self._open[turn.session_id] = None
        self.closed.append((turn, reason))

    def flush(self, seqs: Sequence[int]) -> None:
        """Write the turns' rows, once `entries` is flushed (`seqs`: its result)."""
        conn = self.tx.conn
        for turn, opened in self._new.values():
            turn.seq = seqs[opened]
            q.insert_turn(conn, self.workspace, turn)
        for turn in self._closed_stored.values():
            q.update_turn(
                conn,
                self.workspace,
                turn.id,
                status=CLOSED,
                ended_at=turn.ended_at,
                assistant_text=turn.assistant_text,
            )
        self._new, self._closed_stored = {}, {}
