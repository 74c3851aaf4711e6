"""API keys on every surface, with AGENTPLANE_AUTH=keys.

The walkers go through every registered HTTP route and every RPC and prove
that each refuses a call without a key (401 / UNAUTHENTICATED), refuses a
key without the RPC's declared scope (403 / PERMISSION_DENIED) and admits a
key with it: a route or RPC added later cannot ship unprotected, and one
that declares no scope is refused to every key. Then the details: how a key
is presented, expiry, revocation through the cache, admin, rate limits, and
each family's rendering of 401, 403 and 429.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import grpc
import httpx
import pytest
from agentplane.v1 import apikeys_pb2, apikeys_pb2_grpc, log_pb2, log_pb2_grpc, runtime_pb2, runtime_pb2_grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status

from gateway.app import create_app, routes
from gateway.families import FAMILIES, Family
from gateway.httprule import Binding
from service.base.config import Settings
from service.base.errors import DomainError, PermissionDenied, Unauthenticated
from service.rpc import auth
from service.rpc.context import CallContext
from service.rpc.status import from_domain
from tests.auth_support import MISSING_KEY, Key, concrete, every_scope_but, make_key, with_keys
from tests.conftest import TEST_HOST, Server
from tests.grpc.test_runtime_grpc import assert_reason, failure


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_keys(settings)


@pytest.fixture
async def admin(server: Server) -> Key:
    return await make_key(server.core.store)


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def expected(family: Family, err: DomainError) -> tuple[int, Any]:
    status, body, _ = family.error(from_domain(err))
    return status, body


async def call_route(http: httpx.AsyncClient, b: Binding, headers: dict[str, str]) -> httpx.Response:
    kwargs: dict[str, Any] = {"headers": headers}
    if b.body:
        kwargs["json"] = {}
    return await http.request(b.verb, concrete(b.route_path), **kwargs)


# ---------------------------------------------------------------- walkers


def test_every_rpc_declares_a_known_scope() -> None:
    """A new RPC needs `option (agentplane.v1.required_scope) = "…";` with a
    scope of service.domain.apikeys.SCOPES; without it every key is refused."""
    from gateway.app import contract_services

    methods = [md for sd in contract_services() for md in sd.methods]
    assert methods
    assert auth.undeclared(methods) == []


def served(server: Server) -> list[tuple[Binding, Family]]:
    """The routes whose RPC the server implements. A proto may declare routes
    before its servicer is registered: those serve nothing (next test)."""
    return [(b, family) for b, family in routes() if b.path in server.core.dispatcher.methods]


async def test_routes_without_a_servicer_serve_nothing(server: Server) -> None:
    for b, _ in routes():
        if b.path not in server.core.dispatcher.methods:
            assert (await call_route(server.http, b, {})).status_code == 501, b.template


async def test_every_route_refuses_a_missing_or_unknown_key(
    server: Server, subtests: pytest.Subtests
) -> None:
    table = served(server)
    assert len(table) >= 15
    for b, family in table:
        for name, headers in [("no key", {}), ("unknown key", {"X-API-Key": "ap_unknown"})]:
            with subtests.test(f"{b.verb} {b.template}: {name}"):
                resp = await call_route(server.http, b, headers)
                err = (
                    Unauthenticated(MISSING_KEY, reason="API_KEY_MISSING")
                    if not headers
                    else Unauthenticated("Invalid API key", reason="API_KEY_INVALID")
                )
                assert (resp.status_code, resp.json()) == expected(family, err)
                assert resp.headers["www-authenticate"] == 'Bearer realm="agentplane"'


async def test_every_route_checks_its_declared_scope(server: Server, subtests: pytest.Subtests) -> None:
    for b, family in served(server):
        scope = auth.required_scope(b.method)
        with subtests.test(f"{b.verb} {b.template} needs {scope}"):
            others = await make_key(server.core.store, every_scope_but(scope))
            resp = await call_route(server.http, b, others.headers)
            err = PermissionDenied(
                f"Insufficient permissions. Required scope: {scope}",
                reason="SCOPE_MISSING",
                metadata={"required_scope": scope},
            )
            refused = expected(family, err)
            assert (resp.status_code, resp.json()) == refused
            if b.streaming:
                continue  # an admitted stream follows the log; the gRPC walker reads its first message
            allowed = await make_key(server.core.store, [scope])
            resp = await call_route(server.http, b, allowed.headers)
            # admitted: whatever the RPC then says (its own 4xx for an empty request included)
            assert (resp.status_code, resp.json()) != refused, resp.text


# The ErrorInfo reasons of the auth step.
AUTH_REASONS = {
    "API_KEY_MISSING",
    "API_KEY_INVALID",
    "API_KEY_REVOKED",
    "API_KEY_EXPIRED",
    "SCOPE_MISSING",
    "SCOPE_UNDECLARED",
    "RATE_LIMITED",
}


def auth_reason(err: grpc.aio.AioRpcError) -> str | None:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return None


def _rpc(channel: grpc.aio.Channel, m: Any, metadata: tuple[tuple[str, str], ...]) -> Any:
    path, request = m.path, m.input()
    if m.server_streaming:
        call = channel.unary_stream(path, request_serializer=type(request).SerializeToString)(
            request, metadata=metadata
        )
        return call.read()
    return channel.unary_unary(path, request_serializer=type(request).SerializeToString)(
        request, metadata=metadata
    )


async def test_every_rpc_refuses_a_missing_key_and_checks_its_scope(
    server: Server, subtests: pytest.Subtests
) -> None:
    channel = server.channel()
    try:
        methods = list(server.core.dispatcher.methods.values())
        assert len(methods) >= 15
        for m in methods:
            scope = auth.required_scope(m.descriptor)
            with subtests.test(m.path):
                f = await failure(_rpc(channel, m, ()))
                assert_reason(f, grpc.StatusCode.UNAUTHENTICATED, "API_KEY_MISSING", MISSING_KEY)
                others = await make_key(server.core.store, every_scope_but(scope))
                f = await failure(_rpc(channel, m, others.metadata))
                assert_reason(f, grpc.StatusCode.PERMISSION_DENIED, "SCOPE_MISSING")
                assert dict(f.info.metadata) == {"required_scope": scope}  # type: ignore[union-attr]
                allowed = await make_key(server.core.store, [scope])
                try:
                    await _rpc(channel, m, allowed.metadata)
                except grpc.aio.AioRpcError as err:
                    # admitted: the RPC may refuse an empty request, but not for the key
                    assert auth_reason(err) not in AUTH_REASONS, err
    finally:
        await channel.close()


# Routes the gateway serves outside the contract that need no key: the
# health check, the API's own description, and the web console's files (no
# data: the console reads through the generated routes, with the user's key).
# Everything else either is a generated route (walked above) or a WebSocket
# (walked below).
PUBLIC_ROUTES = {"/healthz", "/openapi.json", "/docs", "/", "/console"}
# Routes outside the contract that check a key themselves (tests/contract/test_metrics_http.py).
SCOPED_ROUTES = {"/metrics"}


async def test_no_other_http_route_is_open(server: Server) -> None:
    generated = {b.route_path for b, _ in routes()}
    for route in server.app.routes:
        path = getattr(route, "path", "")
        if (
            path in generated
            or path in PUBLIC_ROUTES | SCOPED_ROUTES
            or type(route).__name__ == "APIWebSocketRoute"
        ):
            continue
        pytest.fail(f"{path} is neither generated from the protos nor declared public: it bypasses auth")


async def test_a_method_without_a_scope_is_refused_even_to_admin(server: Server, admin: Key) -> None:
    check = server.core.auth.interceptors[0]
    undeclared = health_pb2.DESCRIPTOR.services_by_name["Health"].methods_by_name["Check"]
    ctx = CallContext("/grpc.health.v1.Health/Check", {"x-api-key": admin.secret})
    with pytest.raises(PermissionDenied) as refused:
        await check(ctx, undeclared)
    assert refused.value.reason == "SCOPE_UNDECLARED"


# ---------------------------------------------------------------- keys


async def test_how_a_key_is_presented(server: Server) -> None:
    key = await make_key(server.core.store, ["read:sessions"])
    for headers, status in [
        ({"X-API-Key": key.secret}, 200),
        ({"x-api-key": f"  {key.secret} "}, 200),
        ({"Authorization": f"Bearer {key.secret}"}, 200),
        ({"Authorization": f"bearer {key.secret}"}, 200),
        ({"Authorization": f"Basic {key.secret}"}, 401),
        ({"Authorization": "Bearer"}, 401),
        ({"X-API-Key": key.secret[:-1]}, 401),
        ({"X-API-Key": "x" * 10_000}, 401),
        ({"X-API-Key": "ключ".encode()}, 401),  # not ASCII: never a 500
    ]:
        resp = await server.http.get("/sessions", headers=headers)
        assert resp.status_code == status, (headers, resp.text)
    channel = server.channel()
    try:
        stub = runtime_pb2_grpc.SessionServiceStub(channel)
        for metadata in [(("x-api-key", key.secret),), (("authorization", f"Bearer {key.secret}"),)]:
            assert await stub.ListSessions(runtime_pb2.ListSessionsRequest(), metadata=metadata) == (
                runtime_pb2.ListSessionsResponse()
            )
    finally:
        await channel.close()


async def test_expired_and_revoked_keys_are_401(server: Server, admin: Key) -> None:
    expired = await make_key(server.core.store, ["read:sessions"], expires_in=timedelta(microseconds=1))
    resp = await server.http.get("/sessions", headers=expired.headers)
    assert (resp.status_code, resp.json()) == (401, {"detail": "API key has expired"})
    revoked = await make_key(server.core.store, ["read:sessions"])
    assert (await server.http.get("/sessions", headers=revoked.headers)).status_code == 200
    # revoked through the running server's API: refused at once
    resp = await server.http.post(f"/v1/api-keys/{revoked.key_id}:revoke", headers=admin.headers)
    assert resp.status_code == 200, resp.text
    resp = await server.http.get("/sessions", headers=revoked.headers)
    assert (resp.status_code, resp.json()) == (401, {"detail": "API key has been revoked"})


async def test_a_revocation_elsewhere_applies_within_the_cache_ttl(server: Server) -> None:
    """Another process (the CLI, another replica) revokes in the database: this
    server keeps its cached answer until the TTL passes, then refuses the key."""
    from service.domain import apikeys

    clock = Clock()
    cache = server.core.auth.keys
    cache.clock = clock
    key = await make_key(server.core.store, ["read:sessions"])
    reads = 0
    real_read = server.core.store.read

    async def counting_read(fn: Any) -> Any:
        nonlocal reads
        reads += 1
        return await real_read(fn)

    server.core.store.read = counting_read  # type: ignore[method-assign]
    for _ in range(3):
        assert (await server.http.get("/sessions", headers=key.headers)).status_code == 200
    lookups = reads - 3  # one read per ListSessions itself
    assert lookups == 1  # the key was looked up once, then served from the cache

    await apikeys.revoke_key(server.core.store, None, key.key_id)  # as `agentplane keys revoke` does
    clock.now += cache.ttl - 0.01
    assert (await server.http.get("/sessions", headers=key.headers)).status_code == 200
    clock.now += 0.02
    resp = await server.http.get("/sessions", headers=key.headers)
    assert (resp.status_code, resp.json()) == (401, {"detail": "API key has been revoked"})


async def test_an_open_stream_ends_when_its_key_is_revoked(server: Server) -> None:
    """A stream re-checks its key (through the cache) as it sends messages;
    an idle one sends heartbeats, so it is re-checked too."""
    from service.domain import apikeys

    clock = Clock()
    server.core.auth.keys.clock = clock
    key = await make_key(server.core.store, ["read:events"])
    channel = server.channel()
    try:
        stream = log_pb2_grpc.LogServiceStub(channel).WatchLog(
            log_pb2.WatchLogRequest(after_seq=-1), metadata=key.metadata
        )
        assert (await stream.read()).HasField("heartbeat")
        await apikeys.revoke_key(server.core.store, None, key.key_id)  # elsewhere: the cache still has it
        assert (await stream.read()).entry.type == "api_key.revoked"
        clock.now += server.core.auth.keys.ttl + auth.RECHECK_SECONDS
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            while True:
                await stream.read()
        assert (ended.value.code(), ended.value.details()) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "API key has been revoked",
        )
    finally:
        await channel.close()


async def test_admin_may_call_everything(server: Server, admin: Key) -> None:
    resp = await server.http.post(
        "/sessions", json={"session_id": "s", "session_name": "S"}, headers=admin.headers
    )
    assert resp.status_code == 200
    resp = await server.http.get(
        "/v1/log:watch", params={"after_seq": 0, "stop_at_end": True}, headers=admin.headers
    )
    assert resp.status_code == 200
    assert [json.loads(line)["result"]["entry"]["type"] for line in resp.text.splitlines()] == [
        "api_key.created",
        "session.created",
    ]


# ---------------------------------------------------------------- families

FAMILY_ROUTES = [
    # (family, method, path, body)
    ("agent-runtime", "GET", "/sessions", None),
    ("native", "GET", "/v1/api-keys", None),
    ("trenchcoat", "POST", "/api/v1/events", {"events": []}),
]
SCOPE_OF = {"/sessions": "read:sessions", "/v1/api-keys": "admin", "/api/v1/events": "write:events"}


def family_body(
    family: str, code: int, reason: str, message: str, metadata: dict[str, str] | None = None
) -> Any:
    """401/403/429 as each family writes them (seed 004, grpc-gateway, seed 002)."""
    if family == "agent-runtime":
        return {"detail": message}
    if family == "trenchcoat":
        codes = {16: "UNAUTHORIZED", 7: "FORBIDDEN", 8: "RATE_LIMITED"}
        return {"error": {"code": codes[code], "message": message}}
    info: dict[str, Any] = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "agentplane.dev",
    }
    if metadata:
        info["metadata"] = metadata
    details = [info]
    if metadata and "retry_after_seconds" in metadata:
        delay = f"{metadata['retry_after_seconds']}s"
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retry_delay": delay})
    return {"code": code, "message": message, "details": details}


async def test_each_family_renders_401_and_403(server: Server, subtests: pytest.Subtests) -> None:
    for family, method, path, body in FAMILY_ROUTES:
        scope = SCOPE_OF[path]
        with subtests.test(family):
            resp = await server.http.request(method, path, json=body)
            assert (resp.status_code, resp.json()) == (
                401,
                family_body(family, 16, "API_KEY_MISSING", MISSING_KEY),
            )
            key = await make_key(server.core.store, every_scope_but(scope))
            resp = await server.http.request(method, path, json=body, headers=key.headers)
            message = f"Insufficient permissions. Required scope: {scope}"
            assert (resp.status_code, resp.json()) == (
                403,
                family_body(family, 7, "SCOPE_MISSING", message, {"required_scope": scope}),
            )


async def test_the_key_is_checked_before_the_body(server: Server) -> None:
    """As upstream: 401 (or 403) before 400 or 413, whatever the body."""
    key = await make_key(server.core.store, ["read:events"])
    huge = b'{"events": "' + b"x" * (server.core.settings.max_body_bytes + 1) + b'"}'
    for raw in (b"{not json", b"[]", huge):
        resp = await server.http.post("/api/v1/events", content=raw)
        assert resp.status_code == 401
        resp = await server.http.post("/api/v1/events", content=raw, headers=key.headers)
        assert resp.status_code == 403
    writer = await make_key(server.core.store, ["write:events"])
    assert (
        await server.http.post("/api/v1/events", content=b"{not json", headers=writer.headers)
    ).status_code == 400
    assert (await server.http.post("/api/v1/events", content=huge, headers=writer.headers)).status_code == 413


async def test_rate_limits_each_family_and_grpc(server: Server, subtests: pytest.Subtests) -> None:
    clock = Clock()
    limiter = auth.RateLimiter(2, clock=clock)
    server.core.auth.interceptors[0].limiter = limiter  # type: ignore[attr-defined]
    message = "Too many requests: this key may make 2 requests a minute"
    for family, method, path, body in FAMILY_ROUTES:
        with subtests.test(family):
            key = await make_key(server.core.store, [SCOPE_OF[path]])
            for _ in range(2):
                assert (
                    await server.http.request(method, path, json=body, headers=key.headers)
                ).status_code != 429
            resp = await server.http.request(method, path, json=body, headers=key.headers)
            limited = family_body(family, 8, "RATE_LIMITED", message, {"retry_after_seconds": "30"})
            assert (resp.status_code, resp.json()) == (429, limited)
            assert resp.headers["retry-after"] == "30"
    key = await make_key(server.core.store, ["read:sessions"])
    channel = server.channel()
    try:
        stub = runtime_pb2_grpc.SessionServiceStub(channel)
        for _ in range(2):
            await stub.ListSessions(runtime_pb2.ListSessionsRequest(), metadata=key.metadata)
        f = await failure(stub.ListSessions(runtime_pb2.ListSessionsRequest(), metadata=key.metadata))
        assert_reason(f, grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED", message)
        # a minute's allowance comes back over the minute
        clock.now += 30
        await stub.ListSessions(runtime_pb2.ListSessionsRequest(), metadata=key.metadata)
    finally:
        await channel.close()


# ---------------------------------------------------------------- ApiKeyService


async def test_api_key_service(server: Server, admin: Key) -> None:
    channel = server.channel()
    try:
        stub = apikeys_pb2_grpc.ApiKeyServiceStub(channel)
        created = await stub.CreateApiKey(
            apikeys_pb2.CreateApiKeyRequest(
                name="hooks",
                scopes=["write:events", "read:sessions"],
                expires_in=duration_pb2.Duration(seconds=3600),
            ),
            metadata=admin.metadata,
        )
        new = created.api_key
        assert (new.name, list(new.scopes), new.workspace) == (
            "hooks",
            ["write:events", "read:sessions"],
            "default",
        )
        assert created.key.startswith("ap_") and len(created.key) == 43
        assert new.prefix == created.key[:11]
        assert new.expires_at.ToSeconds() - new.created_at.ToSeconds() == 3600
        assert not new.HasField("revoked_at")
        assert (await server.http.get("/sessions", headers={"X-API-Key": created.key})).status_code == 200

        listed = await stub.ListApiKeys(apikeys_pb2.ListApiKeysRequest(), metadata=admin.metadata)
        assert [k.key_id for k in listed.api_keys] == [admin.key_id, new.key_id]
        assert created.key not in str(listed)  # never a secret

        revoked = await stub.RevokeApiKey(
            apikeys_pb2.RevokeApiKeyRequest(key_id=new.key_id), metadata=admin.metadata
        )
        assert revoked.api_key.HasField("revoked_at")
        assert (await server.http.get("/sessions", headers={"X-API-Key": created.key})).status_code == 401

        f = await failure(
            stub.RevokeApiKey(apikeys_pb2.RevokeApiKeyRequest(key_id="key_nope"), metadata=admin.metadata)
        )
        assert_reason(f, grpc.StatusCode.NOT_FOUND, "API_KEY_NOT_FOUND")
        f = await failure(
            stub.CreateApiKey(
                apikeys_pb2.CreateApiKeyRequest(name="x", scopes=["root"]), metadata=admin.metadata
            )
        )
        assert_reason(f, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_API_KEY_REQUEST")
        assert f.violations[0][0] == "scopes[0]"
        writer = await make_key(server.core.store, ["write:events"])
        f = await failure(stub.ListApiKeys(apikeys_pb2.ListApiKeysRequest(), metadata=writer.metadata))
        assert_reason(f, grpc.StatusCode.PERMISSION_DENIED, "SCOPE_MISSING")
    finally:
        await channel.close()


# ---------------------------------------------------------------- gateway-only


@pytest.fixture
async def gateway_only(server: Server, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway run apart, calling the server over gRPC: keys are forwarded as metadata."""
    app = create_app(settings, upstream=server.grpc_target)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=f"http://{TEST_HOST}") as http,
    ):
        yield http


async def test_a_gateway_run_apart_forwards_the_key(server: Server, gateway_only: httpx.AsyncClient) -> None:
    key = await make_key(server.core.store, ["read:sessions"])
    assert (await gateway_only.get("/sessions", headers=key.headers)).json() == {"sessions": []}
    assert (
        await gateway_only.get("/sessions", headers={"Authorization": f"Bearer {key.secret}"})
    ).status_code == 200
    resp = await gateway_only.get("/sessions")
    assert (resp.status_code, resp.json()) == (401, {"detail": MISSING_KEY})
    resp = await gateway_only.post("/api/v1/events", json={"events": []}, headers=key.headers)
    assert (resp.status_code, resp.json()["error"]["code"]) == (403, "FORBIDDEN")


def test_family_table_covers_every_family() -> None:
    assert {f.name for f in FAMILIES.values()} >= {"agent-runtime", "native", "trenchcoat"}
