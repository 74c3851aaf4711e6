"""Runs the exporter beside the server, and tells /metrics how far behind it is.

The exporter is a child process (`python -m service.app.otlp_export`):
encoding spans costs CPU, and on the server's event loop it would take it
from ingest; in its own process, at a lower priority, it uses the other
core when there is one and yields when there is not, so a slow or dead
backend, or a busy machine, shows as lag and never as write latency. It
reads the log and saves its cursor through the database, like a replica
would. A child that exits on its own is started again after a pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from dataclasses import dataclass

from service.app.otlp_export.exporter import target_of
from service.app.otlp_export.transport import PROTOCOLS, parse_headers
from service.base.config import Settings
from service.store.otlp_export import cursors
from service.store.store import Store

log = logging.getLogger("agentplane.otlp_export")

RESTART_SECONDS = 2.0
STOP_SECONDS = 5.0


@dataclass(frozen=True)
class ExportStatus:
    """What /metrics shows of the exporter (all counts since the target's first export)."""

    target: str
    running: bool
    # The log's head, and the last position the backend acknowledged.
    head: int
    cursor: int
    spans_exported: int
    spans_rejected: int
    batches_skipped: int
    retries: int
    retention_gaps: int

    @property
    def lag(self) -> int:
        """Log positions not yet exported (head - cursor; `seq` may skip numbers on PostgreSQL)."""
        return max(0, self.head - self.cursor)

    def figures(self) -> list[tuple[str, str, str, float]]:
        """(Prometheus name, help, `gauge` or `counter`, value) for /metrics,
        which makes its metric families from them (no label but none needed:
        one exporter per server)."""
        return [
            ("agentplane_otlp_export_up", "1 while the exporter process runs", "gauge", float(self.running)),
            (
                "agentplane_otlp_export_lag_entries",
                "Log positions after the exporter's cursor (log head minus cursor)",
                "gauge",
                self.lag,
            ),
            ("agentplane_otlp_export_cursor_seq", "The last log position exported", "gauge", self.cursor),
            ("agentplane_otlp_export_spans", "Spans the backend accepted", "counter", self.spans_exported),
            (
                "agentplane_otlp_export_spans_rejected",
                "Spans the backend rejected (partial_success, or a refused batch)",
                "counter",
                self.spans_rejected,
            ),
            (
                "agentplane_otlp_export_batches_skipped",
                "Batches dropped after a non-retryable answer",
                "counter",
                self.batches_skipped,
            ),
            (
                "agentplane_otlp_export_retries",
                "Export attempts that failed and were retried",
                "counter",
                self.retries,
            ),
            (
                "agentplane_otlp_export_retention_gaps",
                "Times retention removed a workspace's entries before they were exported",
                "counter",
                self.retention_gaps,
            ),
        ]


def check_settings(settings: Settings) -> None:
    """ValueError naming what is wrong with the export settings (at start-up)."""
    if not settings.otlp_export_endpoint:
        return
    if settings.otlp_export_protocol not in PROTOCOLS:
        raise ValueError(
            f"AGENTPLANE_OTLP_EXPORT_PROTOCOL: {settings.otlp_export_protocol!r} "
            f"is not one of {', '.join(PROTOCOLS)}"
        )
    parse_headers(settings.otlp_export_headers)


class ExportProcess:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.enabled = bool(settings.otlp_export_endpoint)
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def _environment(self) -> dict[str, str]:
        s = self.settings
        return {
            **os.environ,
            "AGENTPLANE_DATABASE_URL": s.database_url,
            "AGENTPLANE_OTLP_EXPORT_ENDPOINT": s.otlp_export_endpoint,
            "AGENTPLANE_OTLP_EXPORT_PROTOCOL": s.otlp_export_protocol,
            "AGENTPLANE_OTLP_EXPORT_HEADERS": s.otlp_export_headers,
            "AGENTPLANE_OTLP_EXPORT_CONTENT": "1" if s.otlp_export_content else "0",
            "AGENTPLANE_OTLP_EXPORT_BATCH_SIZE": str(s.otlp_export_batch_size),
            "AGENTPLANE_OTLP_EXPORT_TIMEOUT_SECONDS": str(s.otlp_export_timeout_seconds),
            "AGENTPLANE_OTLP_EXPORT_INTERVAL_SECONDS": str(s.otlp_export_interval_seconds),
        }

    async def _spawn(self) -> asyncio.subprocess.Process:
        # A session of its own: a Ctrl-C in the terminal reaches the server,
        # which stops the exporter itself (else it would see it exit and restart it).
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service.app.otlp_export", env=self._environment(), start_new_session=True
        )

    async def start(self) -> None:
        """Start the exporter (before the gRPC server, whose threads a fork would find)."""
        if self.enabled and self._task is None:
            self._proc = await self._spawn()
            self._task = asyncio.create_task(self._supervise(), name="otlp-export")

    async def _supervise(self) -> None:
        while self._proc is not None:
            code = await self._proc.wait()
            if self._stopping:
                return
            log.warning("the exporter exited (status %s); starting it again in %.0f s", code, RESTART_SECONDS)
            await asyncio.sleep(RESTART_SECONDS)
            self._proc = await self._spawn()

    async def stop(self) -> None:
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), STOP_SECONDS)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def status(self) -> ExportStatus | None:
        """The exporter's progress, None when export is off. One small read."""
        if not self.enabled:
            return None
        target = target_of(self.settings)
        found = await self.store.read(lambda conn: cursors.load(conn, target))
        cursor = found or cursors.ExportCursor(target)
        return ExportStatus(
            target=target,
            running=self._proc is not None and self._proc.returncode is None,
            head=self.store.notifier.head,
            cursor=cursor.seq,
            spans_exported=cursor.spans_exported,
            spans_rejected=cursor.spans_rejected,
            batches_skipped=cursor.batches_skipped,
            retries=cursor.retries,
            retention_gaps=cursor.retention_gaps,
        )
