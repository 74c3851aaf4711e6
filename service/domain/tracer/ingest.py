"""The seven event endpoints (reference §4).

A body is validated whole first: a bad kind or lane, a missing field, more
than 100 events refuses the request (400 `validation_error`, nothing
written). Then the events are recorded in order in one write operation; an
event whose task does not exist is rejected alone (`task_not_found`) and the
others are recorded. Nothing else can fail one event: the checks that could
are all made before anything is written, so a request is never partly
recorded (an unexpected fault rolls the whole request back).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from service.domain.tracer.lifecycle import Lifecycle
from service.domain.tracer.model import (
    COMPLETED,
    INVALID_BODY,
    LANES,
    MAX_EVENTS,
    MAX_ITEMS,
    MIN_ONE_ITEM,
    NOT_NEGATIVE,
    RELATION_TYPES,
    REQUIRED,
    TASK_STATUSES,
    TASK_UPDATED,
    TOKEN_USAGE,
    Violations,
    normalize_file_paths,
    now_iso,
    reject_nul,
)
from service.domain.tracer.timeline import EventWriter, NewEvent
from service.store.log import Tx
from service.store.store import Store
from service.store.tracer import queries as q
from service.store.tracer.queries import TaskRecord, TokenTotals

TASK_NOT_FOUND = "task_not_found"
# Sources whose `metadata.crossCheck.dedupeKey` deduplicates (reference §4.3).
CROSS_CHECK_SOURCES = ("hook", "rollout")
_NUL_IN_JSON = b"\\u0000"
_RELATION_KEYS = (
    ("parentEventId", "parent_event_id"),
    ("relatedEventIds", "related_event_ids"),
    ("relationType", "relation_type"),
    ("relationLabel", "relation_label"),
    ("relationExplanation", "relation_explanation"),
)
_TOKEN_KEYS = ("inputTokens", "outputTokens", "cacheReadTokens", "cacheCreateTokens")
_TELEMETRY_EXTRAS = ("costUsd", "durationMs", "model", "promptId")


@dataclass(slots=True)
class EventIn:
    """An event of the six lane-carrying endpoints, as sent (None: absent)."""

    kind: str
    task_id: str
    lane: str
    session_id: str | None = None
    title: str | None = None
    body: str | None = None
    file_paths: list[str] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    parent_event_id: str | None = None
    related_event_ids: list[str] = field(default_factory=list)
    relation_type: str | None = None
    relation_label: str | None = None
    relation_explanation: str | None = None
    created_at: str | None = None
    task_status: str | None = None
    event_id: str | None = None


@dataclass(slots=True)
class TelemetryIn:
    """A `/telemetry` item, as sent. `metadata`, when given, holds the token
    fields instead of the item (keys in JSON form: `inputTokens`, …)."""

    task_id: str
    kind: str | None = None
    session_id: str | None = None
    tokens: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None
    created_at: str | None = None
    event_id: str | None = None


@dataclass(slots=True)
class Prepared:
    """A validated event, ready to record."""

    event: NewEvent
    task_status: str | None = None
    tokens: TokenTotals | None = None
    cross_check_source: str | None = None


@dataclass
class IngestResult:
    # (event id, kind, task id)
    accepted: list[tuple[str, str, str]] = field(default_factory=list)
    # (index, code, message)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)


# ------------------------------------------------------------- validation


def _check_count(v: Violations, n: int) -> None:
    if n == 0:
        v.add("events", MIN_ONE_ITEM)
    elif n > MAX_EVENTS:
        v.add("events", MAX_ITEMS)


def _check_nul(v: Violations, path: str, values: dict[str, Any]) -> None:
    """One serialisation finds whether any string holds U+0000; only then is
    the event walked to name the field."""
    if _NUL_IN_JSON in orjson.dumps(values):
        for name, value in values.items():
            reject_nul(v, f"{path}.{name}", value)


def _valid_event(e: EventIn, kinds: tuple[str, ...]) -> bool:
    """Whether `_check_event` would find nothing: the short path most events
    take, with no field path made and one serialisation for the NUL check."""
    return (
        e.kind in kinds
        and bool(e.task_id)
        and e.lane in LANES
        and "" not in (e.session_id, e.parent_event_id, e.relation_label, e.relation_explanation, e.event_id)
        and "" not in e.related_event_ids
        and (e.relation_type is None or e.relation_type in RELATION_TYPES)
        and _NUL_IN_JSON
        not in orjson.dumps(
            (
                e.kind,
                e.task_id,
                e.lane,
                e.session_id,
                e.title,
                e.body,
                e.file_paths,
                e.metadata,
                e.parent_event_id,
                e.related_event_ids,
                e.relation_label,
                e.relation_explanation,
                e.created_at,
                e.event_id,
            )
        )
    )


def _check_event(v: Violations, path: str, e: EventIn, kinds: tuple[str, ...]) -> None:
    if _valid_event(e, kinds):
        return
    v.enum(f"{path}.kind", e.kind, kinds)
    if not e.task_id:
        v.add(f"{path}.taskId", REQUIRED)
    v.enum(f"{path}.lane", e.lane, LANES)
    for name, value in (
        ("sessionId", e.session_id),
        ("parentEventId", e.parent_event_id),
        ("relationLabel", e.relation_label),
        ("relationExplanation", e.relation_explanation),
        ("eventId", e.event_id),
    ):
        v.not_empty(f"{path}.{name}", value)
    for j, related in enumerate(e.related_event_ids):
        v.not_empty(f"{path}.relatedEventIds.{j}", related)
    v.optional_enum(f"{path}.relationType", e.relation_type, RELATION_TYPES)
    _check_nul(
        v,
        path,
        {
            "kind": e.kind,
            "taskId": e.task_id,
            "lane": e.lane,
            "sessionId": e.session_id,
            "title": e.title,
            "body": e.body,
            "filePaths": e.file_paths,
            "metadata": e.metadata,
            "parentEventId": e.parent_event_id,
            "relatedEventIds": e.related_event_ids,
            "relationLabel": e.relation_label,
            "relationExplanation": e.relation_explanation,
            "createdAt": e.created_at,
            "eventId": e.event_id,
        },
    )


def _check_telemetry(v: Violations, path: str, t: TelemetryIn) -> None:
    if t.kind is not None and t.kind != TOKEN_USAGE:
        v.add(f"{path}.kind", f'Invalid literal value, expected "{TOKEN_USAGE}"')
    if not t.task_id:
        v.add(f"{path}.taskId", REQUIRED)
    v.not_empty(f"{path}.eventId", t.event_id)
    where, values = (f"{path}.metadata", t.metadata) if t.metadata is not None else (path, t.tokens)
    for key in ("inputTokens", "outputTokens"):
        if values.get(key) is None:
            v.add(f"{where}.{key}", REQUIRED)
    for key in (*_TOKEN_KEYS, "costUsd", "durationMs"):
        number = values.get(key)
        if number is not None and number < 0:
            v.add(f"{where}.{key}", NOT_NEGATIVE)
    _check_nul(
        v,
        path,
        {"taskId": t.task_id, "sessionId": t.session_id, "createdAt": t.created_at, "eventId": t.event_id}
        | {"metadata": t.metadata, **t.tokens},
    )


# ----------------------------------------------------------- preparation


def token_totals(metadata: dict[str, Any]) -> TokenTotals:
    """A `token.usage` event's contribution to its task's and session's totals
    (missing or non-numeric counts add nothing)."""

    def number(key: str) -> float:
        value = metadata.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            return 0
        return value

    return TokenTotals(
        input_tokens=int(number("inputTokens")),
        output_tokens=int(number("outputTokens")),
        cache_read_tokens=int(number("cacheReadTokens")),
        cache_create_tokens=int(number("cacheCreateTokens")),
        cost_usd=float(number("costUsd")),
        token_events=1,
    )


def _cross_check(metadata: dict[str, Any] | None) -> tuple[str, str] | None:
    """(dedupeKey, source) when the metadata asks for cross-check deduplication."""
    check = metadata.get("crossCheck") if metadata else None
    if not isinstance(check, dict):
        return None
    key, source = check.get("dedupeKey"), check.get("source")
    if isinstance(key, str) and key and source in CROSS_CHECK_SOURCES:
        return key, source
    return None


def _prepare(e: EventIn, now: str) -> Prepared:
    metadata = dict(e.metadata or {})
    file_paths = normalize_file_paths(e.file_paths)
    if file_paths:
        metadata["filePaths"] = file_paths
    for key, attr in _RELATION_KEYS:
        value = getattr(e, attr)
        if value:  # an empty list of related ids is no relation
            metadata[key] = value
    dedupe = _cross_check(metadata)
    return Prepared(
        NewEvent(
            task_id=e.task_id,
            kind=e.kind,
            lane=e.lane,
            title=e.title if e.title is not None else e.kind,
            created_at=e.created_at if e.created_at is not None else now,
            metadata=metadata,
            session_id=e.session_id,
            body=e.body,
            event_id=e.event_id,
            dedupe_key=f"{e.kind}\x1f{e.session_id or ''}\x1f{dedupe[0]}" if dedupe else None,
        ),
        task_status=e.task_status,
        tokens=token_totals(metadata) if e.kind == TOKEN_USAGE else None,
        cross_check_source=dedupe[1] if dedupe else None,
    )


def _prepare_telemetry(t: TelemetryIn, now: str) -> Prepared:
    source = t.metadata if t.metadata is not None else t.tokens
    metadata: dict[str, Any] = {k: source.get(k) or 0 for k in _TOKEN_KEYS}
    metadata.update({k: source[k] for k in _TELEMETRY_EXTRAS if source.get(k) is not None})
    return Prepared(
        NewEvent(
            task_id=t.task_id,
            kind=TOKEN_USAGE,
            lane="telemetry",
            title=TOKEN_USAGE,
            created_at=t.created_at if t.created_at is not None else now,
            metadata=metadata,
            session_id=t.session_id,
            event_id=t.event_id,
        ),
        tokens=token_totals(metadata),
    )


# -------------------------------------------------------------- recording


async def ingest_events(
    store: Store, workspace: str, kinds: tuple[str, ...], items: list[EventIn]
) -> IngestResult:
    """Record events of the kinds an endpoint accepts."""
    v = Violations()
    _check_count(v, len(items))
    for i, item in enumerate(items):
        _check_event(v, f"events.{i}", item, kinds)
    v.check(INVALID_BODY)
    now = now_iso()
    return await _record(store, workspace, [_prepare(item, now) for item in items])


async def ingest_telemetry(store: Store, workspace: str, items: list[TelemetryIn]) -> IngestResult:
    v = Violations()
    _check_count(v, len(items))
    for i, item in enumerate(items):
        _check_telemetry(v, f"events.{i}", item)
    v.check(INVALID_BODY)
    now = now_iso()
    return await _record(store, workspace, [_prepare_telemetry(item, now) for item in items])


async def _record(store: Store, workspace: str, prepared: list[Prepared]) -> IngestResult:
    def op(tx: Tx) -> IngestResult:
        return _Batch(tx, workspace).record(prepared)

    return await store.write(op)


class _Batch:
    """One request's events, recorded in one write operation."""

    def __init__(self, tx: Tx, workspace: str) -> None:
        self.tx = tx
        self.workspace = workspace
        self.writer = EventWriter(tx, workspace)
        self.tasks: dict[str, TaskRecord | None] = {}
        self.task_tokens: dict[str, TokenTotals] = {}
        self.session_tokens: dict[str, TokenTotals] = {}
        self._lifecycle: Lifecycle | None = None

    def _task(self, task_id: str) -> TaskRecord | None:
        if task_id not in self.tasks:
            self.tasks[task_id] = q.get_task(self.tx.conn, self.workspace, task_id)
        return self.tasks[task_id]

    def record(self, prepared: list[Prepared]) -> IngestResult:
        result = IngestResult()
        touched: dict[str, None] = {}
        for index, item in enumerate(prepared):
            ev = item.event
            task = self._task(ev.task_id)
            if task is None:
                result.rejected.append((index, TASK_NOT_FOUND, f"Task not found: {ev.task_id}"))
                continue
            touched[task.id] = None
            existing = self._existing(item)
            if existing is not None:
                result.accepted.append((existing, ev.kind, ev.task_id))
                continue
            for event_id, kind in self.writer.write(ev):
                result.accepted.append((event_id, kind, ev.task_id))
            if item.tokens is not None:
                self._add_tokens(ev, item.tokens)
            if item.task_status is not None:
                self._apply_effect(task, item.task_status)
        self.writer.flush()
        now = now_iso()
        q.touch_tasks(self.tx, self.workspace, touched, now)
        q.add_task_tokens(self.tx, self.workspace, self.task_tokens)
        q.add_session_tokens(self.tx, self.workspace, self.session_tokens)
        return result

    def _existing(self, item: Prepared) -> str | None:
        """The id of the event this one repeats (same client id, or same
        cross-check key, whose metadata then absorbs this one's), if any."""
        ev = item.event
        if ev.event_id is not None and self.writer.known(ev.event_id):
            return ev.event_id
        if ev.dedupe_key is not None and item.cross_check_source is not None:
            return self.writer.merge_repeat(ev.dedupe_key, ev.metadata, item.cross_check_source)
        return None

    def _add_tokens(self, ev: NewEvent, tokens: TokenTotals) -> None:
        self.task_tokens.setdefault(ev.task_id, TokenTotals()).add(tokens)
        if ev.session_id:
            self.session_tokens.setdefault(ev.session_id, TokenTotals()).add(tokens)

    def _apply_effect(self, task: TaskRecord, status: str) -> None:
        """`taskEffects.taskStatus`: one of the four statuses, applied unless the
        task is completed or already in it (other values are ignored); announced
        as `task.updated`, whatever the status."""
        if status not in TASK_STATUSES or status == task.status or task.status == COMPLETED:
            return
        self.writer.flush()  # the task's entries follow the events' before it
        if self._lifecycle is None:
            self._lifecycle = Lifecycle(self.tx, self.workspace)
        task = self.tasks[task.id] = self._lifecycle.update(task, status=status)
        self._lifecycle.announce(TASK_UPDATED, task)
