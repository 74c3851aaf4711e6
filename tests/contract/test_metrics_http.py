"""GET /metrics: the Prometheus text format, parsed with prometheus_client's
own parser after real traffic over HTTP and gRPC, on both backends; the
hooks' spool reports; and the `read:metrics` scope when API keys are on.
(The hook process itself reporting its spool: tests/e2e/test_hooks.py.)"""

from __future__ import annotations

import asyncio
import time

import grpc
import httpx
from agentplane.v1 import log_pb2, log_pb2_grpc, runtime_pb2, runtime_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from gateway.app import create_app
from service.app.assembly import Core
from service.base.config import Settings
from tests.agh_support import claimed, create_task, start_session
from tests.auth_support import make_key, with_keys
from tests.conftest import TEST_HOST, Server


async def scrape(http: httpx.AsyncClient, headers: dict[str, str] | None = None) -> dict[str, list[Sample]]:
    resp = await http.get("/metrics", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {f.name: f.samples for f in text_string_to_metric_families(resp.text)}


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sample `name` whose labels include `labels` (0 when there is none)."""
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) <= 1, found
    return found[0] if found else 0.0


EVENT = {
    "event_type": "post_tool",
    "session_id": "m1",
    "session_name": "s",
    "timestamp": "2026-01-01T00:00:00Z",
}
EVENTS_ROUTE = {"family": "agent-runtime", "route": "/sessions/{session_id}/events", "method": "POST"}
ADD_EVENT = "agentplane.v1.EventService.AddSessionEvent"
WATCH = "agentplane.v1.LogService.WatchLog"


async def test_metrics_count_real_traffic(server: Server) -> None:
    before = await scrape(server.http)
    await start_session(server.http, "m1")
    for _ in range(3):
        assert (await server.http.post("/sessions/m1/events", json=EVENT)).status_code == 200
    bad = await server.http.post("/sessions/m1/events", json={"event_type": "post_tool"})
    assert bad.status_code == 400
    assert (await server.http.get("/no/such/route/at/all")).status_code == 404
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        stub = runtime_pb2_grpc.EventServiceStub(channel)
        request = runtime_pb2.AddSessionEventRequest(session_id="m1")
        request.event.event_type, request.event.session_name = "post_tool", "s"
        request.event.session_id = "m1"
        request.event.timestamp = "2026-01-01T00:00:01Z"
        await stub.AddSessionEvent(request)
    # The AGH queue: one task claimed (leased), one waiting.
    await create_task(server.http, "first")
    await claimed(server.http, "m1")
    await create_task(server.http, "second")

    after = await scrape(server.http)

    def grew(metric: str, name: str, **labels: str) -> float:
        return value(after[metric], name, **labels) - value(before.get(metric, []), name, **labels)

    requests = "agentplane_http_requests"
    assert grew(requests, f"{requests}_total", code="200", **EVENTS_ROUTE) == 3
    assert grew(requests, f"{requests}_total", code="400", **EVENTS_ROUTE) == 1
    # An unknown path is one label value, never the raw path.
    assert grew(requests, f"{requests}_total", route="(other)", code="404") == 1
    assert not [s for s in after[requests] if "no/such" in s.labels["route"]]
    latency = "agentplane_http_request_duration_seconds"
    labels = {k: v for k, v in EVENTS_ROUTE.items() if k != "method"}
    assert grew(latency, f"{latency}_count", **labels) == 4
    assert grew(latency, f"{latency}_bucket", le="+Inf", **labels) == 4
    # RPCs count both transports: 3 + 1 over HTTP, 1 over gRPC.
    rpcs = "agentplane_rpc_requests"
    assert grew(rpcs, f"{rpcs}_total", rpc=ADD_EVENT, code="OK") == 4
    assert grew(rpcs, f"{rpcs}_total", rpc=ADD_EVENT, code="INVALID_ARGUMENT") == 1
    batch = "agentplane_writer_batch_operations"
    assert grew(batch, f"{batch}_sum") >= 4 + 1 + 3  # events, session, tasks and the claim
    assert grew("agentplane_writer_commit_seconds", "agentplane_writer_commit_seconds_count") >= 1
    head = value(after["agentplane_log_head_seq"], "agentplane_log_head_seq")
    assert head >= value(before["agentplane_log_head_seq"], "agentplane_log_head_seq") + 8
    runs = after["agentplane_agh_task_runs"]
    assert value(runs, "agentplane_agh_task_runs", state="queued") == 1
    assert value(runs, "agentplane_agh_task_runs", state="leased") == 1
    assert value(runs, "agentplane_agh_task_runs", state="expired") == 0
    assert value(after["agentplane_writer_queue_depth"], "agentplane_writer_queue_depth") == 0


async def test_open_streams_are_counted(server: Server) -> None:
    before = await scrape(server.http)
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        watch = log_pb2_grpc.LogServiceStub(channel).WatchLog(log_pb2.WatchLogRequest(after_seq=-1))
        first = await watch.read()  # the opening heartbeat: the stream is open
        assert first.WhichOneof("kind") == "heartbeat"
        during = await scrape(server.http)
        assert value(during["agentplane_open_streams"], "agentplane_open_streams", kind="grpc") == 1
        watch.cancel()
    for _ in range(100):  # the server sees the cancellation a moment later
        after = await scrape(server.http)
        if value(after["agentplane_open_streams"], "agentplane_open_streams", kind="grpc") == 0:
            break
        await asyncio.sleep(0.02)
    assert value(after["agentplane_open_streams"], "agentplane_open_streams", kind="grpc") == 0
    # Its end is counted (CANCELLED, or OK where the feed ended first).
    ended = [
        sum(x.value for x in page["agentplane_rpc_requests"] if x.labels["rpc"] == WATCH)
        for page in (before, after)
    ]
    assert ended[1] - ended[0] == 1


async def test_metrics_need_the_read_metrics_scope_when_keys_are_on(settings: Settings) -> None:
    app = create_app(with_keys(settings), service=Core)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{TEST_HOST}") as http:
            store = app.state.core.store
            reader = await make_key(store, ["read:metrics"])
            events_only = await make_key(store, ["read:events", "write:events"])
            admin = await make_key(store)
            missing = await http.get("/metrics")
            assert missing.status_code == 401
            assert missing.json()["detail"].startswith("Missing API key")
            wrong = await http.get("/metrics", headers={"X-API-Key": events_only.secret})
            assert wrong.status_code == 403
            assert "read:metrics" in wrong.json()["detail"]
            for key in (reader, admin):
                page = await scrape(http, {"Authorization": f"Bearer {key.secret}"})
                assert "agentplane_rpc_requests" in page
            # A call without a valid key reports nothing, whatever it says of its spool.
            spool = {"Agentplane-Hook-Spool": "999; runtime=claude-code"}
            assert (await http.get("/sessions", headers=spool)).status_code == 401
            page = await scrape(http, {"X-API-Key": reader.secret})
            assert value(page[SPOOL], SPOOL, runtime="claude-code") != 999


SPOOL = "agentplane_hook_spool_backlog"
REPORTED = "agentplane_hook_spool_report_timestamp_seconds"
ENSURE = {"runtimeSource": "claude-plugin", "runtimeSessionId": "cc-spool", "title": "Spool"}


async def test_hooks_report_their_spool_backlog(server: Server) -> None:
    """Each call of a hook says how many plans wait in its spool
    (`Agentplane-Hook-Spool`, or gRPC metadata of the same name): /metrics
    shows the last report per runtime, and when it came; runtime is the only label."""
    started = time.time()
    report = {"Agentplane-Hook-Spool": "5; runtime=claude-code"}
    assert (
        await server.http.post("/ingest/v1/sessions/ensure", json=ENSURE, headers=report)
    ).status_code == 200
    # Parameters a newer hook may add are ignored; a runtime not known is `other`.
    other = {"Agentplane-Hook-Spool": "7;runtime=cursor; bytes=4096"}
    assert (await server.http.get("/sessions", headers=other)).status_code == 200
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        stub = runtime_pb2_grpc.SessionServiceStub(channel)
        metadata = (("agentplane-hook-spool", "2; runtime=codex"),)
        await stub.ListSessions(runtime_pb2.ListSessionsRequest(), metadata=metadata)
    # A count that is not one is refused, as a bad Idempotency-Key is, and reports nothing.
    bad = {"Agentplane-Hook-Spool": "lots; runtime=claude-code"}
    refused = await server.http.post("/ingest/v1/sessions/ensure", json=ENSURE, headers=bad)
    assert refused.status_code == 400 and "agentplane-hook-spool" in refused.text

    page = await scrape(server.http)
    backlog = {s.labels["runtime"]: s.value for s in page[SPOOL]}
    assert {k: backlog[k] for k in ("claude-code", "codex", "other")} == {
        "claude-code": 5,
        "codex": 2,
        "other": 7,
    }
    assert {tuple(s.labels) for s in page[SPOOL] + page[REPORTED]} == {("runtime",)}
    for runtime in ("claude-code", "codex", "other"):
        assert started <= value(page[REPORTED], REPORTED, runtime=runtime) <= time.time()
