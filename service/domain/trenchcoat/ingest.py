"""Trenchcoat telemetry ingest (seed 002): a batch of 1 to 1,000 events,
all or nothing.

The whole batch is validated first, every offending field named with the
seed's paths (`events[2].event_type`); then one write operation appends
every event to the log (`trenchcoat.event`, one executemany) and creates or
updates each session it names in the shared projection (one select, one
insert, one update), as upstream's `ingestEvents` does: first and last event
time, event and tool counts, and from `assistant_stop` the tokens, model and
stop reason (the last in the batch wins).

Items come in the seed's shape (`event_type`, `timestamp`, `session_id` a
UUID) or the plugin's (`event`, `ts`, `seq`, `session_id` any non-empty
string); both are stored in one canonical form.

An event that carries the plugin's `seq` has a natural key: (session, seq,
type, time). Its log entry's id is derived from it, so a resend of an event
already stored (a retry after a lost answer) stores nothing and counts
nothing again; it still counts as accepted (it is in the database, once),
so a resent batch gets the first answer. `seq` alone is not the key: the
plugin numbers per process, so a resumed session starts again at 0.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from service.base.errors import FieldViolation, InvalidArgument
from service.domain.trenchcoat.reasons import TrenchcoatReason
from service.domain.validation import reject_nul_characters
from service.store import session_activity as activity_q
from service.store.log import Tx, existing_event_ids
from service.store.session_activity import Activity
from service.store.sessions import SessionRecord
from service.store.store import Store

TRENCHCOAT_EVENT = "trenchcoat.event"
MAX_BATCH = 1000
SEED_TYPES = ("session_start", "session_end", "tool_use", "tool_result", "subagent_stop", "assistant_stop")
# The plugin's extra types (upstream code at c75b6f0 and HEAD): accepted,
# though the seed's error message lists only its own six.
PLUGIN_TYPES = ("prompt_submit", "pre_compact", "error", "subagent_start", "skill_use")
EVENT_TYPES = frozenset(SEED_TYPES + PLUGIN_TYPES)
TOOL_TYPES = frozenset({"tool_use", "tool_result"})
# assistant_stop data field -> session column (overwritten, never summed).
USAGE_INTS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")
USAGE_TEXTS = (("model", "model"), ("reason", "stop_reason"))

BODY_INVALID = "Request body is invalid."
BATCH_TOO_LARGE = f"Batch size exceeds limit of {MAX_BATCH} events per request."
REQUIRED = "Required"
INVALID_ENUM = "Invalid enum value. Expected one of: " + ", ".join(SEED_TYPES)
INVALID_UUID = "Invalid UUID format"
INVALID_DATETIME = "Invalid datetime: expected ISO 8601 with a UTC offset or Z"
NEGATIVE_SEQ = "Number must be greater than or equal to 0"
TOO_FEW = "Array must contain at least 1 element(s)"
NUL_CHARACTER = "must not contain the character U+0000"

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_RUNNING, _FINISHED = "running", "finished"


@dataclass(slots=True)
class RawEvent:
    """An item as received, both shapes' fields ("" or None when absent)."""

    event_type: str = ""
    session_id: str = ""
    timestamp: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    event: str = ""
    ts: str = ""
    seq: int | None = None


@dataclass
class _Session:
    """What one batch says about one session."""

    first: datetime
    first_text: str
    last: datetime
    events: int = 0
    tools: int = 0
    status: str | None = None
    cwd: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)


def _utc_text(moment: datetime) -> str:
    """Fixed-width UTC, so that text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str) -> datetime | None:
    """An ISO 8601 date-time with an offset (or Z), else None. Python reads
    any separator between date and time; the standard's is T."""
    if len(text) < 11 or text[10] not in "Tt":
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Batch:
    """Validates a batch, collecting every violation, and prepares its writes.

    The loop runs a thousand times a request: valid items take a short path
    (a session id's check is done once per batch), and only an invalid item
    is looked at again, field by field, to name everything wrong with it."""

    def __init__(self, items: Sequence[RawEvent], workspace: str) -> None:
        self.workspace = workspace
        self.violations: list[FieldViolation] = []
        # Parallel to `rows`: the item, and its entry id when it has a natural key.
        self.items: list[RawEvent] = []
        self.event_ids: list[str | None] = []
        # (session_id, occurred_at, name, data JSON) for Tx.append_many
        self.rows: list[tuple[str | None, str | None, str | None, str]] = []
        self.sessions: dict[str, _Session] = {}
        self._ids: dict[tuple[str, bool], str | None] = {}
        for i, item in enumerate(items):
            self._item(i, item)

    def _id_problem(self, session_id: str, plugin_shape: bool) -> str | None:
        """What is wrong with a session id, if anything (worked out once per
        batch): the plugin's shape takes any non-empty string, the seed's a UUID."""
        key = (session_id, plugin_shape)
        if key not in self._ids:
            if not session_id:
                self._ids[key] = REQUIRED
            elif "\x00" in session_id:
                self._ids[key] = NUL_CHARACTER
            elif not plugin_shape and not _UUID.fullmatch(session_id):
                self._ids[key] = INVALID_UUID
            else:
                self._ids[key] = None
        return self._ids[key]

    def _item(self, i: int, item: RawEvent) -> None:
        kind = item.event_type or item.event
        when = item.timestamp or item.ts
        moment = _parse_time(when)
        seq = item.seq or 0
        if (
            moment is None
            or kind not in EVENT_TYPES
            or seq < 0
            or self._id_problem(item.session_id, not item.event_type) is not None
        ):
            self._explain(f"events[{i}]", item)
            return
        blob = orjson.dumps(
            {
                "event_type": kind,
                "session_id": item.session_id,
                "timestamp": when,
                "seq": seq,
                "data": item.data,
            }
        )
        if b"\\u0000" in blob:  # PostgreSQL stores no U+0000: refuse it on every backend
            try:
                reject_nul_characters(item.data, f"events[{i}].data")
            except InvalidArgument as exc:
                self.violations += exc.violations
            return
        self.rows.append((item.session_id, when, kind, blob.decode()))
        self.items.append(item)
        self.event_ids.append(
            None if item.seq is None else self._natural_id(item.session_id, seq, kind, when)
        )
        self._count(item.session_id, kind, moment, when, item.data)

    def _natural_id(self, session_id: str, seq: int, kind: str, when: str) -> str:
        key = "\x1f".join((self.workspace, session_id, str(seq), kind, when))
        return "tc-" + hashlib.sha256(key.encode()).hexdigest()[:40]

    def without_stored(self, tx: Tx) -> _Batch:
        """The batch less the events already in the log (or earlier in it)."""
        keyed = [event_id for event_id in self.event_ids if event_id is not None]
        if not keyed:
            return self
        seen = existing_event_ids(tx.conn, keyed)
        if not seen and len(set(keyed)) == len(keyed):
            return self
        fresh: list[RawEvent] = []
        for item, event_id in zip(self.items, self.event_ids, strict=True):
            if event_id is None or event_id not in seen:
                fresh.append(item)
                if event_id is not None:
                    seen.add(event_id)
        return _Batch(fresh, self.workspace)

    def _explain(self, at: str, item: RawEvent) -> None:
        """Every violation of an item, under the names the item used."""
        bad = self.violations.append
        kind_field = "event_type" if item.event_type or not item.event else "event"
        kind = item.event_type or item.event
        if not kind:
            bad(FieldViolation(f"{at}.event_type", REQUIRED))
        elif kind not in EVENT_TYPES:
            bad(FieldViolation(f"{at}.{kind_field}", INVALID_ENUM))
        problem = self._id_problem(item.session_id, kind_field == "event")
        if problem is not None:
            bad(FieldViolation(f"{at}.session_id", problem))
        when_field = "timestamp" if item.timestamp or not item.ts else "ts"
        when = item.timestamp or item.ts
        if not when:
            bad(FieldViolation(f"{at}.timestamp", REQUIRED))
        elif _parse_time(when) is None:
            bad(FieldViolation(f"{at}.{when_field}", INVALID_DATETIME))
        if (item.seq or 0) < 0:
            bad(FieldViolation(f"{at}.seq", NEGATIVE_SEQ))

    def _count(self, session_id: str, kind: str, moment: datetime, text: str, data: dict[str, Any]) -> None:
        s = self.sessions.get(session_id)
        if s is None:
            s = self.sessions[session_id] = _Session(moment, text, moment)
        elif moment < s.first:
            s.first, s.first_text = moment, text
        elif moment > s.last:
            s.last = moment
        s.events += 1
        if kind in TOOL_TYPES:
            s.tools += 1
        elif kind == "session_start":
            s.status = _RUNNING
            cwd = data.get("cwd")
            if isinstance(cwd, str) and cwd and s.cwd is None:
                s.cwd = cwd
        elif kind == "session_end":
            s.status = _FINISHED
        elif kind == "assistant_stop":
            for name in USAGE_INTS:
                if _is_int(data.get(name)):
                    s.usage[name] = data[name]
            for name, column in USAGE_TEXTS:
                if isinstance(data.get(name), str):
                    s.usage[column] = data[name]


def _merged(known: Activity, batch: _Session) -> Activity:
    """The session's activity after the batch (upstream's upsert rules)."""
    first, last = _utc_text(batch.first), _utc_text(batch.last)
    started = min(known.started_at, first) if known.started_at else first
    ended = max(known.ended_at, last) if known.ended_at else last
    duration = round((datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds() * 1000)
    return replace(
        known,
        started_at=started,
        ended_at=ended,
        duration_ms=duration if duration > 0 else None,
        event_count=known.event_count + batch.events,
        tool_count=known.tool_count + batch.tools,
        **batch.usage,
    )


def _apply_lifecycle(record: SessionRecord, seen: _Session) -> bool:
    """What the batch says about the session as every family sees it (running
    or finished, an unset project directory); True if that changed."""
    before = (record.status, record.project_dir)
    if seen.status is not None:
        record.status = seen.status
    if record.project_dir is None:
        record.project_dir = seen.cwd
    return (record.status, record.project_dir) != before


def check_size(count: int) -> None:
    """The batch-size rule, checkable before the events are decoded."""
    if count == 0:
        raise InvalidArgument(
            BODY_INVALID,
            reason=TrenchcoatReason.VALIDATION_ERROR,
            violations=[FieldViolation("events", TOO_FEW)],
        )
    if count > MAX_BATCH:
        raise InvalidArgument(BATCH_TOO_LARGE, reason=TrenchcoatReason.BATCH_TOO_LARGE)


def violations(events: Sequence[RawEvent]) -> list[FieldViolation]:
    """Every field violation of a batch, writing nothing (for a body whose
    other values were of the wrong type: see service/api/bad_fields)."""
    try:
        check_size(len(events))
    except InvalidArgument as exc:
        return list(exc.violations)
    return _Batch(events, "").violations


def _validated(events: Sequence[RawEvent], workspace: str) -> _Batch:
    check_size(len(events))
    batch = _Batch(events, workspace)
    if batch.violations:
        raise InvalidArgument(
            BODY_INVALID, reason=TrenchcoatReason.VALIDATION_ERROR, violations=batch.violations
        )
    return batch


async def ingest(store: Store, workspace: str, events: Sequence[RawEvent]) -> int:
    """Validate and write a batch; returns how many events were written."""
    checked = _validated(events, workspace)

    def op(tx: Tx) -> int:
        batch = checked.without_stored(tx)
        now = datetime.now(UTC)
        known = activity_q.find(tx.conn, workspace, list(batch.sessions))
        created: list[tuple[SessionRecord, Activity]] = []
        updated: list[tuple[SessionRecord, Activity]] = []
        for session_id, seen in batch.sessions.items():
            if session_id in known:
                record, before = known[session_id]
                if _apply_lifecycle(record, seen):
                    tx.append(
                        "session.updated", workspace, {"session": record.as_dict()}, session_id=session_id
                    )
                updated.append((record, _merged(before, seen)))
            else:
                record = SessionRecord(session_id, "", seen.status or _RUNNING, seen.first_text, seen.cwd)
                created.append((record, _merged(Activity(), seen)))
                tx.append("session.created", workspace, {"session": record.as_dict()}, session_id=session_id)
        if created:
            activity_q.insert_many(tx.conn, workspace, created, now)
        if updated:
            activity_q.update_many(tx.conn, workspace, updated, now)
        tx.append_many(TRENCHCOAT_EVENT, workspace, batch.rows, batch.event_ids)
        return len(checked.rows)

    return await store.write(op)
