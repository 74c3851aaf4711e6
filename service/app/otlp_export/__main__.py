"""The exporter's process: `python -m service.app.otlp_export`, started by
`agentplane serve` (process.py) with its settings in the environment.

It runs at a lower CPU priority than the server (nice 10), so on a busy
machine ingest keeps its speed and the export falls behind (lag) instead;
it exits on SIGTERM or SIGINT, and when the server that started it is gone."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading

from service.app.otlp_export.exporter import Exporter, target_of
from service.app.otlp_export.transport import sender_for
from service.base.config import Settings
from service.store.database import create_engines

log = logging.getLogger("agentplane.otlp_export")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    if not settings.otlp_export_endpoint:
        log.error("no AGENTPLANE_OTLP_EXPORT_ENDPOINT: nothing to export to")
        return 2
    with contextlib.suppress(OSError):
        os.nice(10)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    parent = os.getppid()

    def watch_parent() -> None:
        while not stop.wait(1.0):
            if os.getppid() != parent:
                log.warning("the server is gone: stopping")
                stop.set()

    threading.Thread(target=watch_parent, daemon=True).start()
    sender = sender_for(
        settings.otlp_export_protocol,
        settings.otlp_export_endpoint,
        settings.otlp_export_headers,
        settings.otlp_export_timeout_seconds,
    )
    engines = create_engines(settings.database_url)
    try:
        Exporter(
            engines,
            sender,
            target_of(settings),
            batch_size=settings.otlp_export_batch_size,
            content=settings.otlp_export_content,
            poll_seconds=settings.otlp_export_interval_seconds,
            stop=stop,
        ).run()
    finally:
        engines.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
