"""The export loop: read what maps to spans after the cursor, send it, and
move the cursor on only once the backend has acknowledged it.

- **At least once.** The cursor is saved after the backend answered, at
  most once a second (and when the log is idle, and on the way out), so a
  crash resends at most that second's spans; their ids are derived from the
  entries, so the backend keeps one copy.
- **Bounded.** One batch (`batch_size` entries) in memory and in flight.
- **Retry.** A retryable failure is tried again, for as long as it takes,
  after `Retry-After` / RetryInfo when the backend gave one, else after an
  exponential backoff (0.5 s doubling to 30 s), each wait drawn between half
  and all of it: a dead
  backend shows as lag, never as lost spans. A refusal (a 4xx other than
  429, a gRPC INVALID_ARGUMENT...) is logged and the batch skipped, counted
  in `batches_skipped`: it would be refused again.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from sqlalchemy import Connection

from service.app.otlp_export.otlp_messages import RequestBuilder
from service.app.otlp_export.transport import Answer, Sender
from service.base.config import Settings
from service.domain.otlp_export.genai_spans import exported_kinds, span_of
from service.store.database import Engines
from service.store.otlp_export import cursors
from service.store.otlp_export.cursors import ExportCursor
from service.store.retention import usage

log = logging.getLogger("agentplane.otlp_export")

BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0
# The longest wait a backend's Retry-After may ask for.
RETRY_AFTER_MAX = 300.0
SAVE_EVERY_SECONDS = 1.0

T = TypeVar("T")


def target_of(settings: Settings) -> str:
    """The cursor's key: a new protocol or endpoint is a new backend."""
    return f"{settings.otlp_export_protocol} {settings.otlp_export_endpoint}"


class Exporter:
    def __init__(
        self,
        engines: Engines,
        sender: Sender,
        target: str,
        *,
        batch_size: int = 1000,
        content: bool = False,
        poll_seconds: float = 0.5,
        stop: threading.Event | None = None,
    ) -> None:
        self.engines = engines
        self.sender = sender
        self.target = target
        self.batch_size = batch_size
        self.content = content
        self.poll = poll_seconds
        self.stop = stop or threading.Event()
        self.kinds = exported_kinds()
        self.cursor = ExportCursor(target)
        self._saved_at = 0.0
        self._dirty = False
        # Per workspace, the retention horizon already reported as a gap.
        self._gaps: dict[str, int] = {}

    def _read(self, fn: Callable[[Connection], T]) -> T:
        with self.engines.read.connect() as conn, conn.begin():
            return fn(conn)

    def _save(self) -> None:
        with self.engines.write.connect() as conn:
            if conn.dialect.name == "sqlite":
                # The cursor may lag a crash by a moment (spans are resent, same
                # ids): no fsync of its own to hold up the server's writer.
                conn.connection.driver_connection.execute("PRAGMA synchronous=NORMAL")  # type: ignore[union-attr]
            with conn.begin():
                cursors.save(conn, self.cursor)
        self._saved_at, self._dirty = time.monotonic(), False

    def run(self) -> None:
        found = self._read(lambda conn: cursors.load(conn, self.target))
        if found is not None:
            self.cursor = found
        log.info("exporting GenAI spans to %s from log position %d", self.target, self.cursor.seq)
        try:
            while not self.stop.is_set():
                if not self.step():
                    if self._dirty:
                        self._save()
                    self.stop.wait(self.poll)
        finally:
            if self._dirty:
                self._save()
            self.sender.close()

    def step(self) -> bool:
        """Export one batch; False when there was nothing new (or on stop)."""

        def read(conn: Connection) -> tuple[list[cursors.ExportRow], int, list[tuple[str, int]]]:
            rows, upto = cursors.read_exportable(conn, self.cursor.seq, self.kinds, self.batch_size)
            # After the page, in its snapshot: a retention pass committed before it is seen.
            return rows, upto, usage.horizons_past(conn, self.cursor.seq)

        rows, upto, removed = self._read(read)
        for workspace, through in removed:
            # Retention removed entries this backend never got: say so once, never skip silently.
            if self._gaps.get(workspace, 0) < through:
                self._gaps[workspace] = through
                self.cursor.retention_gaps += 1
                log.error(
                    "retention removed workspace %r's log entries up to seq %d before they were exported "
                    "(export cursor %d): those spans are lost to this backend",
                    workspace,
                    through,
                    self.cursor.seq,
                )
        if upto <= self.cursor.seq:
            return False
        batch = RequestBuilder(content=self.content)
        for row in rows:
            span = span_of(row.type, row.name, row.event_id, orjson.loads(row.data))
            if span is not None:
                batch.add(row.workspace, span)
        spans = batch.count
        if spans:
            answer = self._deliver(batch.request)
            if answer is None:
                return False  # stopping: this batch was not acknowledged
            if answer.outcome == "delivered":
                self.cursor.spans_exported += spans - answer.rejected
                self.cursor.spans_rejected += answer.rejected
                if answer.rejected:
                    log.warning("backend rejected %d of %d spans: %s", answer.rejected, spans, answer.detail)
            else:
                self.cursor.batches_skipped += 1
                self.cursor.spans_rejected += spans
                log.error(
                    "backend refused a batch of %d spans (log %d..%d), skipped: %s",
                    spans,
                    rows[0].seq,
                    rows[-1].seq,
                    answer.detail,
                )
        self.cursor.seq = upto
        self._dirty = True
        if time.monotonic() - self._saved_at >= SAVE_EVERY_SECONDS:
            self._save()
        return True

    def _deliver(self, request: ExportTraceServiceRequest) -> Answer | None:
        """Send until the backend answers for good; None if told to stop first."""
        attempt = 0
        while True:
            answer = self.sender.send(request)
            if answer.outcome != "retry":
                return answer
            self.cursor.retries += 1
            if answer.retry_after is not None:
                delay = min(answer.retry_after, RETRY_AFTER_MAX)
            else:
                ceiling = min(BACKOFF_MAX, BACKOFF_FIRST * 2**attempt)
                delay = random.uniform(ceiling / 2, ceiling)
            attempt += 1
            log.warning("export failed (%s), retry %d in %.2f s", answer.detail, attempt, delay)
            if self.stop.wait(delay):
                return None
