"""Safe on a laptop: the Host and Origin checks that keep other web pages out.

DNS rebinding: a page on evil.example makes its name resolve to 127.0.0.1 and
calls this server as its own origin, but the browser still sends
`Host: evil.example`. So the gateway answers only to the names it serves, as
Vite's `server.allowedHosts` and Django's ALLOWED_HOSTS do: localhost and
*.localhost, IP literals (a rebinding needs a name), the listener's own name
and AGENTPLANE_ALLOWED_HOSTS; other names get 421. With API keys required, a
rebound page has no key to send, so every name is served unless the setting
lists some.

Cross-site requests: CORS does not cover WebSockets, and a "simple" POST
(`text/plain`) is sent without a preflight, so a foreign page could read the
feeds and write. Browsers send `Origin` on both: a WebSocket handshake, a
streaming route or a state-changing request carrying an Origin is accepted
only from the request's own origin or CORS_ORIGINS (403). Requests without
one (hooks, curl, the clients) are no browser's cross-site requests and pass.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Mapping

from agentplane.v1 import options_pb2
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from gateway.families import FAMILIES, Family
from gateway.routes import BindingRouter, send_error
from service.base.config import Settings
from service.base.errors import CommonReason, PermissionDenied
from service.rpc.auth import KEYS, AuthPolicy, ExposureError
from service.rpc.status import RpcError, from_domain

ANY = "*"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
# Methods that change state; a browser sends Origin on every cross-site one.
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Wildcard listener addresses: not a name anyone calls the server by.
_WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}
# Routes outside the contract (/docs, /openapi.json, /healthz) answer in FastAPI's {"detail"} shape.
PLAIN_FAMILY = FAMILIES[options_pb2.ROUTE_FAMILY_AGENT_RUNTIME]
MISDIRECTED = 421
SEEN_HOSTS = 256


class Screen(enum.Enum):
    """What `Guard.screen` found: the request was answered (refused), or may
    go on, from a browser (it carries an Origin) or not."""

    REFUSED = enum.auto()
    BROWSER = enum.auto()
    PLAIN = enum.auto()


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def hostname(host: str) -> str:
    """The name of a Host header value: lower case, without port or final dot."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1]
    name, _, port = host.rpartition(":")
    return (name if name and port.isdigit() else host).rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


class Guard:
    """The Host allowlist and the Origin check, screened once per request at the app's entry."""

    def __init__(
        self,
        allowed_hosts: Iterable[str],
        cors_origins: Iterable[str],
        *,
        listen_host: str,
        port: int,
        router: BindingRouter,
        feeds: Mapping[str, Family],
    ) -> None:
        entries = {h.strip().lower() for h in allowed_hosts if h.strip()}
        self.any_host = ANY in entries
        listener = _bracketed(listen_host.strip().lower())
        names = {*LOOPBACK_NAMES, *(e for e in entries if not e.startswith(".")), listener} - _WILDCARDS
        self.names = frozenset(names)
        # `.example.com`: that name and every name under it.
        self.domains = ("localhost", *(e[1:] for e in entries if e.startswith(".")))
        # Host headers served without parsing: the names, bare and with the port.
        raw = names | {f"{n}:{port}" for n in names}
        self.hosts = frozenset(h.encode("latin-1") for h in raw)
        # Other Host headers found allowed (a LAN address, a *.localhost name): parsed once.
        self.seen: set[bytes] = set()
        origins = {o.strip().rstrip("/").lower() for o in cors_origins if o.strip()}
        self.any_origin = ANY in origins
        self.origins = frozenset(origins)
        self.router = router
        self.feeds = feeds

    @classmethod
    def of(cls, settings: Settings, router: BindingRouter, feeds: Mapping[str, Family]) -> Guard:
        return cls(
            default_hosts(settings) if settings.allowed_hosts is None else settings.allowed_hosts,
            settings.cors_origins,
            listen_host=settings.http_host,
            port=settings.http_port,
            router=router,
            feeds=feeds,
        )

    def host_allowed(self, host: bytes) -> bool:
        if self.any_host or host in self.hosts or host in self.seen:
            return True
        name = hostname(host.decode("latin-1"))
        allowed = (
            name in self.names
            or _is_ip(name)
            or any(name == d or name.endswith(f".{d}") for d in self.domains)
        )
        if allowed and len(self.seen) < SEEN_HOSTS:
            self.seen.add(host)
        return allowed

    def origin_allowed(self, origin: bytes, host: bytes | None) -> bool:
        """The request's own origin (its scheme's default port optional) or a configured one."""
        text = origin.decode("latin-1").strip().lower()
        if self.any_origin or text in self.origins:
            return True
        scheme, sep, authority = text.partition("://")
        if not sep or host is None:
            return False  # "null" (sandboxed frames, file: pages) is nobody's own origin
        served = host.decode("latin-1").strip().lower()
        default = _DEFAULT_PORTS.get(scheme)
        if default:
            authority, served = authority.removesuffix(default), served.removesuffix(default)
        return authority == served

    def route(self, scope: Scope) -> tuple[Family, bool]:
        """The family that renders the request's errors, and whether an Origin must be checked."""
        if scope["type"] == "websocket":
            return self.feeds.get(scope["path"], PLAIN_FAMILY), True
        found = self.router.match(scope["path"])
        if found is None:
            return PLAIN_FAMILY, scope["method"] in UNSAFE_METHODS
        verbs, _ = found
        endpoint = verbs.get(scope["method"])
        family = (endpoint or next(iter(verbs.values()))).family
        streaming = endpoint is not None and endpoint.binding.streaming
        return family, streaming or scope["method"] in UNSAFE_METHODS

    async def screen(self, scope: Scope, receive: Receive, send: Send) -> Screen:
        """Refuse (answering it) an HTTP or WebSocket request this server must not serve."""
        host = origin = None
        for key, value in scope["headers"]:
            if key == b"host":
                host = value
            elif key == b"origin":
                origin = value
        if host is not None and host not in self.hosts and not self.host_allowed(host):
            family, _ = self.route(scope)
            name = host.decode("latin-1")[:100]
            message = (
                f"this server does not answer to the host name {name!r}: "
                "add it to AGENTPLANE_ALLOWED_HOSTS to serve it (a guard against DNS rebinding)"
            )
            await refuse(
                scope, receive, send, family, _denied(message, CommonReason.HOST_NOT_ALLOWED), MISDIRECTED
            )
            return Screen.REFUSED
        if origin is None:
            return Screen.PLAIN
        family, checked = self.route(scope)
        if checked and not self.origin_allowed(origin, host):
            message = (
                f"requests from the web page origin {origin.decode('latin-1')[:100]!r} may not "
                "write, stream or open a WebSocket here: add it to CORS_ORIGINS to allow it"
            )
            await refuse(scope, receive, send, family, _denied(message, CommonReason.ORIGIN_NOT_ALLOWED))
            return Screen.REFUSED
        return Screen.BROWSER


def default_hosts(settings: Settings) -> list[str]:
    """Every name when API keys are required (a rebound page has none to send), else only the built-in ones."""
    try:
        keys = AuthPolicy.of(settings).mode == KEYS
    except (ExposureError, ValueError):  # `serve` refuses these; a gateway run apart stays strict
        keys = False
    return [ANY] if keys else []


def _denied(message: str, reason: CommonReason) -> RpcError:
    return from_domain(PermissionDenied(message, reason=reason))


async def refuse(
    scope: Scope, receive: Receive, send: Send, family: Family, err: RpcError, status: int | None = None
) -> None:
    """Answer with the family's error body; a WebSocket is refused at the handshake."""
    if scope["type"] == "http":
        return await send_error(send, family, err, status)
    code, body, headers = family.error(err)
    ws = WebSocket(scope, receive, send)
    try:
        await ws.send_denial_response(JSONResponse(body, status or code, headers))
    except RuntimeError:  # the server cannot send an HTTP answer: a bare refusal (403)
        await ws.close(code=1008)
