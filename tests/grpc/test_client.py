"""The Python SDK (clients/python) against a real server: every method of both
`Client` and `AsyncClient`, their errors, auth metadata, and log watching
(order, resuming from the cursor, reconnecting after a dropped connection).

Most tests run once per client: the sync client is driven from a thread
(the server runs on the test's event loop) through `InThread`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import grpc
import pytest
from agentplane.v1 import log_pb2, runtime_pb2
from agentplane_client import (
    AgentplaneError,
    AlreadyExistsError,
    AsyncClient,
    AsyncLogWatch,
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
    LogWatch,
    NotFoundError,
    UnauthenticatedError,
)
from google.protobuf import json_format
from google.protobuf.descriptor import MethodDescriptor

from service.base.errors import Unauthenticated
from service.rpc.context import CallContext
from tests.conftest import Server

WAIT = 10.0  # seconds before a test that waits for the server gives up


class InThread:
    """The sync client's surface as coroutines: each call runs in a thread."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.target, name)
        if callable(attr):
            return functools.partial(asyncio.to_thread, attr)
        return InThread(attr)


AnyClient = AsyncClient | InThread


@contextlib.asynccontextmanager
async def open_client(kind: str, target: str, api_key: str | None = None) -> AsyncIterator[AnyClient]:
    if kind == "async":
        async with AsyncClient(target, api_key) as client:
            yield client
    else:
        sync = Client(target, api_key)
        try:
            yield InThread(sync)
        finally:
            await asyncio.to_thread(sync.close)


@pytest.fixture(params=["sync", "async"])
async def client(request: pytest.FixtureRequest, server: Server) -> AsyncIterator[AnyClient]:
    async with open_client(request.param, server.grpc_target) as c:
        yield c


# Watches: the sync LogWatch is iterated in a thread, the async one in place.


def watch(client: AnyClient, **kwargs: Any) -> LogWatch | AsyncLogWatch:
    if isinstance(client, InThread):
        return cast(LogWatch, client.target.log.watch(**kwargs))  # iterated by next_entry
    return client.log.watch(**kwargs)


async def next_entry(w: LogWatch | AsyncLogWatch) -> log_pb2.LogEntry | None:
    """The next entry, or None when the watch has ended."""
    if isinstance(w, LogWatch):
        return await asyncio.to_thread(next, w, None)
    return await anext(w, None)


async def close(w: LogWatch | AsyncLogWatch) -> None:
    if isinstance(w, LogWatch):
        w.close()
    else:
        await w.close()


async def drain(client: AnyClient, **kwargs: Any) -> tuple[list[log_pb2.LogEntry], int]:
    """Every entry of a watch with stop_at_end, and the cursor it ends at."""
    w = watch(client, stop_at_end=True, **kwargs)
    entries = []
    while (entry := await asyncio.wait_for(next_entry(w), WAIT)) is not None:
        entries.append(entry)
    return entries, w.cursor


async def until(predicate: Callable[[], bool]) -> None:
    for _ in range(int(WAIT / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


def event(session_id: str, event_type: str, second: int, **extra: Any) -> dict[str, Any]:
    return {
        "event_type": event_type,
        "session_id": session_id,
        "session_name": "Demo",
        "timestamp": f"2025-01-01T00:00:{second:02d}Z",
        **extra,
    }


# Sessions and events.


async def test_session_lifecycle(client: AnyClient) -> None:
    created = await client.sessions.create("s1", "First", project_dir="/repo", agent_name="claude")
    assert isinstance(created, runtime_pb2.Session)
    assert (created.session_id, created.session_name, created.status) == ("s1", "First", "running")
    assert (created.project_dir, created.agent_name) == ("/repo", "claude")
    assert created.created_at.startswith("20")
    second = await client.sessions.create("s2", "Second")
    assert not second.HasField("project_dir") and not second.HasField("agent_name")

    assert [s.session_id for s in await client.sessions.list()] == ["s2", "s1"]  # newest first
    assert await client.sessions.get("s1") == created
    assert await client.sessions.status("s1") == "running"
    assert await client.sessions.status("unknown") == "not_existent"

    updated = await client.sessions.update_metadata("s1", session_name="Renamed")
    assert (updated.session_name, updated.project_dir, updated.agent_name) == ("Renamed", "/repo", "claude")
    updated = await client.sessions.update_metadata("s1", agent_name="codex")
    assert (updated.session_name, updated.agent_name) == ("Renamed", "codex")
    assert await client.sessions.get("s1") == updated

    await client.events.add("s1", event("s1", "pre_tool", 1, tool_name="Bash"))
    deleted = await client.sessions.delete("s1")
    assert deleted == runtime_pb2.DeletedCounts(session=True, events_count=1)
    assert [s.session_id for s in await client.sessions.list()] == ["s2"]
    assert await client.sessions.status("s1") == "not_existent"


async def test_events_add_list_and_result(client: AnyClient) -> None:
    await client.sessions.create("s1", "Demo")
    # A dict without session_id takes the one of the call.
    pre_tool = event("s1", "pre_tool", 1, tool_name="Bash", tool_input={"command": "ls"})
    del pre_tool["session_id"]
    await client.events.add("s1", pre_tool)
    message = runtime_pb2.Event(
        event_type="message", session_id="s1", session_name="Demo", timestamp="2025-01-01T00:00:02Z"
    )
    message.role = "assistant"
    message.content.append({"type": "text", "text": "All done"})
    await client.events.add("s1", message)

    with pytest.raises(FailedPreconditionError) as running:
        await client.sessions.result("s1")
    assert running.value.reason == "SESSION_NOT_FINISHED"

    await client.events.add("s1", event("s1", "session_stop", 3, exit_code=0, reason="completed"))
    assert await client.sessions.status("s1") == "finished"
    assert await client.sessions.result("s1") == "All done"

    events = await client.events.list("s1")
    assert [e.event_type for e in events] == ["pre_tool", "message", "session_stop"]
    assert all(isinstance(e, runtime_pb2.StoredEvent) for e in events)
    assert [e.session_id for e in events] == ["s1"] * 3
    assert events[0].id < events[1].id < events[2].id
    assert events[0].tool_name == "Bash"
    assert json_format.MessageToDict(events[0].tool_input) == {"command": "ls"}
    assert json_format.MessageToDict(events[1].content) == [{"type": "text", "text": "All done"}]
    assert (events[2].exit_code, events[2].reason) == (0, "completed")
    assert await client.events.list_legacy("s1") == events


async def test_record_event_legacy_route(client: AnyClient) -> None:
    await client.events.record(event("s9", "session_start", 1))
    session = await client.sessions.get("s9")
    assert (session.session_name, session.status) == ("Demo", "running")
    assert session.created_at == "2025-01-01T00:00:01Z"  # the event's timestamp
    await client.events.record(event("s9", "session_stop", 2))
    assert await client.sessions.status("s9") == "finished"
    assert [e.event_type for e in await client.events.list("s9")] == ["session_start", "session_stop"]

    # Any other event is stored even for a session that does not exist;
    # only the legacy list shows it.
    await client.events.record(event("ghost", "pre_tool", 3, tool_name="Read"))
    assert [e.tool_name for e in await client.events.list_legacy("ghost")] == ["Read"]
    with pytest.raises(NotFoundError):
        await client.events.list("ghost")
    assert await client.events.list_legacy("never") == []


# Errors.


async def test_not_found_error(client: AnyClient) -> None:
    for call in (
        client.sessions.get("missing"),
        client.sessions.result("missing"),
        client.sessions.delete("missing"),
        client.sessions.update_metadata("missing", session_name="x"),
        client.events.add("missing", event("missing", "pre_tool", 1)),
    ):
        with pytest.raises(NotFoundError) as raised:
            await call
        err = raised.value
        assert isinstance(err, AgentplaneError)
        assert err.code == grpc.StatusCode.NOT_FOUND
        assert (err.message, err.reason) == ("Session not found", "SESSION_NOT_FOUND")
        assert err.metadata == {"session_id": "missing"}
        assert err.field_violations == []
        assert str(err) == "NOT_FOUND: Session not found (SESSION_NOT_FOUND)"


async def test_already_exists_error(client: AnyClient) -> None:
    await client.sessions.create("s1", "First")
    with pytest.raises(AlreadyExistsError) as raised:
        await client.sessions.create("s1", "Again")
    err = raised.value
    assert err.code == grpc.StatusCode.ALREADY_EXISTS
    assert (err.message, err.reason) == ("Session already exists", "SESSION_EXISTS")
    assert (await client.sessions.get("s1")).session_name == "First"


async def test_invalid_argument_errors(client: AnyClient) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        await client.sessions.create("s1", "")
    err = raised.value
    assert (err.code, err.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "MISSING_FIELD")
    assert err.field_violations == [("session_name", "is required")]
    assert await client.sessions.status("s1") == "not_existent"

    with pytest.raises(InvalidArgumentError) as raised:
        await client.events.record({"event_type": "pre_tool", "session_id": "s1"})
    assert sorted(f for f, _ in raised.value.field_violations) == ["event.session_name", "event.timestamp"]

    await client.sessions.create("s1", "Demo")
    with pytest.raises(InvalidArgumentError) as raised:
        await client.events.add("s1", event("other", "pre_tool", 1))
    assert raised.value.field_violations == [("event.session_id", "must match the session_id of the path")]
    assert await client.events.list("s1") == []

    # A dict that does not fit the Event message fails before any call.
    with pytest.raises(ValueError, match="tool_input"):
        await client.events.add("s1", event("s1", "pre_tool", 1, tool_input="not an object"))


async def test_api_key_is_sent_on_every_call(server: Server) -> None:
    seen: list[tuple[str, str | None]] = []

    async def check(ctx: CallContext, method: MethodDescriptor) -> None:
        key = ctx.metadata.get("authorization")
        seen.append((method.name, key))
        if key != "Bearer k1":
            raise Unauthenticated("bad key", reason="BAD_KEY")

    server.core.dispatcher.interceptors.append(check)
    for kind in ("sync", "async"):
        seen.clear()
        async with open_client(kind, server.grpc_target, api_key="k1") as c:
            await c.sessions.create(f"{kind}-1", "Demo")
            await c.events.add(f"{kind}-1", event(f"{kind}-1", "pre_tool", 1))
            entries, _ = await drain(c, session_id=f"{kind}-1")
        assert seen == [(m, "Bearer k1") for m in ("CreateSession", "AddSessionEvent", "WatchLog")]
        assert len(entries) == 2

        seen.clear()
        async with open_client(kind, server.grpc_target) as c:
            with pytest.raises(UnauthenticatedError) as raised:
                await c.sessions.list()
            with pytest.raises(UnauthenticatedError):
                await drain(c)
        assert (raised.value.code, raised.value.reason) == (grpc.StatusCode.UNAUTHENTICATED, "BAD_KEY")
        assert seen == [("ListSessions", None), ("WatchLog", None)]


# The log.


async def test_watch_delivers_in_order_and_resumes_from_cursor(client: AnyClient) -> None:
    await client.sessions.create("s1", "Demo")
    await client.events.add("s1", event("s1", "pre_tool", 1, tool_name="Bash"))
    await client.sessions.create("s2", "Other")

    entries, cursor = await drain(client)
    assert all(isinstance(e, log_pb2.LogEntry) for e in entries)
    assert [(e.type, e.session_id) for e in entries] == [
        ("session.created", "s1"),
        ("runtime.event", "s1"),
        ("session.created", "s2"),
    ]
    seqs = [e.seq for e in entries]
    assert seqs == sorted(set(seqs))
    assert cursor == seqs[-1]
    assert json_format.MessageToDict(entries[1].data)["tool_name"] == "Bash"

    await client.events.add("s2", event("s2", "pre_tool", 2))
    await client.sessions.update_metadata("s1", agent_name="claude")
    later, later_cursor = await drain(client, after_seq=cursor)
    assert [(e.type, e.session_id) for e in later] == [("runtime.event", "s2"), ("session.updated", "s1")]
    assert all(e.seq > cursor for e in later)
    assert later_cursor == later[-1].seq
    assert await drain(client, after_seq=later_cursor) == ([], later_cursor)

    # Filters: only the kept entries, still in order.
    created, _ = await drain(client, types=["session.created"])
    assert [e.session_id for e in created] == ["s1", "s2"]
    of_s2, _ = await drain(client, session_id="s2")
    assert [e.type for e in of_s2] == ["session.created", "runtime.event"]


async def test_watch_follows_new_entries_and_heartbeats_advance_cursor(client: AnyClient) -> None:
    await client.sessions.create("s1", "Demo")
    _, head = await drain(client)
    w = watch(client, after_seq=-1, types=["runtime.event"])
    try:
        pending = asyncio.create_task(next_entry(w))
        # The stream opens with a heartbeat that tells where "now" is.
        await until(lambda: w.cursor == head)
        await client.sessions.create("s2", "Other")  # filtered out
        await client.events.add("s2", event("s2", "pre_tool", 1))
        entry = await asyncio.wait_for(pending, WAIT)
        assert entry is not None and (entry.type, entry.session_id) == ("runtime.event", "s2")
        assert entry.seq > head and w.cursor == entry.seq

        # Entries the filter leaves out still advance the cursor (by heartbeat),
        # so a resumed watch does not scan them again.
        pending = asyncio.create_task(next_entry(w))
        await client.sessions.create("s3", "Third")  # filtered out
        _, head = await drain(client)
        assert head > entry.seq
        await until(lambda: w.cursor == head)
        assert not pending.done()
    finally:
        await close(w)
    # close() ends an iteration that is waiting.
    assert await asyncio.wait_for(pending, WAIT) is None


async def test_filtered_watch_heartbeats_while_writes_it_leaves_out_go_on(client: AnyClient) -> None:
    """A follower whose filter keeps nothing of a steady write load still
    hears, every heartbeat interval (0.5 s here), how far it has got: it
    would otherwise resume from where it opened and scan it all again."""
    _, head = await drain(client)
    w = watch(client, after_seq=-1, types=["runtime.event"])
    try:
        pending = asyncio.create_task(next_entry(w))
        await until(lambda: w.cursor == head)
        advanced = []
        for i in range(15):  # one write every 0.1 s for 1.5 s
            await client.sessions.create(f"busy-{i}", "Busy")  # filtered out
            advanced.append(w.cursor > head)
            await asyncio.sleep(0.1)
        assert any(advanced), "no heartbeat while the writes went on"
        assert not pending.done()
    finally:
        await close(w)
    assert await asyncio.wait_for(pending, WAIT) is None


class Proxy:
    """A TCP proxy in front of the server whose connections a test can cut."""

    def __init__(self, upstream: str) -> None:
        self.host, port = upstream.rsplit(":", 1)
        self.upstream_port = int(port)
        self.accepted = 0
        self._transports: list[asyncio.WriteTransport] = []

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.target = f"{self.host}:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        self.cut()
        await self._server.wait_closed()

    def cut(self) -> None:
        """Reset every open connection."""
        for transport in self._transports:
            transport.abort()
        self._transports.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        up_reader, up_writer = await asyncio.open_connection(self.host, self.upstream_port)
        self._transports += [writer.transport, up_writer.transport]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_watch_resume_reconnects_without_gaps_or_duplicates(server: Server, kind: str) -> None:
    async with contextlib.AsyncExitStack() as stack:
        direct = await stack.enter_async_context(open_client("async", server.grpc_target))
        proxy = await stack.enter_async_context(Proxy(server.grpc_target))
        via_proxy = await stack.enter_async_context(open_client(kind, proxy.target))
        await direct.sessions.create("s1", "Demo")
        await direct.events.add("s1", event("s1", "pre_tool", 1))
        w = watch(via_proxy, resume=True)
        seen = [await asyncio.wait_for(next_entry(w), WAIT) for _ in range(2)]

        proxy.cut()
        # Written while the watcher is cut off, and after it reconnects.
        await direct.events.add("s1", event("s1", "post_tool", 2))
        await direct.sessions.create("s2", "Other")
        seen += [await asyncio.wait_for(next_entry(w), WAIT) for _ in range(2)]
        await direct.events.add("s1", event("s1", "session_stop", 3))  # session.updated + the event
        seen += [await asyncio.wait_for(next_entry(w), WAIT) for _ in range(2)]
        await close(w)

        everything, _ = await drain(direct)
        assert len(everything) == 6
        assert seen == everything  # in order, none missed while cut off, none twice
        assert w.cursor == everything[-1].seq
        assert proxy.accepted >= 2  # it did reconnect

        # Without resume, the dropped connection is an error.
        w = watch(via_proxy)
        assert (await asyncio.wait_for(next_entry(w), WAIT)) == everything[0]
        proxy.cut()
        with pytest.raises(AgentplaneError) as raised:
            while await asyncio.wait_for(next_entry(w), WAIT):
                pass
        assert raised.value.code == grpc.StatusCode.UNAVAILABLE
