"""API keys and workspaces on the WebSocket feeds, over a real socket, with
AGENTPLANE_AUTH=keys: every WebSocket route refuses the handshake without a
key (HTTP 401 in its family's body, never an open socket), and a feed shows
only its key's workspace."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from service.base.config import Settings
from tests.auth_support import MISSING_KEY, Key, concrete, make_key, with_keys
from tests.conftest import LiveServer
from tests.e2e.test_websocket import WAIT, assert_silent, recv, without_seq

SID = "550e8400-e29b-41d4-a716-446655440000"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_keys(settings)


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as client:
        yield client


async def key_for(live_server: LiveServer, workspace: str, scopes: tuple[str, ...] = ("admin",)) -> Key:
    return await make_key(live_server.app.state.core.store, scopes, workspace)


def connect(live_server: LiveServer, path: str = "/ws", key: Key | None = None) -> Any:
    headers = key.headers if key else None
    return websockets.connect(
        f"{live_server.ws_url}{path}", additional_headers=headers, open_timeout=WAIT, close_timeout=1
    )


async def refused(live_server: LiveServer, path: str, key: Key | None = None) -> tuple[int, Any]:
    with pytest.raises(InvalidStatus) as caught:
        async with connect(live_server, path, key):
            pass
    response = caught.value.response
    return response.status_code, json.loads(response.body)


async def test_every_websocket_refuses_a_missing_key(
    live_server: LiveServer, subtests: pytest.Subtests
) -> None:
    sockets = [r.path for r in live_server.app.routes if type(r).__name__ == "APIWebSocketRoute"]
    assert "/ws" in sockets
    for path in sockets:
        with subtests.test(path):
            status, body = await refused(live_server, concrete(path))
            assert status == 401
            assert MISSING_KEY in json.dumps(body)


async def test_the_runtime_feed_checks_its_scopes(live_server: LiveServer) -> None:
    assert await refused(live_server, "/ws") == (401, {"detail": MISSING_KEY})
    sessions_only = await key_for(live_server, "default", ("read:sessions",))
    assert await refused(live_server, "/ws", sessions_only) == (
        403,
        {"detail": "Insufficient permissions. Required scope: read:events"},
    )
    reader = await key_for(live_server, "default", ("read:sessions", "read:events"))
    async with connect(live_server, "/ws", reader) as ws:
        assert await recv(ws) == {"type": "init", "sessions": []}


async def test_a_feed_shows_only_its_workspace(live_server: LiveServer, http: httpx.AsyncClient) -> None:
    alpha = await key_for(live_server, "alpha")
    beta = await key_for(live_server, "beta")
    created = await http.post(
        "/sessions", json={"session_id": "a-1", "session_name": "A"}, headers=alpha.headers
    )
    a1 = created.json()["session"]
    async with connect(live_server, "/ws", alpha) as alpha_ws, connect(live_server, "/ws", beta) as beta_ws:
        assert await recv(alpha_ws) == {"type": "init", "sessions": [a1]}
        assert await recv(beta_ws) == {"type": "init", "sessions": []}

        telemetry = {
            "events": [
                {"event_type": "session_start", "session_id": SID, "timestamp": "2025-01-01T00:00:00Z"}
            ]
        }
        assert (await http.post("/api/v1/events", json=telemetry, headers=alpha.headers)).status_code == 200
        resp = await http.post(
            "/sessions", json={"session_id": "b-1", "session_name": "B"}, headers=beta.headers
        )
        b1 = resp.json()["session"]

        alpha_session = {
            "session_id": SID,
            "session_name": "",
            "status": "running",
            "created_at": "2025-01-01T00:00:00Z",
            "project_dir": None,
            "agent_name": None,
            "last_resumed_at": None,
        }
        assert without_seq([await recv(alpha_ws)]) == [{"type": "session_created", "session": alpha_session}]
        assert without_seq([await recv(beta_ws)]) == [{"type": "session_created", "session": b1}]
        await assert_silent(alpha_ws)
        await assert_silent(beta_ws)


async def test_a_feed_closes_when_its_key_is_revoked(live_server: LiveServer) -> None:
    from service.domain import apikeys

    core = live_server.app.state.core
    now = [1000.0]
    core.auth.keys.clock = lambda: now[0]
    key = await key_for(live_server, "default", ("read:sessions", "read:events"))
    async with connect(live_server, "/ws", key) as ws:
        assert await recv(ws) == {"type": "init", "sessions": []}
        await apikeys.revoke_key(core.store, None, key.key_id)
        now[0] += core.auth.keys.ttl + 1
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), WAIT)
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "API key has been revoked")  # type: ignore[union-attr]
