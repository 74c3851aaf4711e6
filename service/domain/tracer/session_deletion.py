"""What deleting a session (`DELETE /sessions/{id}`, the agent-runtime
family) does to the Agent Tracer.

A tracer monitor session is mirrored in the shared `sessions` table under
the same id, and that DELETE permanently removes the session with every log
entry of it. The tracer's projections of it go in the same transaction, so
that nothing points at entries that are gone: its timeline events (their
views are those entries), its turns and the monitor session; the bindings
that pointed at it become historical (the runtime's next ensure opens a new
session on the same task); and the token counts its `token.usage` events
added to their tasks are taken back. The tasks themselves stay. Other
projections keyed by a session register `on_session_deleted`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields

from service.domain.tracer.ingest import token_totals
from service.domain.tracer.model import EVENT_LOGGED, TOKEN_USAGE
from service.store.log import Tx
from service.store.tracer import queries as q
from service.store.tracer.queries import TokenTotals

# hook(tx, workspace, session_id): runs before the session's log entries and
# tracer rows are deleted, in the same transaction.
SessionDeletedHook = Callable[[Tx, str, str], None]
_hooks: list[SessionDeletedHook] = []


def on_session_deleted(hook: SessionDeletedHook) -> Callable[[], None]:
    """Call `hook` whenever a session is deleted; returns a function that unregisters it."""
    _hooks.append(hook)
    return lambda: _hooks.remove(hook)


def _negated(t: TokenTotals) -> TokenTotals:
    return TokenTotals(**{f.name: -getattr(t, f.name) for f in fields(t)})


def forget_session(tx: Tx, workspace: str, session_id: str) -> None:
    """Delete the tracer's rows of a session (none for a session of another
    family); call it before the session's log entries are deleted."""
    views = q.session_event_views(tx.conn, workspace, session_id, EVENT_LOGGED)
    taken: dict[str, TokenTotals] = {}
    for view in views:
        if view.get("kind") == TOKEN_USAGE:
            # What ingest added: the totals of the metadata as logged.
            taken.setdefault(view["taskId"], TokenTotals()).add(_negated(token_totals(view["metadata"])))
    q.add_task_tokens(tx, workspace, taken)
    for hook in list(_hooks):
        hook(tx, workspace, session_id)
    q.delete_session_rows(tx.conn, workspace, session_id, [view["id"] for view in views])
