"""Sessions and events as the Agent Runtime API (seed 004) defines them.

Every change appends to the event log in the same transaction as the
session projection it updates. The log entries are what live feeds replay:
`session.created`, `session.updated`, `session.deleted` and `runtime.event`
(whose data is the event exactly as the runtime sent it).

Write operations are plain functions of a `Tx`, run by the group-commit
writer; reads are plain functions of a connection, run by `Store.read`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from service.base.errors import AlreadyExists, FailedPrecondition, NotFound, invalid
from service.domain.runtime.reasons import RuntimeReason
from service.domain.validation import reject_nul_characters
from service.store import sessions as q
from service.store.log import LogEntry, Tx
from service.store.sessions import RUNTIME_EVENT, SessionRecord
from service.store.store import Store

RUNNING = "running"
FINISHED = "finished"
NOT_EXISTENT = "not_existent"
SESSION_START = "session_start"
SESSION_STOP = "session_stop"
# Reads of a session's events return at most this many, the oldest (as upstream).
EVENT_LIST_CAP = 100
# The event keys that upstream stores only when truthy and reads back as null.
_NULL_WHEN_FALSY = ("tool_input", "tool_output", "content")

# hook(tx, workspace, session_id): another family's rows of a session that is
# being deleted go in the same transaction, before its log entries (the
# tracer's monitor session, registered by the server's assembly so that the
# families stay independent).
SessionDeletedHook = Callable[[Tx, str, str], None]
_deleted_hooks: list[SessionDeletedHook] = []


def on_session_deleted(hook: SessionDeletedHook) -> None:
    """Run `hook` in every session deletion (registering it twice is a no-op)."""
    if hook not in _deleted_hooks:
        _deleted_hooks.append(hook)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _missing(session_id: str) -> NotFound:
    return NotFound(
        "Session not found", reason=RuntimeReason.SESSION_NOT_FOUND, metadata={"session_id": session_id}
    )


def _existing(conn: Connection, workspace: str, session_id: str) -> SessionRecord:
    record = q.get(conn, workspace, session_id)
    if record is None:
        raise _missing(session_id)
    return record


def _announce(tx: Tx, workspace: str, kind: str, record: SessionRecord) -> None:
    tx.append(kind, workspace, {"session": record.as_dict()}, session_id=record.session_id)


async def list_sessions(store: Store, workspace: str) -> list[SessionRecord]:
    return await store.read(lambda conn: q.list_all(conn, workspace))


async def get_session(store: Store, workspace: str, session_id: str) -> SessionRecord:
    return await store.read(lambda conn: _existing(conn, workspace, session_id))


async def session_status(store: Store, workspace: str, session_id: str) -> str:
    record = await store.read(lambda conn: q.get(conn, workspace, session_id))
    return record.status if record else NOT_EXISTENT


async def session_result(store: Store, workspace: str, session_id: str) -> str | None:
    """The first text block of the latest assistant message of a finished session
    (None when that block's text is null, as upstream returns it)."""

    def latest_assistant_message(conn: Connection) -> dict[str, Any] | None:
        if _existing(conn, workspace, session_id).status != FINISHED:
            raise FailedPrecondition("Session not finished", reason=RuntimeReason.SESSION_NOT_FINISHED)
        for message in q.runtime_events(conn, workspace, session_id, newest_first=True, name="message"):
            if message.data.get("role") == "assistant":
                return message.data
        return None

    latest = await store.read(latest_assistant_message)
    content = (latest or {}).get("content")
    if not content or not isinstance(content[0], dict) or "text" not in content[0]:
        raise NotFound("No result found", reason=RuntimeReason.RESULT_NOT_FOUND)
    text = content[0]["text"]
    return None if text is None else str(text)


async def create_session(
    store: Store,
    workspace: str,
    session_id: str,
    session_name: str,
    project_dir: str | None = None,
    agent_name: str | None = None,
) -> SessionRecord:
    reject_nul_characters(
        {
            "session_id": session_id,
            "session_name": session_name,
            "project_dir": project_dir,
            "agent_name": agent_name,
        }
    )

    def op(tx: Tx) -> SessionRecord:
        if q.get(tx.conn, workspace, session_id) is not None:
            raise AlreadyExists("Session already exists", reason=RuntimeReason.SESSION_EXISTS)
        record = SessionRecord(session_id, session_name, RUNNING, _now(), project_dir, agent_name)
        q.insert_one(tx.conn, workspace, record)
        _announce(tx, workspace, "session.created", record)
        return record

    return await store.write(op)


async def update_metadata(
    store: Store, workspace: str, session_id: str, changes: dict[str, str]
) -> SessionRecord:
    """Apply the non-null `changes`; an empty change is accepted and announced."""
    reject_nul_characters(changes)

    def op(tx: Tx) -> SessionRecord:
        record = _existing(tx.conn, workspace, session_id)
        given = {k: v for k, v in changes.items() if v is not None}
        if given:
            q.update_fields(tx.conn, workspace, session_id, **given)
            record = SessionRecord(**{**record.as_dict(), **given})
        _announce(tx, workspace, "session.updated", record)
        return record

    return await store.write(op)


async def delete_session(store: Store, workspace: str, session_id: str) -> int:
    """Delete a session and its events; returns how many events it had."""

    def op(tx: Tx) -> int:
        _existing(tx.conn, workspace, session_id)
        for hook in _deleted_hooks:  # e.g. a tracer monitor session's rows
            hook(tx, workspace, session_id)
        count = q.delete_with_log(tx.conn, workspace, session_id)
        tx.append("session.deleted", workspace, {"session_id": session_id}, session_id=session_id)
        return count

    return await store.write(op)


def _check_event(event: dict[str, Any]) -> None:
    """What the message type cannot say. Field paths are the request's (`event.…`)."""
    for i, block in enumerate(event.get("content") or []):
        if not isinstance(block, dict):
            raise invalid(
                f"event.content[{i}]", "must be a JSON object", "content blocks must be JSON objects"
            )
    reject_nul_characters(event, "event")


def _append_event(tx: Tx, workspace: str, event: dict[str, Any]) -> None:
    tx.append(
        RUNTIME_EVENT,
        workspace,
        event,
        session_id=event["session_id"],
        occurred_at=event["timestamp"],
        name=event["event_type"],
    )


async def add_event(store: Store, workspace: str, session_id: str, event: dict[str, Any]) -> None:
    """Add an event to an existing session; `session_stop` finishes it."""
    _check_event(event)

    def op(tx: Tx) -> None:
        record = _existing(tx.conn, workspace, session_id)
        if event["session_id"] != session_id:
            raise invalid(
                "event.session_id",
                "must match the session_id of the path",
                "Event session_id must match URL session_id",
            )
        if event["event_type"] == SESSION_STOP:
            q.update_fields(tx.conn, workspace, session_id, status=FINISHED)
            record.status = FINISHED
            _announce(tx, workspace, "session.updated", record)
        _append_event(tx, workspace, event)

    await store.write(op)


async def record_event(store: Store, workspace: str, event: dict[str, Any]) -> None:
    """The legacy hook route: start creates or resumes, stop finishes, and any
    event is recorded, known session or not. Only the event is announced."""
    _check_event(event)
    session_id = event["session_id"]

    def op(tx: Tx) -> None:
        kind = event["event_type"]
        if kind == SESSION_START:
            if q.get(tx.conn, workspace, session_id) is None:
                record = SessionRecord(session_id, event["session_name"], RUNNING, event["timestamp"])
                q.insert_one(tx.conn, workspace, record)
            else:
                q.update_fields(tx.conn, workspace, session_id, status=RUNNING)
        elif kind == SESSION_STOP:
            q.update_fields(tx.conn, workspace, session_id, status=FINISHED)
        _append_event(tx, workspace, event)

    await store.write(op)


async def list_events(
    store: Store, workspace: str, session_id: str, *, require_session: bool
) -> list[LogEntry]:
    """A session's oldest events (at most EVENT_LIST_CAP), ordered by timestamp text."""

    def events(conn: Connection) -> list[LogEntry]:
        if require_session:
            _existing(conn, workspace, session_id)
        return list(q.runtime_events(conn, workspace, session_id, limit=EVENT_LIST_CAP))

    return await store.read(events)


def stored_view(entry: LogEntry) -> dict[str, Any]:
    """An event as GET returns it: with its log position as `id`, without
    `session_name`, and with empty tool input, output and content as null."""
    view = {k: v for k, v in entry.data.items() if k != "session_name"}
    for key in _NULL_WHEN_FALSY:
        if not view.get(key):
            view[key] = None
    view["id"] = entry.seq
    return view
