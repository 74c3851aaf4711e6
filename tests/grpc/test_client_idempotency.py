"""The Python client sends a fresh idempotency key with every write, and
none with reads; the server stores each (so a resend of that very call
would write nothing). Its rule for what is a write is the server's."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from agentplane_client._calls import is_write as client_is_write
from google.protobuf.descriptor import MethodDescriptor
from sqlalchemy import select

from service.rpc.context import CallContext
from service.rpc.idempotency import is_write
from service.store.idempotency import keys
from tests.conftest import Server
from tests.grpc.test_client import AnyClient, open_client


@pytest.fixture(params=["sync", "async"])
async def client(request: pytest.FixtureRequest, server: Server) -> AsyncIterator[AnyClient]:
    async with open_client(request.param, server.grpc_target) as c:
        yield c


async def test_every_write_carries_a_fresh_key_and_reads_none(server: Server, client: AnyClient) -> None:
    seen: list[tuple[str, str | None]] = []

    async def record(ctx: CallContext, md: MethodDescriptor) -> None:
        seen.append((md.name, ctx.metadata.get("idempotency-key")))

    server.core.dispatcher.interceptors.append(record)
    await client.sessions.create("s1", "First")
    await client.sessions.create("s2", "Second")
    await client.sessions.list()
    await client.sessions.get("s1")
    assert [name for name, _ in seen] == ["CreateSession", "CreateSession", "ListSessions", "GetSession"]
    sent = [key for _, key in seen]
    assert sent[2:] == [None, None]
    assert all(re.fullmatch(r"[0-9a-f]{32}", k or "") for k in sent[:2]) and sent[0] != sent[1]
    stored = await server.core.store.read(lambda c: set(c.execute(select(keys.c.key)).scalars()))
    assert stored == set(sent[:2])


def test_the_client_decides_writes_as_the_server_does(server: Server) -> None:
    # The client's RPCs: agentplane.v1's (OTLP's collector services are for OTLP exporters).
    methods = [
        m.descriptor
        for m in server.core.dispatcher.methods.values()
        if m.descriptor.full_name.startswith("agentplane.v1.")
    ]
    assert [m.full_name for m in methods if client_is_write(m.input_type) != is_write(m)] == []
    assert sum(map(is_write, methods)) > 50
