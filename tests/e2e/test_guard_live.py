"""Safe on a laptop over real sockets: a page on another origin cannot open
either WebSocket feed, a DNS-rebound name reaches nothing, and the server's
own pages, the configured origins and programs (no Origin) keep working."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.conftest import LiveServer

WAIT = 3.0
FOREIGN = "http://evil.example"
CORS = "http://localhost:3000"  # in the default CORS_ORIGINS
FEEDS = {"/ws": "init", "/api/v1/ws": "snapshot"}


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as client:
        yield client


def connect(live_server: LiveServer, path: str, origin: str | None = None, host: str | None = None) -> Any:
    """A WebSocket to the live server, sent as a browser on `origin` would,
    under the host name `host` (the TCP connection still goes to the server)."""
    port = urlsplit(live_server.base_url).port
    url = f"ws://{host or f'127.0.0.1:{port}'}{path}"
    return websockets.connect(
        url,
        origin=origin,
        host="127.0.0.1",
        port=port,
        open_timeout=WAIT,
        close_timeout=1,
    )


async def first_message(live_server: LiveServer, path: str, origin: str | None = None) -> str:
    async with connect(live_server, path, origin) as ws:
        message = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    return str(message["type"])


async def refused(live_server: LiveServer, path: str, **kwargs: str) -> tuple[int, Any]:
    with pytest.raises(InvalidStatus) as caught:
        async with connect(live_server, path, **kwargs):
            pytest.fail("the handshake was accepted")
    response = caught.value.response
    return response.status_code, json.loads(response.body)


async def test_a_foreign_origin_cannot_open_either_feed(live_server: LiveServer) -> None:
    status, body = await refused(live_server, "/ws", origin=FOREIGN)
    assert status == 403 and "CORS_ORIGINS" in body["detail"]
    status, body = await refused(live_server, "/api/v1/ws", origin=FOREIGN)
    assert status == 403 and body["ok"] is False and "CORS_ORIGINS" in body["error"]["message"]
    status, _ = await refused(live_server, "/ws", origin="null")  # a sandboxed frame or a file: page
    assert status == 403


async def test_the_feeds_open_for_their_own_page_the_cors_origins_and_programs(
    live_server: LiveServer,
) -> None:
    for path, opening in FEEDS.items():
        for origin in (live_server.base_url, CORS, None):
            assert await first_message(live_server, path, origin) == opening, (path, origin)


async def test_a_rebound_host_name_reaches_no_feed(live_server: LiveServer) -> None:
    port = urlsplit(live_server.base_url).port
    for path in FEEDS:
        status, body = await refused(live_server, path, host=f"evil.example:{port}")
        assert status == 421, body
    status, body = await refused(
        live_server, "/ws", host=f"evil.example:{port}", origin=f"http://evil.example:{port}"
    )
    assert status == 421 and "AGENTPLANE_ALLOWED_HOSTS" in body["detail"]


async def test_a_rebound_host_name_reaches_no_route(http: httpx.AsyncClient) -> None:
    """Over the wire too, on the direct path (no Origin) and through the middleware."""
    for path in ("/sessions", "/v1/log:watch?after_seq=0&stop_at_end=true", "/docs", "/openapi.json"):
        resp = await http.get(path, headers={"Host": "evil.example"})
        assert resp.status_code == 421, (path, resp.text)
    resp = await http.post(
        "/sessions", json={"session_id": "s-1", "session_name": "S"}, headers={"Host": "evil.example"}
    )
    assert resp.status_code == 421
    assert (await http.get("/sessions")).json() == {"sessions": []}


async def test_a_cross_site_simple_post_over_the_wire_writes_nothing(http: httpx.AsyncClient) -> None:
    body = '{"session_id":"s-1","session_name":"S"}'
    resp = await http.post(
        "/sessions", content=body, headers={"Content-Type": "text/plain", "Origin": FOREIGN}
    )
    assert resp.status_code == 403
    assert (await http.get("/sessions")).json() == {"sessions": []}
    own = {"Content-Type": "text/plain", "Origin": str(http.base_url).rstrip("/")}
    assert (await http.post("/sessions", content=body, headers=own)).status_code == 200
    assert [s["session_id"] for s in (await http.get("/sessions")).json()["sessions"]] == ["s-1"]
