"""The console's reads over gRPC through the generated stubs: the same data
as over HTTP, pages that cover the session list once, a timeline with its
turns, and the status details of bad tokens, unknown ids and other
workspaces."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from agentplane.v1 import console_pb2 as pb
from agentplane.v1 import console_pb2_grpc as rpc

from service.base.config import Settings
from tests.auth_support import make_key, with_keys
from tests.conftest import Server
from tests.console_support import seed_everything
from tests.grpc.test_runtime_grpc import assert_reason, failure


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_keys(settings)


@pytest.fixture
async def stub(server: Server) -> AsyncIterator[rpc.ConsoleServiceStub]:
    channel = server.channel()
    try:
        yield rpc.ConsoleServiceStub(channel)
    finally:
        await channel.close()


async def test_console_reads_over_grpc(server: Server, stub: rpc.ConsoleServiceStub) -> None:
    a = await make_key(server.core.store, workspace="team-a")
    b = await make_key(server.core.store, workspace="team-b")
    server.http.headers.update(a.headers)
    seeded = await seed_everything(server.http)

    overview = await stub.GetConsoleOverview(pb.GetConsoleOverviewRequest(), metadata=a.metadata)
    assert overview.workspace == "team-a" and overview.head_seq > 0
    assert overview.running.leased_runs == 1 and len(overview.events_per_minute) == 60

    whole = await stub.ListConsoleSessions(pb.ListConsoleSessionsRequest(), metadata=a.metadata)
    paged: list[tuple[str, str]] = []
    token = ""
    while True:
        page = await stub.ListConsoleSessions(
            pb.ListConsoleSessionsRequest(page_size=3, page_token=token), metadata=a.metadata
        )
        paged += [(i.kind, i.id) for i in page.items]
        token = page.next_page_token
        if not token:
            break
    assert paged == [(i.kind, i.id) for i in whole.items] and len(paged) == 8

    timeline = await stub.GetConsoleTimeline(
        pb.GetConsoleTimelineRequest(kind="tracer_task", id=seeded.tracer_task), metadata=a.metadata
    )
    assert [t.verdict for t in timeline.turns] == ["verified", "contradicted"]
    assert timeline.turns[1].verdicts[0].why["actualToolCalls"] == ["ls"]
    assert timeline.events[0].occurred_at.seconds > 0 and timeline.follow_token

    # Another workspace's key sees none of it.
    other = await stub.ListConsoleSessions(pb.ListConsoleSessionsRequest(), metadata=b.metadata)
    assert list(other.items) == []
    missing = await failure(
        stub.GetConsoleTimeline(
            pb.GetConsoleTimelineRequest(kind="tracer_task", id=seeded.tracer_task), metadata=b.metadata
        )
    )
    assert_reason(missing, grpc.StatusCode.NOT_FOUND, "CONSOLE_ITEM_NOT_FOUND")

    bad = await failure(
        stub.ListConsoleSessions(pb.ListConsoleSessionsRequest(page_token="not-a-token"), metadata=a.metadata)
    )
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad.violations] == ["page_token"]
    # A token is bound to its filters.
    first = await stub.ListConsoleSessions(pb.ListConsoleSessionsRequest(page_size=1), metadata=a.metadata)
    filtered = await failure(
        stub.ListConsoleSessions(
            pb.ListConsoleSessionsRequest(kind="execution", page_token=first.next_page_token),
            metadata=a.metadata,
        )
    )
    assert [f for f, _ in filtered.violations] == ["page_token"]

    refused = await failure(stub.GetConsoleOverview(pb.GetConsoleOverviewRequest()))
    assert refused.code == grpc.StatusCode.UNAUTHENTICATED
