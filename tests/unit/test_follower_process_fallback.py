"""Where the system cannot hand a connection to another process (no Unix
SOCK_SEQPACKET sockets, as on macOS), the server starts without a follower
process and serves every follower itself."""

from __future__ import annotations

import socket

import httpx
import orjson
import pytest

from gateway.app import create_app
from gateway.followers import process
from service.app.assembly import Core
from service.base.config import Settings
from tests.conftest import TEST_HOST


def _unsupported() -> tuple[socket.socket, socket.socket]:
    raise OSError(93, "Protocol not supported")


async def test_without_seqpacket_sockets_the_server_serves_its_followers(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process, "pair", _unsupported)
    app = create_app(settings, service=Core, follower_process=True)
    async with app.router.lifespan_context(app):
        endpoints = app.bindings.fixed if app.bindings is not None else {}
        watch = [
            ep
            for verbs in endpoints.values()
            for ep in verbs.values()
            if ep.binding.path == process.FOLLOWED_PATH
        ]
        assert watch and all(ep.handoff is None for ep in watch)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{TEST_HOST}") as http:
            created = await http.post("/sessions", json={"session_id": "s", "session_name": "S"})
            assert created.status_code in (200, 201)
            read = await http.get("/v1/log:watch", params={"after_seq": 0, "stop_at_end": "true"})
            lines = [orjson.loads(line) for line in read.text.splitlines()]
            assert [x["result"]["entry"]["type"] for x in lines] == ["session.created"]
