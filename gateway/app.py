"""The FastAPI app: one route per HttpRule binding of every service in the
contract, the WebSocket feeds, and the OpenAPI document."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

import agentplane.v1
import grpc
from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.responses import JSONResponse
from google.protobuf.descriptor import ServiceDescriptor
from prometheus_client.metrics_core import Metric
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Message, Receive, Scope, Send

from gateway import access_log, console, live, openapi
from gateway.families import Family, OtlpFamily, family_of
from gateway.followers.process import FOLLOWED_PATH, FollowerProcess
from gateway.guard import PLAIN_FAMILY, Guard, Screen
from gateway.httprule import Binding, bindings
from gateway.otlp import OtlpEndpoint
from gateway.routes import BindingRouter, Endpoint, forwarded_metadata
from gateway.transport import ChannelTransport, InProcessTransport, Transport
from service.base import metrics
from service.base.config import Settings
from service.base.errors import DomainError
from service.rpc import limits
from service.rpc.admission import ByteBudget
from service.rpc.dispatch import Dispatcher
from service.rpc.service_config import service_config
from service.rpc.status import from_domain
from service.store.notifier import Notifier

log = logging.getLogger("agentplane")

# The Prometheus text format, version 0.0.4.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

DESCRIPTION = (
    "One control plane for coding-agent runtimes. Every route is a google.api.http binding on a gRPC "
    "method of the agentplane.v1 protos; the same operations are served on gRPC."
)


def contract_services() -> list[ServiceDescriptor]:
    """Every service of the agentplane.v1 contract (each generated module is
    imported), then those the service configs bind (OTLP's collector services)."""
    found: list[ServiceDescriptor] = []
    for mod in sorted(pkgutil.iter_modules(agentplane.v1.__path__), key=lambda m: m.name):
        if mod.name.endswith("_pb2"):
            module = importlib.import_module(f"agentplane.v1.{mod.name}")
            found += list(module.DESCRIPTOR.services_by_name.values())
    return found + service_config().services()


def routes() -> list[tuple[Binding, Family]]:
    out: list[tuple[Binding, Family]] = []
    seen: dict[tuple[str, str], str] = {}
    for sd in contract_services():
        family = family_of(sd)
        if family is None:
            continue
        for b in bindings([sd]):
            key = (b.verb, b.route_path)
            if key in seen:
                raise ValueError(
                    f"{b.verb} {b.template} is bound twice: {seen[key]} and {b.method.full_name}"
                )
            seen[key] = b.method.full_name
            out.append((b, family))
    return out


class GatewayApp(FastAPI):
    """The FastAPI app, with a direct path for the generated routes.

    A generated route asked for without an Origin header (hooks, CLIs,
    programs) goes straight to its endpoint, skipping the framework's
    middleware layers (~35 µs a request). Browser requests, WebSockets and
    FastAPI's own routes take the full stack, where the same dispatcher
    sits behind CORS. Every request, on either path, is first screened by
    gateway.guard (Host allowlist, Origin check), and every HTTP request is
    logged and counted here (gateway.access_log): one entry layer, not a
    middleware per concern."""

    bindings: BindingRouter | None = None
    guard: Guard | None = None
    # Log every request, not only refusals and failures (AGENTPLANE_DEBUG).
    log_every_request = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            started = time.perf_counter()
            status = 0

            async def answer(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await self._screened(scope, receive, answer)
            except BaseException:
                status = status or 500  # what the server answers for an unhandled error
                raise
            finally:
                access_log.finish(scope, status, started, self.log_every_request)
        elif kind == "websocket":
            metrics.open_streams["websocket"] += 1
            try:
                await self._screened(scope, receive, send)
            finally:
                metrics.open_streams["websocket"] -= 1
        else:
            await super().__call__(scope, receive, send)

    async def _screened(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.guard is not None:
            # The Host and Origin checks (gateway.guard), on every path, this one included.
            screened = await self.guard.screen(scope, receive, send)
            if screened is Screen.REFUSED:
                return
            if (
                screened is Screen.PLAIN
                and self.bindings is not None
                and scope["type"] == "http"
                and await self.bindings.dispatch(scope, receive, send)
            ):
                return
        await super().__call__(scope, receive, send)


class MetricsPage(Protocol):
    """The service's /metrics page (service.app.metrics)."""

    # What features add to the page: async functions returning metric families.
    hooks: list[Callable[[], Awaitable[Iterable[Metric]]]]

    async def render(self, metadata: Mapping[str, str]) -> bytes: ...


class InProcessService(Protocol):
    """The service a gateway runs in its own process (service.app.assembly.Core):
    started and stopped with the app; the gateway calls its dispatcher and
    serves its metrics."""

    dispatcher: Dispatcher

    @property
    def metrics(self) -> MetricsPage: ...

    @property
    def notifier(self) -> Notifier:
        """The log's head, published after each commit."""

    def going_away(self) -> None:
        """Shutdown has begun: end the endless streams (with their cursors)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def create_app(
    settings: Settings,
    *,
    service: Callable[[Settings, ByteBudget], InProcessService] | None = None,
    upstream: str | None = None,
    follower_process: bool = False,
) -> FastAPI:
    """The gateway: either running `service(settings)` in the same process
    (the entry point passes the assembly's Core, gRPC listener included), or
    calling the gRPC server at `upstream`. `follower_process`: hand live log
    followers to a child process (gateway.followers; only under uvicorn,
    whose connections can be handed over, and with `settings.follower_process`)."""
    if (service is None) == (upstream is None):
        raise ValueError("create_app needs exactly one of service= and upstream=")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if upstream:
            channel = grpc.aio.insecure_channel(upstream)
            app.state.transport = ChannelTransport(channel)
            try:
                yield
            finally:
                await channel.close()
            return
        assert service is not None
        core = service(settings, budget)
        followers = None
        if follower_process and settings.follower_process:
            followers = FollowerProcess(settings, core.notifier)
            if not await followers.start():
                followers = None
        await core.start()
        app.state.core = core
        app.state.transport = InProcessTransport(core.dispatcher)
        if followers is not None:
            followers.open()
            core.metrics.hooks.append(followers.metrics)
            for endpoint in endpoints:
                if endpoint.binding.path == FOLLOWED_PATH:
                    endpoint.handoff = followers

        def going_away() -> None:
            core.going_away()
            if followers is not None:
                followers.going_away()

        app.state.going_away = going_away
        try:
            yield
        finally:
            if followers is not None:
                await followers.stop()
            await core.stop()

    app = GatewayApp(
        # No OpenTelemetry providers are set up: skip FastAPI's per-request check for them.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        title="agentplane",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        redoc_url=None,
        docs_url=None,  # /docs is gateway.console's, with Swagger UI from this package
    )

    def transport() -> Transport:
        t: Transport = app.state.transport
        return t

    table = routes()
    budget = ByteBudget(settings.max_inflight_bytes)  # shared with the in-process gRPC server
    endpoints = [
        (OtlpEndpoint if isinstance(family, OtlpFamily) else Endpoint)(
            b, family, transport, settings.max_body_bytes, budget
        )
        for b, family in table
    ]
    app.bindings = BindingRouter(None, endpoints)
    app.log_every_request = settings.debug_logging
    app.guard = Guard.of(settings, app.bindings, live.FEED_FAMILIES)
    app.add_middleware(BindingRouter, endpoints=endpoints)
    if settings.cors_origins:
        # Credentialed fetches (upstream Agent Tracer's web app) need consent, given
        # only to listed origins: with `*` any site could read with the user's credentials.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials="*" not in settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )

    @app.websocket("/ws")
    async def runtime_ws(ws: WebSocket) -> None:
        await live.runtime_feed(ws, transport())

    @app.websocket("/api/v1/ws")
    async def tracer_ws(ws: WebSocket) -> None:
        await live.tracer_feed(ws, transport())

    console.mount(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    if service is not None:  # a gateway in front of another process has no figures of the service

        @app.get("/metrics", include_in_schema=False)
        async def prometheus_metrics(request: Request) -> Response:
            metadata = forwarded_metadata((k.lower(), v) for k, v in request.headers.items())
            try:
                page = await app.state.core.metrics.render(metadata)
            except DomainError as refused:
                code, body, headers = PLAIN_FAMILY.error(from_domain(refused))
                return JSONResponse(body, code, headers)
            return Response(page, media_type=METRICS_CONTENT_TYPE)

    def build_openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi.document(
                table,
                title=app.title,
                version=app.version,
                description=DESCRIPTION,
                limits=limits.stated(settings),
            )
        return app.openapi_schema

    app.openapi = build_openapi  # type: ignore[method-assign]
    return app
