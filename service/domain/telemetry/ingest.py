"""OTLP exports become agentplane data: one log entry per accepted record, and
the usage projections, in one write operation (all of an export or none).

A record the domain refuses (a trace or span id of the wrong length, a number
that is not one) is left out and counted, with the first reasons, for OTLP's
`partial_success`; the rest of the export is stored. Records not understood
are stored raw (`telemetry.record`), never dropped.

Metrics: a delta sum adds its value; a cumulative sum adds what it grew
since the stream's last point (the stream is the metric's name with its
resource's and point's attributes, kept in `telemetry_metric_streams`), so
Claude Code resending its running totals every 60 s counts each unit once; a
stream whose start time changed, or whose monotonic value fell, restarted,
and its value counts whole. Gauges and histograms are stored, not added up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from time import time_ns
from typing import Any

import orjson

from service.domain.telemetry import events
from service.domain.telemetry.events import BadRecord
from service.domain.telemetry.model import (
    API_ERROR,
    API_REQUEST,
    API_USAGE,
    CUMULATIVE,
    ENTRY_PREFIX,
    METRIC,
    SPAN,
    SUM,
    TOOL_DECISION,
    TOOL_RESULT,
    USER_PROMPT,
    Accepted,
    LogIn,
    PointIn,
    SpanIn,
)
from service.domain.validation import reject_nul_characters
from service.store.log import Entry, Tx
from service.store.store import Store
from service.store.telemetry import queries as q

# At most this many refusal reasons are quoted in partial_success.
MAX_REASONS = 3
_TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens")
_REJECTIONS = frozenset({"reject", "rejected", "deny", "denied", "block", "blocked"})
# Metric name -> (the attribute that picks the column, {its value: column}) or the column.
_METRIC_COLUMNS: dict[str, str | tuple[str, dict[str, str]]] = {
    "claude_code.cost.usage": "metric_cost_usd",
    "claude_code.token.usage": (
        "type",
        {
            "input": "metric_input_tokens",
            "output": "metric_output_tokens",
            "cacheRead": "metric_cache_read_tokens",
            "cacheCreation": "metric_cache_creation_tokens",
        },
    ),
    "claude_code.lines_of_code.count": ("type", {"added": "lines_added", "removed": "lines_removed"}),
    "claude_code.commit.count": "commits",
    "claude_code.pull_request.count": "pull_requests",
    "claude_code.active_time.total": "active_seconds",
}
# Columns that are day usage too (the rest are session counters only).
_DAY_COLUMNS = frozenset(q.USAGE_COLUMNS)


@dataclass
class _Session:
    runtime: str
    first: str
    last: str
    model: str | None = None
    added: dict[str, float] = field(default_factory=dict)


class _Batch:
    """An export's entries and what it adds to the usage projections."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.sessions: dict[str, _Session] = {}
        self.days: dict[tuple[str, str], dict[str, float]] = {}
        self.rejected = 0
        self.reasons: list[str] = []

    def refuse(self, where: str, exc: BadRecord) -> None:
        self.rejected += 1
        if len(self.reasons) < MAX_REASONS:
            self.reasons.append(f"{where}: {exc}")

    def entry(self, kind: str, session_id: str | None, time: str, name: str, data: dict[str, Any]) -> None:
        text = orjson.dumps(data).decode()
        if "\\u0000" in text:  # PostgreSQL stores no U+0000: the export is refused on every backend
            reject_nul_characters(data, f"{kind} record")
        self.entries.append((ENTRY_PREFIX + kind, session_id, time, name, None, text))

    def add(
        self,
        session_id: str | None,
        runtime: str,
        time: str,
        added: dict[str, float],
        model: str | None = None,
    ) -> None:
        """Count a record for its session and day (one pass over `added`:
        an export of 512 records calls this 512 times)."""
        totals: dict[str, float] | None = None
        if session_id is not None:
            s = self.sessions.get(session_id)
            if s is None:
                s = self.sessions[session_id] = _Session(runtime, time, time)
            elif time < s.first:
                s.first = time
            elif time > s.last:
                s.last = time
            if model:
                s.model = model
            totals = s.added
        day: dict[str, float] | None = None
        for column, amount in added.items():
            if totals is not None:
                totals[column] = totals.get(column, 0) + amount
            if column in _DAY_COLUMNS:
                if day is None:
                    day = self.days.setdefault((time[:10], session_id or ""), {})
                day[column] = day.get(column, 0) + amount

    def write(self, tx: Tx, workspace: str) -> None:
        tx.append_entries(workspace, self.entries)
        q.add_to_sessions(
            tx,
            workspace,
            (
                q.SessionAdd(sid, s.runtime, s.first, s.last, s.model, s.added)
                for sid, s in self.sessions.items()
            ),
        )
        q.add_to_days(tx, workspace, self.days)

    def outcome(self) -> Accepted:
        message = "; ".join(self.reasons)
        if self.rejected > len(self.reasons):
            message += f" (and {self.rejected - len(self.reasons)} more)"
        return Accepted(len(self.entries), self.rejected, message if self.rejected else "")


def _counted(kind: str, fields: dict[str, Any]) -> dict[str, float]:
    """What a record of `kind` adds to its session."""
    added: dict[str, float] = {"records": 1}
    if kind in (API_REQUEST, API_USAGE):
        if kind == API_REQUEST:
            added["api_requests"] = 1
        for name in _TOKENS:
            if name in fields:
                added[name] = fields[name]
        if "cost_usd" in fields:
            added["cost_usd"] = fields["cost_usd"]
    elif kind == API_ERROR:
        added["api_errors"] = 1
    elif kind == TOOL_RESULT:
        added["tool_results"] = 1
        if fields.get("success") is False:
            added["tool_failures"] = 1
    elif kind == TOOL_DECISION:
        added["tool_decisions"] = 1
        if str(fields.get("decision", "")).lower() in _REJECTIONS:
            added["tool_rejections"] = 1
    elif kind == USER_PROMPT:
        added["prompts"] = 1
    return added


def _log_record(batch: _Batch, index: int, rec: LogIn) -> None:
    name = events.event_name(rec.body, rec.event_name, rec.attributes)
    runtime, event = events.runtime_of(name, rec.resource)
    kind = events.kind_of(runtime, event, rec.attributes)
    fields = events.fields_of(kind, rec.attributes)
    session_id = events.session_of(rec.attributes)
    time = events.iso_time(rec.time_unix_nano or rec.observed_time_unix_nano or time_ns())
    data: dict[str, Any] = {
        "kind": kind,
        "runtime": runtime,
        "event": name,
        "session_id": session_id,
        "time": time,
        **fields,
        "attributes": rec.attributes,
        "resource": rec.resource.summary,
    }
    prompt_id = rec.attributes.get("prompt.id")
    if isinstance(prompt_id, str):
        data["prompt_id"] = prompt_id
    trace_id = events.hex_id(rec.trace_id, 16, "trace_id")
    span_id = events.hex_id(rec.span_id, 8, "span_id")
    if trace_id:
        data["trace_id"] = trace_id
    if span_id:
        data["span_id"] = span_id
    if rec.body is not None and rec.body != name:
        data["body"] = rec.body
    if rec.severity_text:
        data["severity"] = rec.severity_text
    batch.entry(kind, session_id, time, name, data)
    batch.add(session_id, runtime, time, _counted(kind, fields), fields.get("model"))


def log_batch(records: Sequence[LogIn]) -> _Batch:
    batch = _Batch()
    for i, rec in enumerate(records):
        try:
            _log_record(batch, i, rec)
        except BadRecord as exc:
            batch.refuse(f"log record {i}", exc)
    return batch


async def ingest_logs(store: Store, workspace: str, records: Sequence[LogIn]) -> Accepted:
    batch = log_batch(records)
    if batch.entries:
        await store.write(lambda tx: batch.write(tx, workspace))
    return batch.outcome()


# ------------------------------------------------------------------ metrics


def _stream_key(p: PointIn) -> str:
    ident = orjson.dumps([p.name, p.resource.attributes, p.attributes], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(ident).hexdigest()[:40]


def _column(p: PointIn) -> str | None:
    found = _METRIC_COLUMNS.get(p.name)
    if found is None or isinstance(found, str):
        return found
    attribute, columns = found
    return columns.get(str(p.attributes.get(attribute, "")))


_MAX_NANO = 2**63 - 1


def _clamped(unix_nano: int) -> int:
    """A fixed64 time as the BIGINT column holds it."""
    return min(unix_nano, _MAX_NANO)


def _growth(p: PointIn, before: tuple[int, int, float] | None) -> float | None:
    """What a cumulative point adds: its value for a new stream (or a new
    start time: the stream restarted), its growth since the stream's last
    point, None for a point no later than that one (a resend)."""
    if before is None:
        return p.value
    start, time, value = before
    if _clamped(p.start_time_unix_nano) != start:
        return p.value if _clamped(p.start_time_unix_nano) > start else None
    if _clamped(p.time_unix_nano) <= time or p.value is None:
        return None
    grown = p.value - value
    return grown if grown >= 0 or not p.monotonic else p.value


def _metric_data(p: PointIn, runtime: str, session_id: str | None, time: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": METRIC,
        "runtime": runtime,
        "event": p.name,
        "session_id": session_id,
        "time": time,
        "name": p.name,
        "type": p.type,
        "temporality": p.temporality,
        "monotonic": p.monotonic,
        "unit": p.unit,
        "attributes": p.attributes,
        "resource": p.resource.summary,
    }
    if p.value is not None:
        data["value"] = p.value
    if p.stats:
        data.update(p.stats)
    return data


async def ingest_metrics(store: Store, workspace: str, points: Sequence[PointIn]) -> Accepted:
    if not points:
        return Accepted(0)

    def op(tx: Tx) -> Accepted:
        batch = _Batch()
        keys = [_stream_key(p) if p.type == SUM and p.temporality == CUMULATIVE else "" for p in points]
        last = q.stream_points(tx, workspace, sorted({k for k in keys if k}))
        seen: dict[str, tuple[int, int, float]] = {}
        for i, (p, key) in enumerate(zip(points, keys, strict=True)):
            try:
                runtime, _ = events.runtime_of(p.name, p.resource)
                session_id = events.session_of(p.attributes) or events.session_of(p.resource.attributes)
                time = events.iso_time(p.time_unix_nano)
                data = _metric_data(p, runtime, session_id, time)
                added: dict[str, float] = {"records": 1}
                if p.type == SUM and p.value is not None:
                    delta = _growth(p, seen.get(key) or last.get(key)) if key else p.value
                    if key and delta is not None:
                        seen[key] = (_clamped(p.start_time_unix_nano), _clamped(p.time_unix_nano), p.value)
                    data["delta"] = delta or 0.0
                    column = _column(p)
                    if column is not None and delta:
                        added[column] = delta
                batch.entry(METRIC, session_id, time, p.name, data)
                batch.add(session_id, runtime, time, added)
            except BadRecord as exc:
                batch.refuse(f"data point {i}", exc)
        if batch.entries:
            batch.write(tx, workspace)
            q.save_streams(tx, workspace, seen)
        return batch.outcome()

    return await store.write(op)


# -------------------------------------------------------------------- spans


def _span(batch: _Batch, s: SpanIn) -> None:
    trace_id = events.hex_id(s.trace_id, 16, "trace_id")
    span_id = events.hex_id(s.span_id, 8, "span_id")
    if trace_id is None or span_id is None:
        raise BadRecord("a span needs a trace_id (16 bytes) and a span_id (8 bytes)")
    parent = events.hex_id(s.parent_span_id, 8, "parent_span_id")
    runtime, _ = events.runtime_of(s.name, s.resource)
    session_id = events.session_of(s.attributes) or events.session_of(s.resource.attributes)
    time = events.iso_time(s.start_time_unix_nano)
    data = {
        "kind": SPAN,
        "runtime": runtime,
        "event": s.name,
        "session_id": session_id,
        "time": time,
        "name": s.name,
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "span_kind": s.kind,
        "start": time,
        "end": events.iso_time(s.end_time_unix_nano),
        "status": s.status,
        "events": s.events,
        "attributes": s.attributes,
        "resource": s.resource.summary,
    }
    batch.entry(SPAN, session_id, time, s.name, data)
    batch.add(session_id, runtime, time, {"records": 1})


async def ingest_spans(store: Store, workspace: str, spans: Sequence[SpanIn]) -> Accepted:
    batch = _Batch()
    for i, s in enumerate(spans):
        try:
            _span(batch, s)
        except BadRecord as exc:
            batch.refuse(f"span {i}", exc)
    if batch.entries:
        await store.write(lambda tx: batch.write(tx, workspace))
    return batch.outcome()
