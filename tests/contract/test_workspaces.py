"""Two workspaces on one server: a key never reads, lists, streams or changes
another workspace's sessions, events, log entries, tasks or keys, over HTTP
or gRPC (the WebSocket feeds: tests/e2e/test_auth_live.py)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from agentplane.v1 import log_pb2, log_pb2_grpc, runtime_pb2, runtime_pb2_grpc

from service.base.config import Settings
from tests.auth_support import Key, make_key, with_keys
from tests.conftest import Server

SID = "550e8400-e29b-41d4-a716-446655440000"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_keys(settings)


@pytest.fixture
async def alpha(server: Server) -> Key:
    return await make_key(server.core.store, workspace="alpha")


@pytest.fixture
async def beta(server: Server) -> Key:
    return await make_key(server.core.store, workspace="beta")


def runtime_event(kind: str, session_id: str, ts: str, **extra: Any) -> dict[str, Any]:
    return {"event_type": kind, "session_id": session_id, "session_name": "S", "timestamp": ts, **extra}


async def fill(http: httpx.AsyncClient, key: Key, tag: str) -> None:
    """Sessions, events and telemetry in the key's workspace."""
    h = key.headers
    assert (
        await http.post("/sessions", json={"session_id": "shared-id", "session_name": tag}, headers=h)
    ).status_code == 200
    ev = runtime_event("pre_tool", "shared-id", "2025-01-01T00:00:00Z", tool_name=tag)
    assert (await http.post("/sessions/shared-id/events", json=ev, headers=h)).status_code == 200
    assert (
        await http.post(
            "/events", json=runtime_event("session_start", f"{tag}-legacy", "2025-01-01T00:00:01Z"), headers=h
        )
    ).status_code == 200
    telemetry = {
        "events": [
            {
                "event_type": "tool_use",
                "session_id": SID,
                "timestamp": "2025-01-01T00:00:02Z",
                "data": {"tag": tag},
            }
        ]
    }
    assert (await http.post("/api/v1/events", json=telemetry, headers=h)).status_code == 200


async def log_of(http: httpx.AsyncClient, key: Key) -> list[dict[str, Any]]:
    resp = await http.get("/v1/log:watch", params={"after_seq": 0, "stop_at_end": True}, headers=key.headers)
    assert resp.status_code == 200, resp.text
    return [json.loads(line)["result"]["entry"] for line in resp.text.splitlines()]


async def test_workspaces_do_not_see_each_other(server: Server, alpha: Key, beta: Key) -> None:
    http = server.http
    await fill(http, alpha, "alpha")
    alpha_log = await log_of(http, alpha)
    alpha_sessions = (await http.get("/sessions", headers=alpha.headers)).json()

    # beta sees nothing of alpha's
    assert (await http.get("/sessions", headers=beta.headers)).json() == {"sessions": []}
    assert {e["type"] for e in await log_of(http, beta)} == {"api_key.created"}
    for path in (
        "/sessions/shared-id",
        "/sessions/shared-id/events",
        f"/sessions/{SID}",
        "/sessions/alpha-legacy/result",
    ):
        resp = await http.get(path, headers=beta.headers)
        assert (resp.status_code, resp.json()) == (404, {"detail": "Session not found"}), path
    assert (await http.get("/sessions/shared-id/status", headers=beta.headers)).json() == {
        "status": "not_existent"
    }
    assert (await http.get("/events/shared-id", headers=beta.headers)).json() == {"events": []}
    # nor changes it
    ev = runtime_event("session_stop", "shared-id", "2025-01-01T00:01:00Z")
    for method, path, body in [
        ("POST", "/sessions/shared-id/events", ev),
        ("PATCH", "/sessions/shared-id/metadata", {"session_name": "taken"}),
        ("DELETE", "/sessions/shared-id", None),
    ]:
        resp = await http.request(method, path, json=body, headers=beta.headers)
        assert resp.status_code == 404, (method, path, resp.text)
    assert await log_of(http, alpha) == alpha_log
    assert (await http.get("/sessions", headers=alpha.headers)).json() == alpha_sessions

    # the same ids in beta are beta's own
    await fill(http, beta, "beta")
    beta_sessions = (await http.get("/sessions", headers=beta.headers)).json()["sessions"]
    assert sorted((s["session_id"], s["session_name"]) for s in beta_sessions) == [
        (SID, ""),
        ("beta-legacy", "S"),
        ("shared-id", "beta"),
    ]
    beta_events = (await http.get("/sessions/shared-id/events", headers=beta.headers)).json()["events"]
    assert [e["tool_name"] for e in beta_events] == ["beta"]
    assert (await http.get("/sessions", headers=alpha.headers)).json() == alpha_sessions
    assert await log_of(http, alpha) == alpha_log
    assert {e["workspace"] for e in await log_of(http, beta)} == {"beta"}
    telemetry = [e["data"]["data"] for e in await log_of(http, beta) if e["type"] == "trenchcoat.event"]
    assert telemetry == [{"tag": "beta"}]


async def test_workspaces_over_grpc(server: Server, alpha: Key, beta: Key) -> None:
    await fill(server.http, alpha, "alpha")
    channel = server.channel()
    try:
        sessions = runtime_pb2_grpc.SessionServiceStub(channel)
        log = log_pb2_grpc.LogServiceStub(channel)
        listed = await sessions.ListSessions(runtime_pb2.ListSessionsRequest(), metadata=beta.metadata)
        assert list(listed.sessions) == []
        watched = log.WatchLog(log_pb2.WatchLogRequest(after_seq=0, stop_at_end=True), metadata=beta.metadata)
        assert [(m.entry.type, m.entry.workspace) async for m in watched] == [("api_key.created", "beta")]
        status = await sessions.GetSessionStatus(
            runtime_pb2.GetSessionStatusRequest(session_id="shared-id"), metadata=beta.metadata
        )
        assert status.status == "not_existent"
        listed = await sessions.ListSessions(runtime_pb2.ListSessionsRequest(), metadata=alpha.metadata)
        assert sorted(s.session_id for s in listed.sessions) == sorted([SID, "alpha-legacy", "shared-id"])
    finally:
        await channel.close()


async def test_an_admin_manages_only_its_own_workspace_keys(server: Server, alpha: Key, beta: Key) -> None:
    listed = (await server.http.get("/v1/api-keys", headers=beta.headers)).json()
    assert [k["key_id"] for k in listed["api_keys"]] == [beta.key_id]
    resp = await server.http.post(f"/v1/api-keys/{alpha.key_id}:revoke", headers=beta.headers)
    assert resp.status_code == 404
    created = await server.http.post(
        "/v1/api-keys", json={"name": "hooks", "scopes": ["write:events"]}, headers=beta.headers
    )
    assert created.json()["api_key"]["workspace"] == "beta"
    assert (await server.http.get("/sessions", headers=alpha.headers)).status_code == 200


async def test_tasks_stay_in_their_workspace(server: Server, alpha: Key, beta: Key) -> None:
    """Both task APIs (AGH's operator tasks, Agent Tracer's tasks) list and
    read only the key's workspace."""
    http = server.http
    agh = await http.post("/api/tasks", json={"title": "alpha's"}, headers=alpha.headers)
    assert agh.status_code == 201, agh.text
    agh_id = agh.json()["task"]["id"]
    ensure = {"runtimeSource": "claude-plugin", "runtimeSessionId": "cc-1", "title": "alpha's"}
    tracer = await http.post("/ingest/v1/sessions/ensure", json=ensure, headers=alpha.headers)
    assert tracer.status_code == 200, tracer.text
    tracer_id = tracer.json()["data"]["taskId"]

    assert (await http.get("/api/tasks", headers=beta.headers)).json()["tasks"] == []
    assert (await http.get("/api/v1/tasks", headers=beta.headers)).json()["data"]["tasks"] == []
    assert (await http.get(f"/api/tasks/{agh_id}", headers=beta.headers)).status_code == 404
    assert (await http.get(f"/api/v1/tasks/{tracer_id}", headers=beta.headers)).status_code == 404
    assert [t["id"] for t in (await http.get("/api/tasks", headers=alpha.headers)).json()["tasks"]] == [
        agh_id
    ]
    assert [
        t["id"] for t in (await http.get("/api/v1/tasks", headers=alpha.headers)).json()["data"]["tasks"]
    ] == [tracer_id]
