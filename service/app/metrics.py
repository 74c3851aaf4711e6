"""`GET /metrics`: the server's measurements in the Prometheus text format.

The counters and histograms are kept by the layers that see the work
(service.base.metrics); the gauges are read here when scraped: the writer's
queue, the log's head, bytes of requests in flight, open streams, the hooks'
spool backlogs as last reported, and the AGH task queue (one small read). A feature with figures of its own adds a hook
(`MetricsPage.hooks`): an async function returning metric families, e.g. the
OTLP exporter's lag. With API keys on, a scrape needs the `read:metrics` scope.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from service.base import metrics
from service.domain.agh import leases
from service.rpc.admission import ByteBudget
from service.rpc.auth import Auth
from service.store.store import Store

READ_METRICS = "read:metrics"


Hook = Callable[[], Awaitable[Iterable[Metric]]]


class Figures(Protocol):
    def figures(self) -> list[tuple[str, str, str, float]]:
        """(name, help, "gauge" | "counter", value), no labels."""
        ...


def figures_hook(read: Callable[[], Awaitable[Figures | None]]) -> Hook:
    """A hook from a feature that reports plain figures (None: nothing to report),
    such as the OTLP exporter's status."""

    async def hook() -> list[Metric]:
        found = await read()
        if found is None:
            return []
        return [
            (GaugeMetricFamily if kind == "gauge" else CounterMetricFamily)(name, doc, value=value)
            for name, doc, kind, value in found.figures()
        ]

    return hook


def _histogram(
    name: str, doc: str, labels: list[str], series: Iterable[tuple[tuple[str, ...], metrics.Histogram]]
) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for values, h in series:
        family.add_metric(list(values), buckets=h.cumulative(), sum_value=h.sum)
    return family


def _counter(name: str, doc: str, labels: list[str], series: Iterable[tuple[tuple[str, ...], int]]) -> Metric:
    family = CounterMetricFamily(name, doc, labels=labels)
    for values, count in series:
        family.add_metric(list(values), count)
    return family


def _gauge(name: str, doc: str, value: float, labels: list[str] | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    if labels is None:
        family.add_metric([], value)
    return family


def counted() -> list[Metric]:
    """What the layers counted since the process started (copied first: a scrape never sees a half update)."""
    m = metrics
    return [
        _counter(
            "agentplane_http_requests",
            "HTTP requests answered, by route family, route template, method and status",
            ["family", "route", "method", "code"],
            list(m.http_requests.items()),
        ),
        _histogram(
            "agentplane_http_request_duration_seconds",
            "Seconds from an HTTP request's arrival to the end of its answer",
            ["family", "route"],
            list(m.http_seconds.items()),
        ),
        _counter(
            "agentplane_rpc_requests",
            "RPCs ended (over gRPC or from the HTTP gateway), by RPC and gRPC status code",
            ["rpc", "code"],
            list(m.rpc_calls.items()),
        ),
        _histogram(
            "agentplane_rpc_duration_seconds",
            "Seconds a unary RPC took in the call chain (auth to answer)",
            ["rpc"],
            [((rpc,), h) for rpc, h in list(m.rpc_seconds.items())],
        ),
        _histogram(
            "agentplane_writer_batch_operations",
            "Write operations per group commit",
            [],
            [((), m.writer_batch)],
        ),
        _histogram(
            "agentplane_writer_commit_seconds",
            "Seconds per group commit, from taking the batch to the commit's end (fsync included)",
            [],
            [((), m.writer_commit_seconds)],
        ),
        _counter(
            "agentplane_writer_failures",
            "Group commits that failed, by cause; their writes were refused (503 / UNAVAILABLE)",
            ["reason"],
            [((reason,), n) for reason, n in list(m.writer_failures.items())],
        ),
    ]


class MetricsPage:
    def __init__(self, store: Store, auth: Auth, budget: ByteBudget) -> None:
        self.store = store
        self.auth = auth
        self.budget = budget
        # More figures, read at each scrape (see the module's doc).
        self.hooks: list[Hook] = []

    async def render(self, metadata: Mapping[str, str]) -> bytes:
        """The page; a DomainError (401/403/429) for a caller it is not for."""
        await self.auth.authorize(metadata, READ_METRICS, "GET /metrics")
        queue = await leases.queue_figures(self.store)
        extra = [family for hook in self.hooks for family in await hook()]
        # What the process counted, taken at once after the awaits: one moment's figures.
        found = counted() + self.gauges(queue) + extra
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Families(found))
        return generate_latest(registry)

    def gauges(self, queue: tuple[int, int, int]) -> list[Metric]:
        queued, leased, expired = queue
        runs = GaugeMetricFamily(
            "agentplane_agh_task_runs",
            "AGH task runs now: queued, leased (lease running) and expired (held past their lease)",
            labels=["state"],
        )
        for state, n in (("queued", queued), ("leased", leased), ("expired", expired)):
            runs.add_metric([state], n)
        streams = GaugeMetricFamily(
            "agentplane_open_streams",
            "Streams open now: grpc (stream RPCs, NDJSON routes, the feeds of WebSockets), websocket, "
            "and follower_process (log followers served by the follower process)",
            labels=["kind"],
        )
        for kind in ("grpc", "websocket", metrics.FOLLOWER_PROCESS):
            streams.add_metric([kind], metrics.open_streams[kind])
        spools = GaugeMetricFamily(
            "agentplane_hook_spool_backlog",
            "Plans waiting in a hook adapter's spool, as a hook of this runtime last reported",
            labels=["runtime"],
        )
        reported = GaugeMetricFamily(
            "agentplane_hook_spool_report_timestamp_seconds",
            "Unix time of the last spool report of a hook of this runtime",
            labels=["runtime"],
        )
        for runtime, (entries, at) in sorted(metrics.hook_spools.items()):
            spools.add_metric([runtime], entries)
            reported.add_metric([runtime], at)
        return [
            _gauge(
                "agentplane_log_head_seq",
                "The last seq appended to the log (strictly increasing, not dense)",
                self.store.notifier.head,
            ),
            _gauge(
                "agentplane_writer_queue_depth",
                "Write operations waiting for the group-commit writer",
                self.store.writer.depth(),
            ),
            _gauge(
                "agentplane_inflight_request_bytes",
                "Bytes of request bodies admitted and not yet answered",
                self.budget.in_flight,
            ),
            runs,
            streams,
            spools,
            reported,
        ]


class _Families:
    """The metric families of one scrape, as prometheus_client's renderer reads a collector."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)
