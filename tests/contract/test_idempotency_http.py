"""Idempotency keys over HTTP and gRPC, against the real app: a write sent
again with the same `Idempotency-Key` returns the first answer and writes
nothing; the same key with another request, a key of another workspace or
RPC, an expired key; concurrent duplicates; Trenchcoat's natural key."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from agentplane.v1 import runtime_pb2, runtime_pb2_grpc, trenchcoat_pb2, trenchcoat_pb2_grpc
from google.protobuf import json_format
from sqlalchemy import Connection, func, select

from service.base.config import Settings
from service.store.idempotency import keys
from service.store.tables import log_entries
from tests.auth_support import make_key, with_keys
from tests.conftest import Server, free_port
from tests.contract.test_trenchcoat_http import SEED_REQUEST, activity
from tests.e2e.test_serve_process import serve

BATCH = SEED_REQUEST
REUSED = "IDEMPOTENCY_KEY_REUSED"


def runtime_event(text: str = "Done.") -> dict[str, Any]:
    return {
        "event_type": "message",
        "session_id": "abc-123",
        "session_name": "My Session",
        "timestamp": "2025-11-16T10:34:55Z",
        "role": "assistant",
        "content": [{"type": "text", "text": text}],
    }


def _log(conn: Connection) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(select(log_entries.c.seq, log_entries.c.type, log_entries.c.data))]


async def log(server: Server) -> list[tuple[Any, ...]]:
    return await server.core.store.read(_log)


async def types(server: Server) -> list[str]:
    return [t for _, t, _ in await log(server)]


async def key_rows(server: Server) -> int:
    return int(
        await server.core.store.read(lambda c: c.execute(select(func.count()).select_from(keys)).scalar())
    )


async def settle(server: Server) -> None:
    """Wait for the answers of the keyed writes so far to be stored (the
    writer runs operations in order)."""
    await server.core.store.write(lambda tx: None)


async def retried(send: Callable[[], Any], times: int = 25) -> list[httpx.Response]:
    return [await send() for _ in range(times)]


def same_answers(answers: list[httpx.Response]) -> httpx.Response:
    first = answers[0]
    assert first.status_code < 300, first.text
    for resp in answers[1:]:
        assert (resp.status_code, resp.content) == (first.status_code, first.content)
    return first


async def test_trenchcoat_batch_sent_25_times_is_stored_once(server: Server) -> None:
    headers = {"Idempotency-Key": "batch-1"}
    answers = await retried(lambda: server.http.post("/api/v1/events", json=BATCH, headers=headers))
    assert same_answers(answers).json() == {"data": {"accepted": 2, "rejected": 0}}
    assert (await types(server)).count("trenchcoat.event") == 2
    assert (await activity(server))["event_count"] == 2


async def test_runtime_event_sent_25_times_is_stored_once(server: Server) -> None:
    await server.http.post("/sessions", json={"session_id": "abc-123", "session_name": "My Session"})
    answers = await retried(
        lambda: server.http.post(
            "/sessions/abc-123/events", json=runtime_event(), headers={"Idempotency-Key": "ev-1"}
        )
    )
    same_answers(answers)
    events = (await server.http.get("/sessions/abc-123/events")).json()
    assert len(events) == 1, events


async def test_task_created_25_times_is_created_once(server: Server) -> None:
    body = {"title": "Fix the build", "description": "CI is red"}
    answers = await retried(
        lambda: server.http.post("/api/tasks", json=body, headers={"Idempotency-Key": "task-1"})
    )
    task = same_answers(answers).json()
    listed = (await server.http.get("/api/tasks")).json()
    assert [t["id"] for t in listed["tasks"]] == [task["task"]["id"]]


async def test_grpc_write_sent_25_times_is_stored_once(server: Server) -> None:
    metadata = (("idempotency-key", "grpc-1"),)
    async with server.channel() as channel:
        stub = runtime_pb2_grpc.SessionServiceStub(channel)
        request = runtime_pb2.CreateSessionRequest(session_id="abc-123", session_name="My Session")
        answers = [await stub.CreateSession(request, metadata=metadata) for _ in range(25)]
    assert all(a == answers[0] for a in answers)
    assert (await types(server)).count("session.created") == 1
    # Without a key the same RPC is refused the second time: the key replayed the answer.
    async with server.channel() as channel:
        stub = runtime_pb2_grpc.SessionServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.CreateSession(request)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_an_error_after_a_write_is_replayed_too(server: Server) -> None:
    """A session created without a key, then created with one: the 409 is the
    answer, and nothing was written, so the key is not kept (a retry runs again)."""
    await server.http.post("/sessions", json={"session_id": "abc-123", "session_name": "My Session"})
    before = await log(server)
    answers = await retried(
        lambda: server.http.post(
            "/sessions", json={"session_id": "abc-123", "session_name": "x"}, headers={"Idempotency-Key": "k"}
        ),
        3,
    )
    assert {a.status_code for a in answers} == {409}
    assert await log(server) == before
    assert await key_rows(server) == 0


async def test_same_key_with_another_request_is_refused_and_writes_nothing(server: Server) -> None:
    headers = {"Idempotency-Key": "batch-1"}
    first = await server.http.post("/api/v1/events", json=BATCH, headers=headers)
    assert first.status_code == 200
    before = await log(server)
    other = {"events": [{**BATCH["events"][0], "timestamp": "2024-01-15T11:00:00Z"}]}
    resp = await server.http.post("/api/v1/events", json=other, headers=headers)
    assert resp.status_code == 409, resp.text
    assert "idempotency key was used with a different request" in resp.text
    # Free-form JSON counts: different `content` is a different request.
    event = runtime_event()
    await server.http.post("/sessions", json={"session_id": "abc-123", "session_name": "My Session"})
    before = await log(server)
    ok = await server.http.post("/sessions/abc-123/events", json=event, headers={"Idempotency-Key": "e"})
    assert ok.status_code == 200
    changed = runtime_event("Not done.")
    resp = await server.http.post("/sessions/abc-123/events", json=changed, headers={"Idempotency-Key": "e"})
    assert resp.status_code == 409, resp.text
    assert len(await log(server)) == len(before) + 1


async def test_grpc_reuse_is_already_exists_with_a_reason(server: Server) -> None:
    async with server.channel() as channel:
        stub = runtime_pb2_grpc.SessionServiceStub(channel)
        md = (("idempotency-key", "k"),)
        await stub.CreateSession(
            runtime_pb2.CreateSessionRequest(session_id="a", session_name="A"), metadata=md
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.CreateSession(
                runtime_pb2.CreateSessionRequest(session_id="b", session_name="B"), metadata=md
            )
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert REUSED.encode() in dict(err.value.trailing_metadata() or ())["grpc-status-details-bin"]
    assert (await types(server)).count("session.created") == 1


async def test_a_key_is_per_rpc(server: Server) -> None:
    headers = {"Idempotency-Key": "same"}
    assert (await server.http.post("/api/v1/events", json=BATCH, headers=headers)).status_code == 200
    created = await server.http.post(
        "/sessions", json={"session_id": "abc-123", "session_name": "S"}, headers=headers
    )
    assert created.status_code == 200, created.text


@pytest.mark.parametrize("key", ["", "a" * 256, "with space", "é"])
async def test_a_bad_key_is_a_400_and_writes_nothing(server: Server, key: str) -> None:
    resp = await server.http.post("/api/v1/events", json=BATCH, headers={"Idempotency-Key": key.encode()})
    assert resp.status_code == 400, resp.text
    assert await log(server) == []


async def test_reads_are_not_keyed(server: Server) -> None:
    resp = await server.http.get("/sessions", headers={"Idempotency-Key": "read"})
    assert resp.status_code == 200
    assert await key_rows(server) == 0


async def test_concurrent_duplicates_write_once(server: Server) -> None:
    headers = {"Idempotency-Key": "burst"}
    answers = await asyncio.gather(
        *(server.http.post("/api/v1/events", json=BATCH, headers=headers) for _ in range(25))
    )
    same_answers(list(answers))
    assert (await types(server)).count("trenchcoat.event") == 2


async def test_expired_keys_apply_again_and_are_swept(server: Server) -> None:
    idem = server.core.dispatcher.idempotency
    assert idem is not None
    now = [1_000_000_000_000]
    idem.clock = lambda: now[0]
    headers = {"Idempotency-Key": "old"}
    await server.http.post("/api/v1/events", json=BATCH, headers=headers)
    await settle(server)
    now[0] += int(Settings().idempotency_window_seconds * 1000) - 1
    await server.http.post("/api/v1/events", json=BATCH, headers=headers)
    assert (await types(server)).count("trenchcoat.event") == 2  # still in the window
    now[0] += 1
    assert await idem.sweep() == 1
    assert await key_rows(server) == 0
    await server.http.post("/api/v1/events", json=BATCH, headers=headers)
    await settle(server)
    assert (await types(server)).count("trenchcoat.event") == 4  # a new window
    now[0] += int(Settings().idempotency_window_seconds * 1000)
    # Expired but not yet swept: applied again, the old row replaced.
    await server.http.post("/api/v1/events", json=BATCH, headers=headers)
    assert (await types(server)).count("trenchcoat.event") == 6
    assert await key_rows(server) == 1


async def test_trenchcoat_resend_of_a_seq_without_a_key_is_a_no_op(server: Server) -> None:
    plugin = {
        "events": [
            {"event": "prompt_submit", "session_id": "s-1", "ts": "2024-01-15T10:30:00Z", "seq": 1},
            {"event": "tool_use", "session_id": "s-1", "ts": "2024-01-15T10:30:01Z", "seq": 2, "data": {}},
        ]
    }
    first = await server.http.post("/api/v1/events", json=plugin)
    assert first.json() == {"data": {"accepted": 2, "rejected": 0}}
    for _ in range(3):
        again = await server.http.post("/api/v1/events", json=plugin)
        assert (again.status_code, again.json()) == (200, first.json())
    # A batch with one new event and one resent: only the new one is stored.
    more = {"events": [plugin["events"][1], {**plugin["events"][1], "seq": 3, "ts": "2024-01-15T10:30:02Z"}]}
    assert (await server.http.post("/api/v1/events", json=more)).json()["data"]["accepted"] == 2
    assert (await types(server)).count("trenchcoat.event") == 3
    assert (await activity(server, "s-1"))["event_count"] == 3


class TestWorkspaces:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return with_keys(settings)

    async def test_keys_are_per_workspace(self, server: Server) -> None:
        one = await make_key(server.core.store, ["write:events", "read:events"], workspace="one")
        two = await make_key(server.core.store, ["write:events", "read:events"], workspace="two")
        for key in (one, two, one, two):
            resp = await server.http.post(
                "/api/v1/events", json=BATCH, headers={**key.headers, "Idempotency-Key": "shared"}
            )
            assert resp.status_code == 200, resp.text
        per_workspace = await server.core.store.read(
            lambda c: sorted(
                tuple(r)
                for r in c.execute(
                    select(log_entries.c.workspace, func.count())
                    .where(log_entries.c.type == "trenchcoat.event")
                    .group_by(log_entries.c.workspace)
                )
            )
        )
        assert per_workspace == [("one", 2), ("two", 2)]


async def test_tracer_resend_of_an_event_id_without_a_key_is_a_no_op(server: Server) -> None:
    ensured = await server.http.post(
        "/ingest/v1/sessions/ensure",
        json={"runtimeSource": "claude-plugin", "runtimeSessionId": "cc-1", "title": "Fix the parser"},
    )
    ids = ensured.json()["data"]
    item = {
        "eventId": "0b5e8f3c-9d1a-4c7e-8f2b-6a3d9e1c7b40",
        "kind": "terminal.command",
        "taskId": ids["taskId"],
        "sessionId": ids["sessionId"],
        "lane": "implementation",
        "title": "Run the tests",
    }
    answers = [await server.http.post("/ingest/v1/events", json={"events": [item]}) for _ in range(3)]
    assert {a.status_code for a in answers} == {200}
    timeline = (await server.http.get(f"/api/v1/tasks/{ids['taskId']}/timeline")).json()["data"]["events"]
    assert [e["id"] for e in timeline].count(item["eventId"]) == 1


async def test_a_write_whose_answer_was_not_stored_is_not_applied_again(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As after a crash between the write's commit and its answer's: the retry
    is told (409, IDEMPOTENCY_ANSWER_LOST) and writes nothing."""

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the server died here")

    monkeypatch.setattr("service.rpc.idempotency._store_answer", crash)
    headers = {"Idempotency-Key": "lost"}
    assert (await server.http.post("/api/v1/events", json=BATCH, headers=headers)).status_code == 200
    monkeypatch.undo()
    before = await log(server)
    async with server.channel() as channel:
        stub = trenchcoat_pb2_grpc.TrenchcoatServiceStub(channel)
        request = json_format.ParseDict(BATCH, trenchcoat_pb2.IngestTrenchcoatEventsRequest())
        for _ in range(3):
            resp = await server.http.post("/api/v1/events", json=BATCH, headers=headers)
            assert resp.status_code == 409, resp.text
            assert "it is not applied again" in resp.json()["error"]["message"]
            with pytest.raises(grpc.aio.AioRpcError) as err:  # the same request over gRPC
                await stub.IngestTrenchcoatEvents(request, metadata=(("idempotency-key", "lost"),))
            assert err.value.code() == grpc.StatusCode.ABORTED
            details = dict(err.value.trailing_metadata() or ())["grpc-status-details-bin"]
            assert b"IDEMPOTENCY_ANSWER_LOST" in details
    assert await log(server) == before


async def test_a_key_holds_across_http_and_grpc(server: Server) -> None:
    """The request is compared as gRPC carries it, free-form JSON included."""
    headers = {"Idempotency-Key": "both"}
    first = await server.http.post("/api/v1/events", json=BATCH, headers=headers)
    async with server.channel() as channel:
        stub = trenchcoat_pb2_grpc.TrenchcoatServiceStub(channel)
        request = json_format.ParseDict(BATCH, trenchcoat_pb2.IngestTrenchcoatEventsRequest())
        again = await stub.IngestTrenchcoatEvents(request, metadata=(("idempotency-key", "both"),))
    assert (first.json()["data"]["accepted"], again.accepted) == (2, 2)
    assert (await types(server)).count("trenchcoat.event") == 2


async def test_openapi_offers_the_key_on_writes_only(server: Server) -> None:
    paths = (await server.http.get("/openapi.json")).json()["paths"]

    def header_names(path: str, verb: str) -> list[str]:
        return [p["name"] for p in paths[path][verb]["parameters"] if p["in"] == "header"]

    assert header_names("/api/v1/events", "post") == ["Idempotency-Key"]
    assert header_names("/api/tasks", "post") == ["Idempotency-Key"]
    assert header_names("/sessions", "get") == []


def _skip_seqs(tx: Any) -> None:
    """Make the log skip 100 numbers, as PostgreSQL does after rolled-back appends."""
    if tx.conn.dialect.name == "postgresql":
        tx.conn.exec_driver_sql(
            "SELECT setval(pg_get_serial_sequence('log_entries', 'seq'), "
            "(SELECT max(seq) FROM log_entries) + 100)"
        )
    else:
        tx.conn.exec_driver_sql("UPDATE sqlite_sequence SET seq = seq + 100 WHERE name = 'log_entries'")


async def watched(server: Server, after: int) -> list[int]:
    resp = await server.http.get("/v1/log:watch", params={"after_seq": after, "stop_at_end": "true"})
    lines = [json.loads(line)["result"] for line in resp.text.splitlines() if line.strip()]
    return [int(r["entry"]["seq"]) for r in lines if "entry" in r]


async def test_readers_are_correct_under_seq_gaps(server: Server) -> None:
    await server.http.post("/api/v1/events", json=BATCH)
    before = await watched(server, 0)
    await server.core.store.write(_skip_seqs)
    await server.http.post("/api/v1/events", json=BATCH)
    every = await watched(server, 0)
    after = every[len(before) :]
    assert every[: len(before)] == before and len(after) == 2
    assert after[0] > before[-1] + 100  # a gap
    assert await watched(server, before[-1]) == after  # resume across it
    assert await watched(server, before[-1] + 50) == after  # or from inside it


async def test_two_replicas_write_a_keyed_request_once(
    server: Server, settings: Settings, tmp_path: Path
) -> None:
    """The same keyed request at two servers on one database at once: one
    write; the other answers the first's answer, or 409 while it is unknown.
    The second replica is its own `agentplane serve` process, as replicas are."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ("--http-port", str(port), "--grpc-port", str(free_port()))
    with serve(tmp_path, settings.database_url, *args, health=f"{base}/healthz"):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            await _two_replicas_write_once(server, http)
    assert (await types(server)).count("trenchcoat.event") == 2 * 10


async def _two_replicas_write_once(server: Server, http: httpx.AsyncClient) -> None:
    for i in range(10):
        headers = {"Idempotency-Key": f"replicas-{i}"}
        answers = await asyncio.gather(
            *(
                client.post("/api/v1/events", json=BATCH, headers=headers)
                for client in (server.http, http, server.http, http)
            )
        )
        assert {a.status_code for a in answers} <= {200, 409}, [a.text for a in answers]
        assert any(a.status_code == 200 for a in answers)
        for a in answers:
            if a.status_code == 409:
                assert "with this idempotency key" in a.json()["error"]["message"], a.text
