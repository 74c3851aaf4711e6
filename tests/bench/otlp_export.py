"""The `otlp-export` bench scenario (issue 17): the OTLP exporter against a
local gRPC TraceService receiver (another process, counting distinct span ids).

1. **Ingest with the exporter off, then on**, back to back, each on a fresh
   database: `runtime-events` (single-event POSTs of `post_tool` events, each
   one a span), `total` events over `concurrency` connections. Every span
   must reach the receiver. Server CPU per event is the server process's;
   the exporter's own process is reported apart.
2. **Exporter throughput**: a backlog of Trenchcoat batches (tool results
   and assistant stops become spans) written with the exporter off; then the
   server starts again on that database with the exporter on, and the rate
   is the backlog's spans over the time from the first span received to the
   last, with the exporter process's CPU per span.

    python -m tests.bench.run --scenario otlp-export --runs 3
    python -m tests.bench.otlp_export [runs]        # this scenario alone, without run.py's server
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from concurrent import futures
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.bench.trenchcoat import trenchcoat_events

if TYPE_CHECKING:  # run.py imports this module to register the scenario
    from tests.bench.run import Figures, ServerProcess

BACKLOG_BATCHES = 100  # of 1,000 Trenchcoat events: ~55,000 spans


class _Counting(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(
        self, distinct: Synchronized[int], last: Synchronized[float], first: Synchronized[float]
    ) -> None:
        self.ids: set[bytes] = set()
        self.distinct, self.last, self.first = distinct, last, first

    def Export(self, request: Any, context: Any) -> Any:
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                self.ids.update(span.span_id for span in ss.spans)
        now = time.monotonic()
        if not self.first.value:
            self.first.value = now
        self.last.value = now
        self.distinct.value = len(self.ids)
        return trace_service_pb2.ExportTraceServiceResponse()


def _receive(port: int, distinct: Any, last: Any, first: Any, reset: Any) -> None:
    servicer = _Counting(distinct, last, first)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    while True:
        reset.wait()
        servicer.ids.clear()
        distinct.value, last.value, first.value = 0, 0.0, 0.0
        reset.clear()


class Receiver:
    def __init__(self) -> None:
        from tests.bench.run import free_port

        self.port = free_port()
        ctx = multiprocessing.get_context("spawn")
        self.distinct, self.last, self.first = ctx.Value("q", 0), ctx.Value("d", 0.0), ctx.Value("d", 0.0)
        self._reset = ctx.Event()
        self._proc = ctx.Process(
            target=_receive, args=(self.port, self.distinct, self.last, self.first, self._reset), daemon=True
        )
        self._proc.start()

    def reset(self) -> None:
        self._reset.set()
        while self._reset.is_set():
            time.sleep(0.01)

    def wait_for(self, spans: int, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while self.distinct.value < spans:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.distinct.value} of {spans} spans arrived")
            time.sleep(0.05)

    def close(self) -> None:
        self._proc.kill()


def _children_cpu(pid: int) -> float:
    """CPU seconds of the server's child processes (the exporter), while they run."""
    total = 0.0
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _exporting(endpoint: str) -> dict[str, str]:
    return {
        "AGENTPLANE_OTLP_EXPORT_ENDPOINT": endpoint,
        "AGENTPLANE_OTLP_EXPORT_PROTOCOL": os.environ.get("BENCH_OTLP_PROTOCOL", "grpc"),
    }


def otlp_export(_srv: ServerProcess, total: int, concurrency: int) -> Figures:
    from tests.bench.run import Figures, runtime_events, server_process

    receiver = Receiver()
    endpoint = f"http://127.0.0.1:{receiver.port}"
    try:
        ingest: dict[str, Figures] = {}
        for mode in ("off", "on"):
            with (
                tempfile.TemporaryDirectory() as tmp,
                server_process(Path(tmp), env=_exporting(endpoint) if mode == "on" else None) as srv,
            ):
                cpu0 = _children_cpu(srv.pid)
                ingest[mode] = runtime_events(srv, total, concurrency, prefix=f"otlp-{mode}")
                if mode == "on":
                    receiver.wait_for(total)
                    print(
                        f"    exporter process during ingest and catch-up: "
                        f"{(_children_cpu(srv.pid) - cpu0) / total * 1e6:.0f} µs/span"
                    )
        off, on = ingest["off"], ingest["on"]
        print(
            f"    ingest (runtime-events) exporter off: {off.rate:,.0f} events/s, {off.cpu_us:.0f} µs/event; "
            f"on: {on.rate:,.0f} events/s, {on.cpu_us:.0f} µs/event: {on.rate / off.rate:.0%} of off"
        )
        receiver.reset()
        with tempfile.TemporaryDirectory() as tmp:
            with server_process(Path(tmp)) as srv:
                trenchcoat_events(srv, BACKLOG_BATCHES, 4)
            import sqlite3

            with sqlite3.connect(Path(tmp) / "bench.db") as conn:
                spans = conn.execute(
                    "SELECT count(*) FROM log_entries WHERE type = 'trenchcoat.event' "
                    "AND name IN ('tool_result', 'assistant_stop')"
                ).fetchone()[0]
            with server_process(Path(tmp), env=_exporting(endpoint)) as srv:
                cpu0 = _children_cpu(srv.pid)
                receiver.wait_for(spans)
                cpu = _children_cpu(srv.pid) - cpu0
                seconds = receiver.last.value - receiver.first.value
        rate = spans / seconds
        print(
            f"    exporter throughput: {spans:,} spans in {seconds:.2f} s, exporter CPU {cpu / spans * 1e6:.1f} µs/span"
        )
        return Figures(rate, 0.0, 0.0, "spans/s", cpu / spans * 1e6)
    finally:
        receiver.close()


if __name__ == "__main__":
    import sys

    for i in range(int(sys.argv[1]) if len(sys.argv) > 1 else 1):
        fig = otlp_export(None, 20_000, 16)  # type: ignore[arg-type]
        print(f"run {i + 1}: exporter {fig.rate:,.0f} spans/s, {fig.cpu_us:.1f} µs/span")
