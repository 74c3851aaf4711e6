"""The server's own measurements, for `GET /metrics` (Prometheus text format).

Every layer counts here (the gateway its HTTP requests, the call chain its
RPCs, the writer its batches) and a scrape renders it all. On the hot path a
count is a dict update and a histogram a bisect and two additions: plain
Python numbers, no locks. Each process serves its requests on one event loop
and the writer's thread records nothing, so nothing is updated from two
threads. Labels are closed sets: families, route templates (never a raw
path), RPC names and status codes.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable

# Seconds: from a cached read (~1 ms) to a long-poll (tens of seconds).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Operations in one group commit (the writer takes at most 512).
BATCH_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0)


class Histogram:
    """Counts per bucket (not cumulative: Prometheus's are summed at render) and the sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, count of values at most le) for each bound and +Inf."""
        out, total = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), total))
        return out


def _latency() -> Histogram:
    return Histogram(LATENCY_BUCKETS)


# (family, route template, method, HTTP status) -> requests answered.
http_requests: defaultdict[tuple[str, str, str, str], int] = defaultdict(int)
# (family, route template) -> seconds from the request to its answer's end.
http_seconds: defaultdict[tuple[str, str], Histogram] = defaultdict(_latency)
# (RPC full name, gRPC code name) -> calls ended, over gRPC or in process.
rpc_calls: defaultdict[tuple[str, str], int] = defaultdict(int)
# RPC full name -> seconds of unary calls (streams last as long as their client).
rpc_seconds: defaultdict[str, Histogram] = defaultdict(_latency)
# The group-commit writer: operations per commit, seconds per commit (the fsync included).
writer_batch = Histogram(BATCH_BUCKETS)
writer_commit_seconds = _latency()
# Commits that failed (full disk, database away): their operations were refused.
writer_failures: defaultdict[str, int] = defaultdict(int)
# Streams open now, by kind: "grpc" (server or bidirectional streams, also the
# gateway's NDJSON routes and the feeds behind WebSockets), "websocket", and
# FOLLOWER_PROCESS (log followers handed to the follower process, as it reports).
FOLLOWER_PROCESS = "follower_process"
open_streams: defaultdict[str, int] = defaultdict(int)
# The hook adapters' spools, as last reported (service.rpc.hook_spool): runtime
# -> (plans waiting on the machine that reported, Unix time of the report).
hook_spools: dict[str, tuple[int, float]] = {}


def count_rpc(rpc: str, code: str, seconds: float | None) -> None:
    rpc_calls[rpc, code] += 1
    if seconds is not None:
        rpc_seconds[rpc].observe(seconds)


def count_http(family: str, route: str, method: str, status: int, seconds: float) -> None:
    http_requests[family, route, method, str(status)] += 1
    http_seconds[family, route].observe(seconds)


def count_commit(operations: int, seconds: float) -> None:
    writer_batch.observe(operations)
    writer_commit_seconds.observe(seconds)


# A gauge read at scrape time: (name, help, labels, reader). The reader returns
# a number, or (label values, number) pairs; None leaves the gauge out.
GaugeReader = Callable[[], float | Iterable[tuple[tuple[str, ...], float]] | None]
