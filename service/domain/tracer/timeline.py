"""Writing timeline events inside one write operation.

An event is one log entry (`tracer.event.logged`, whose data is the event's
timeline view) and one small `tracer_events` row that indexes it (task,
session, turn, kind, lane) without copying the view. Entries (the turns'
too) and rows are buffered and written together (one driver call each for
a batch) by `flush`: at the end of the operation, before a turn-closed hook
runs (so the hook sees the turn's events), and before anything else appends
to the log directly (so the log keeps the order things happened in).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from service.base.ids import uuid7
from service.domain.tracer.entries import PendingEntries
from service.domain.tracer.model import (
    EVENT_LOGGED,
    EVENT_UPDATED,
    FILE_CHANGED,
)
from service.domain.tracer.turns import Turns, linked_hooks
from service.store.log import Tx
from service.store.tracer import queries as q

# An event with file paths outside these lanes also gets one derived
# `file.changed` event per path, for at most the first MAX_DERIVED paths.
NO_DERIVED_LANES = frozenset({"exploration", "background"})
MAX_DERIVED = 15
_SEMANTIC_OPTIONAL = ("subtypeGroup", "entityType", "entityName")


@dataclass(slots=True)
class NewEvent:
    """A timeline event to write. `metadata` is final: the caller has put
    `filePaths` and the relation fields in it."""

    task_id: str
    kind: str
    lane: str
    title: str
    created_at: str
    metadata: dict[str, Any] = field(default_factory=dict)
    session_id: str | None = None
    body: str | None = None
    # The client's id for the event, when it gave one.
    event_id: str | None = None
    # (kind, session, metadata.crossCheck.dedupeKey), for cross-check events.
    dedupe_key: str | None = None


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def derived_fields(metadata: dict[str, Any], lane: str) -> dict[str, Any]:
    """The parts of an event view read from its metadata: classification,
    semantic subtype (when named) and paths."""
    file_paths = _strings(metadata.get("filePaths"))
    primary = file_paths[0] if file_paths else metadata.get("filePath")
    paths: dict[str, Any] = {
        "filePaths": file_paths,
        "mentionedPaths": _strings(metadata.get("mentionedPaths")),
    }
    if isinstance(primary, str) and primary:
        paths["primaryPath"] = primary
    out: dict[str, Any] = {
        "classification": {
            "lane": lane,
            "tags": list(dict.fromkeys(_strings(metadata.get("tags")))),
            "matches": [],
        },
        "paths": paths,
    }
    key, label = metadata.get("subtypeKey"), metadata.get("subtypeLabel")
    if isinstance(key, str) and isinstance(label, str):
        semantic = {"subtypeKey": key, "subtypeLabel": label}
        for name in _SEMANTIC_OPTIONAL:
            if isinstance(metadata.get(name), str):
                semantic[name] = metadata[name]
        out["semantic"] = semantic
    return out


def event_view(event_id: str, ev: NewEvent, turn_id: str | None) -> dict[str, Any]:
    """The event as the timeline and the `event.logged` message show it."""
    view: dict[str, Any] = {"id": event_id, "taskId": ev.task_id}
    if ev.session_id is not None:
        view["sessionId"] = ev.session_id
    view["kind"] = ev.kind
    view["lane"] = ev.lane
    view["title"] = ev.title
    if ev.body is not None:
        view["body"] = ev.body
    view["metadata"] = ev.metadata
    view["createdAt"] = ev.created_at
    view.update(derived_fields(ev.metadata, ev.lane))
    if turn_id is not None:
        view["turnId"] = turn_id
    return view


def merged_view(view: dict[str, Any], metadata: dict[str, Any], source: str) -> dict[str, Any]:
    """A cross-check repeat's metadata merged into the first event's view."""
    old: dict[str, Any] = view.get("metadata") or {}
    check = old.get("crossCheck")
    old_check: dict[str, Any] = check if isinstance(check, dict) else {}
    merged = {**old, **metadata, "crossCheck": {**old_check, "mergedFrom": source, "merged": True}}
    return {**view, "metadata": merged, **derived_fields(merged, view["lane"])}


class EventWriter:
    """Writes timeline events for one write operation (call `flush` at its end)."""

    def __init__(self, tx: Tx, workspace: str) -> None:
        self.tx = tx
        self.workspace = workspace
        self.entries = PendingEntries(tx, workspace)
        self.turns = Turns(tx, workspace, self.entries)
        # Rows not inserted yet (by event id, in order); a row's `seq` holds
        # the index of its entry in `entries` until the flush.
        self._pending: dict[str, dict[str, Any]] = {}
        # The views of this operation's events by id, and their ids by dedupe key.
        self._views: dict[str, dict[str, Any]] = {}
        self._dedupe: dict[str, str] = {}

    def write(self, ev: NewEvent) -> list[tuple[str, str]]:
        """Store an event and the `file.changed` events it implies; returns
        (event id, kind) for each, the given event first."""
        written = [(self._write_one(ev), ev.kind)]
        paths = _strings(ev.metadata.get("filePaths"))
        if paths and ev.lane not in NO_DERIVED_LANES:
            source_id = written[0][0]
            for path in paths[:MAX_DERIVED]:
                derived = NewEvent(
                    task_id=ev.task_id,
                    kind=FILE_CHANGED,
                    lane="implementation",
                    title=posixpath.basename(path.rstrip("/")) or path,
                    created_at=ev.created_at,
                    metadata={"sourceKind": ev.kind, "sourceEventId": source_id, "filePaths": [path]},
                    session_id=ev.session_id,
                    body=path,
                )
                written.append((self._write_one(derived), FILE_CHANGED))
        return written

    def _write_one(self, ev: NewEvent) -> str:
        # A server-made id (a UUID) is the log entry's id too; a client's id
        # may repeat another workspace's, so its entry gets its own.
        event_id = ev.event_id or uuid7()
        text = ev.body if ev.body is not None else ev.title
        turn_id = (
            self.turns.link(ev.session_id, ev.task_id, ev.kind, text, ev.created_at)
            if ev.session_id
            else None
        )
        view = event_view(event_id, ev, turn_id)
        seq = self.entries.add(
            EVENT_LOGGED,
            view,
            session_id=ev.session_id,
            occurred_at=ev.created_at,
            name=ev.kind,
            event_id=None if ev.event_id else event_id,
        )
        self._pending[event_id] = {
            "workspace": self.workspace,
            "id": event_id,
            "seq": seq,
            "task_id": ev.task_id,
            "session_id": ev.session_id,
            "turn_id": turn_id,
            "kind": ev.kind,
            "lane": ev.lane,
            "dedupe_key": ev.dedupe_key,
            "data": None,
        }
        self._views[event_id] = view
        if ev.dedupe_key is not None:
            self._dedupe[ev.dedupe_key] = event_id
        if ev.session_id:
            self.turns.settle(ev.session_id, ev.kind, text, ev.created_at)
            if self.turns.closed:
                self.flush()
                self.turns.run_hooks()
        return event_id

    def known(self, event_id: str) -> bool:
        """Whether an event with this id is stored (or written in this operation)."""
        return event_id in self._views or q.event_exists(self.tx.conn, self.workspace, event_id)

    def merge_repeat(self, dedupe_key: str, metadata: dict[str, Any], source: str) -> str | None:
        """If an event with this dedupe key exists, merge `metadata` into it
        (logging `tracer.event.updated`) and return its id; else None."""
        event_id = self._dedupe.get(dedupe_key)
        if event_id is not None:
            view = self._views[event_id] = merged_view(self._views[event_id], metadata, source)
            pending = self._pending.get(event_id)
            if pending is not None:
                pending["data"] = view
            else:  # already inserted by a flush
                q.override_event_view(self.tx.conn, self.workspace, event_id, view)
        else:
            found = q.event_by_dedupe_key(self.tx.conn, self.workspace, dedupe_key)
            if found is None:
                return None
            event_id, stored = found
            view = merged_view(stored, metadata, source)
            q.override_event_view(self.tx.conn, self.workspace, event_id, view)
        self.entries.add(EVENT_UPDATED, view, session_id=view.get("sessionId"), name=view["kind"])
        return event_id

    def flush(self) -> None:
        """Append the buffered log entries, then write the turns' and events' rows."""
        seqs = self.entries.flush()
        self.turns.flush(seqs)
        if self._pending:
            conn = self.tx.conn
            rows = [
                {
                    **r,
                    "seq": seqs[r["seq"]],
                    "data": None if r["data"] is None else q.json_param(conn, r["data"]),
                }
                for r in self._pending.values()
            ]
            q.insert_events(self.tx, rows)
            linked = [self._views[i] for i, r in self._pending.items() if r["turn_id"]]
            self._pending = {}
            for hook in list(linked_hooks) if linked else ():
                hook(self.tx, self.workspace, linked)
