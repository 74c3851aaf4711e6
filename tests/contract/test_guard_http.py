"""Safe on a laptop (gateway.guard) over HTTP: the server answers only to the
host names it serves, and a web page on another origin can neither write nor
stream, while hooks, curl and programs (no Origin) are unaffected."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from service.app.assembly import Core
from service.base.config import Settings
from tests.agh_support import identity, log_types
from tests.channels_support import CHANNEL
from tests.conftest import TEST_HOST, Server

FOREIGN = "http://evil.example"
SAME = f"http://{TEST_HOST}"
CORS = "http://localhost:5173"  # in the default CORS_ORIGINS
SESSION = {"session_id": "s-1", "session_name": "My Session"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.allowed_hosts = [TEST_HOST, ".example.test", "devbox.lan"]
    return settings


def simple_post(origin: str | None = FOREIGN, **headers: str) -> dict[str, str]:
    """The headers of a browser's "simple" cross-site POST: no preflight precedes it."""
    out = {"Content-Type": "text/plain", **headers}
    if origin is not None:
        out["Origin"] = origin
    return out


def refused_origin(resp: httpx.Response) -> Any:
    assert resp.status_code == 403, resp.text
    assert "access-control-allow-origin" not in resp.headers
    assert "CORS_ORIGINS" in resp.text and FOREIGN in resp.text
    return resp.json()


def misdirected(resp: httpx.Response) -> None:
    assert resp.status_code == 421, resp.text
    assert "AGENTPLANE_ALLOWED_HOSTS" in resp.json()["detail"]


# ------------------------------------------------------------------ Origin


async def test_a_cross_site_simple_post_writes_nothing(server: Server) -> None:
    http = server.http
    body = '{"session_id":"s-1","session_name":"My Session"}'
    detail = refused_origin(await http.post("/sessions", content=body, headers=simple_post()))["detail"]
    assert "evil.example" in detail
    assert (await http.get("/sessions")).json() == {"sessions": []}
    assert await log_types(server) == []


async def test_every_family_refuses_a_cross_site_write_in_its_own_body(server: Server) -> None:
    http = server.http
    tracer = refused_origin(
        await http.post(
            "/ingest/v1/sessions/ensure",
            content='{"runtimeSource":"claude-plugin","runtimeSessionId":"cc-1","title":"T"}',
            headers=simple_post(),
        )
    )
    assert tracer["ok"] is False and set(tracer["error"]) >= {"code", "message"}
    trenchcoat = refused_origin(
        await http.post("/api/v1/events", content='{"events":[]}', headers=simple_post())
    )
    assert set(trenchcoat["error"]) >= {"code", "message"}
    native = refused_origin(
        await http.post("/api/v1/executions", content='{"name":"x"}', headers=simple_post())
    )
    assert native["code"] == 7
    assert native["details"][0]["reason"] == "ORIGIN_NOT_ALLOWED"
    assert await log_types(server) == []


async def test_a_cross_site_delete_leaves_the_session(server: Server) -> None:
    http = server.http
    assert (await http.post("/sessions", json=SESSION)).status_code == 200
    before = await log_types(server)
    refused_origin(await http.delete("/sessions/s-1", headers={"Origin": FOREIGN}))
    assert (await http.get("/sessions/s-1")).status_code == 200
    assert await log_types(server) == before


async def test_the_page_of_the_server_itself_and_the_cors_origins_may_write(server: Server) -> None:
    http = server.http
    for n, origin in enumerate((SAME, f"{SAME}:80", CORS)):
        body = f'{{"session_id":"s-{n}","session_name":"S"}}'
        resp = await http.post("/sessions", content=body, headers=simple_post(origin))
        assert resp.status_code == 200, (origin, resp.text)
    assert resp.headers["access-control-allow-origin"] == CORS
    listed = (await http.get("/sessions")).json()["sessions"]
    assert sorted(s["session_id"] for s in listed) == ["s-0", "s-1", "s-2"]
    assert await log_types(server) == ["session.created"] * 3


async def test_curl_without_origin_or_content_type_still_writes(server: Server) -> None:
    """`curl -d` sends form encoding and no Origin: hooks and scripts are not browsers."""
    resp = await server.http.post(
        "/sessions",
        content='{"session_id":"s-1","session_name":"My Session"}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status_code == 200, resp.text
    assert await log_types(server) == ["session.created"]


async def test_a_cross_site_page_cannot_open_a_stream(server: Server) -> None:
    http = server.http
    assert (await http.post("/sessions", json=SESSION)).status_code == 200
    watch = {"after_seq": "0", "stop_at_end": "true"}
    native = refused_origin(await http.get("/v1/log:watch", params=watch, headers={"Origin": FOREIGN}))
    assert native["details"][0]["reason"] == "ORIGIN_NOT_ALLOWED"
    stream = f"/api/agent/channels/{CHANNEL}/stream"
    refused_origin(await http.get(stream, headers={"Origin": FOREIGN, **identity("bob")}))
    allowed = await http.get("/v1/log:watch", params=watch, headers={"Origin": SAME})
    assert allowed.status_code == 200 and '"session.created"' in allowed.text


async def test_a_cross_site_read_is_answered_without_cors_consent(server: Server) -> None:
    """A plain GET is not refused: the browser keeps its answer from the page,
    since it carries no Access-Control-Allow-Origin for a foreign origin."""
    resp = await server.http.get("/sessions", headers={"Origin": FOREIGN})
    assert resp.status_code == 200
    assert "access-control-allow-origin" not in resp.headers


async def test_a_preflight_from_an_allowed_origin_works(server: Server) -> None:
    preflight = {"Origin": CORS, "Access-Control-Request-Method": "POST"}
    resp = await server.http.options("/sessions", headers=preflight)
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == CORS
    assert "POST" in resp.headers["access-control-allow-methods"]
    foreign = await server.http.options("/sessions", headers={**preflight, "Origin": FOREIGN})
    assert "access-control-allow-origin" not in foreign.headers


# ------------------------------------------------------------------ Host


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:8765",
        "LocalHost:8765",
        "127.0.0.1:8765",
        "[::1]:8765",
        "app.localhost:8765",
        "192.168.1.20:8765",
        "devbox.lan",
        "example.test",
        "api.example.test:8443",
    ],
)
async def test_loopback_ip_and_configured_names_are_served(server: Server, host: str) -> None:
    resp = await server.http.get("/sessions", headers={"Host": host})
    assert (resp.status_code, resp.json()) == (200, {"sessions": []})


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "localhost.evil.example", "lan"])
async def test_a_foreign_host_is_refused_everywhere(server: Server, host: str) -> None:
    """A DNS-rebound name reaches no route: the generated ones (with and
    without an Origin), the console, the docs, the OpenAPI document, the health check."""
    http = server.http
    foreign = {"Host": host}
    misdirected(await http.get("/sessions", headers=foreign))
    misdirected(await http.get("/sessions", headers={**foreign, "Origin": f"http://{host}"}))
    for path in ("/", "/console/js/main.js", "/docs", "/openapi.json", "/healthz", "/no-such-route"):
        misdirected(await http.get(path, headers=foreign))
    misdirected(await http.post("/sessions", json=SESSION, headers=foreign))
    tracer = await http.get("/api/v1/tasks", headers=foreign)
    assert tracer.status_code == 421 and tracer.json()["ok"] is False
    assert await log_types(server) == []


# ------------------------------------------------------------------ default off loopback


@pytest.fixture
async def keyed(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway that requires API keys and was told no host names."""
    settings.auth, settings.allowed_hosts = "keys", None
    app = create_app(settings, service=Core)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://agentplane.example.org"
        ) as http,
    ):
        yield http


async def test_with_keys_required_any_host_is_served(keyed: httpx.AsyncClient) -> None:
    """A rebound page has no key to send: the key, not the name, is the guard."""
    resp = await keyed.get("/sessions")
    assert resp.status_code == 401  # served, and refused for want of a key
    refused_origin(await keyed.post("/sessions", json=SESSION, headers={"Origin": FOREIGN}))


def test_allowed_hosts_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTPLANE_ALLOWED_HOSTS", raising=False)
    assert Settings.from_env().allowed_hosts is None
    monkeypatch.setenv("AGENTPLANE_ALLOWED_HOSTS", "")
    assert Settings.from_env().allowed_hosts is None
    monkeypatch.setenv("AGENTPLANE_ALLOWED_HOSTS", " devbox.lan, .example.test ,")
    assert Settings.from_env().allowed_hosts == ["devbox.lan", ".example.test"]
    monkeypatch.setenv("AGENTPLANE_ALLOWED_HOSTS", "*")
    assert Settings.from_env().allowed_hosts == ["*"]


async def test_a_listed_origin_may_fetch_with_credentials(server: Server) -> None:
    """Upstream Agent Tracer's web app fetches with `credentials: "include"`:
    the browser drops the answer unless it allows credentials for that origin."""
    preflight = {"Origin": CORS, "Access-Control-Request-Method": "GET"}
    resp = await server.http.options("/api/v1/tasks", headers=preflight)
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == CORS
    assert resp.headers["access-control-allow-credentials"] == "true"
    read = await server.http.get("/api/v1/tasks", headers={"Origin": CORS, "Cookie": "a=b"})
    assert read.status_code == 200
    assert read.headers["access-control-allow-origin"] == CORS
    assert read.headers["access-control-allow-credentials"] == "true"
    foreign = await server.http.options("/api/v1/tasks", headers={**preflight, "Origin": FOREIGN})
    assert foreign.status_code == 400 and "access-control-allow-origin" not in foreign.headers


@pytest.fixture
async def any_origin(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    settings.cors_origins = ["*"]
    app = create_app(settings, service=Core)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{TEST_HOST}") as http,
    ):
        yield http


async def test_any_origin_never_gets_credentials(any_origin: httpx.AsyncClient) -> None:
    """`CORS_ORIGINS=*` lets any page read without credentials; it never
    reflects an arbitrary origin with credentials (any site could then read as the user)."""
    preflight = {"Origin": FOREIGN, "Access-Control-Request-Method": "GET"}
    resp = await any_origin.options("/api/v1/tasks", headers=preflight)
    assert resp.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in resp.headers
    read = await any_origin.get("/api/v1/tasks", headers={"Origin": FOREIGN, "Cookie": "a=b"})
    assert "access-control-allow-credentials" not in read.headers
