"""Authentication, scopes, workspaces and rate limits: one interceptor of the
call chain, so it runs for every RPC however it arrives (gRPC, the gateway's
routes, its WebSockets).

With `AGENTPLANE_AUTH=keys` a call must carry an API key (`X-API-Key`, or
`Authorization: Bearer`, as HTTP headers or gRPC metadata): a missing,
unknown, revoked or expired key is UNAUTHENTICATED (401); a key without the
scope the RPC declares (`agentplane.v1.required_scope`) is PERMISSION_DENIED
(403); a key past its request rate is RESOURCE_EXHAUSTED (429, Retry-After).
The key's workspace becomes the call's workspace. An RPC that declares no
scope is refused to every key: a new RPC cannot ship unprotected by mistake.

With `off`, every call is accepted as the default workspace (a laptop's
hooks send no key). The default is `off` only when every listener is on a
loopback address.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from agentplane.v1 import options_pb2
from google.protobuf.descriptor import MethodDescriptor

from service.base.config import Settings
from service.base.errors import PermissionDenied, ResourceExhausted, Unauthenticated
from service.domain import apikeys
from service.domain.apikeys import AccessReason
from service.rpc.context import CallContext
from service.rpc.dispatch import Interceptor
from service.rpc.service_config import config_scope
from service.store.apikeys import ApiKeyRecord
from service.store.store import Store

log = logging.getLogger(__name__)

KEYS = "keys"
OFF = "off"
MODES = (KEYS, OFF)
# Per-key request rate when listening beyond loopback and not configured.
DEFAULT_RATE_LIMIT_PER_MINUTE = 1200
# How often an open stream checks that its key is still valid.
RECHECK_SECONDS = 1.0


class ExposureError(RuntimeError):
    """The configuration would serve without authentication beyond loopback."""


def is_loopback(host: str) -> bool:
    """Only addresses that certainly stay on this machine count (a name other
    than `localhost` might resolve anywhere)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class AuthPolicy:
    """The effective settings, with the loopback-dependent defaults resolved."""

    mode: str
    rate_limit_per_minute: int
    key_cache_seconds: float

    @classmethod
    def resolve(
        cls,
        hosts: Iterable[str],
        *,
        mode: str = "",
        allow_unauthenticated: bool = False,
        rate_limit_per_minute: int | None = None,
        key_cache_seconds: float = 5.0,
    ) -> AuthPolicy:
        exposed = sorted({h for h in hosts if not is_loopback(h)})
        chosen = mode or (KEYS if exposed else OFF)
        if chosen not in MODES:
            raise ValueError(f"AGENTPLANE_AUTH must be one of {', '.join(MODES)}, not {chosen!r}")
        if chosen == OFF and exposed and not allow_unauthenticated:
            raise ExposureError(
                f"refusing to serve without authentication on {', '.join(exposed)}: "
                "set AGENTPLANE_AUTH=keys (and create a key with `agentplane keys create`), "
                "or pass --allow-unauthenticated if this network is trusted"
            )
        if chosen == OFF:
            rate_limit_per_minute = 0  # limits are per key, and no call carries one
        elif rate_limit_per_minute is None:
            rate_limit_per_minute = DEFAULT_RATE_LIMIT_PER_MINUTE if exposed else 0
        return cls(chosen, max(0, rate_limit_per_minute), key_cache_seconds)

    @classmethod
    def of(cls, settings: Settings) -> AuthPolicy:
        """The policy of a server with both listeners (a `--grpc-only` one too:
        the gateway address it does not use defaults to loopback)."""
        return cls.resolve(
            (settings.http_host, settings.grpc_host),
            mode=settings.auth,
            allow_unauthenticated=settings.allow_unauthenticated,
            rate_limit_per_minute=settings.rate_limit_per_minute,
            key_cache_seconds=settings.key_cache_seconds,
        )

    def describe(self) -> str:
        if self.mode == OFF:
            return "off: every call is accepted as the default workspace"
        limit = (
            f"{self.rate_limit_per_minute} requests a minute per key"
            if self.rate_limit_per_minute
            else "no rate limit"
        )
        return f"API keys required ({limit})"


@cache
def required_scope(md: MethodDescriptor) -> str:
    """The scope an RPC declares (in its proto, or for a service whose proto
    is not ours in its service config), "" when it declares none."""
    return str(md.GetOptions().Extensions[options_pb2.required_scope]) or config_scope(md)


def undeclared(methods: Iterable[MethodDescriptor]) -> list[str]:
    """RPCs that declare no known scope (refused while authentication is on)."""
    return [md.full_name for md in methods if required_scope(md) not in apikeys.SCOPES]


def presented_key(metadata: Mapping[str, str]) -> str | None:
    """The key a call carries: `x-api-key`, else an `authorization` Bearer token."""
    key = metadata.get("x-api-key")
    if key and key.strip():
        return key.strip()
    header = metadata.get("authorization")
    if header:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None


class KeyCache:
    """Key hash -> key record, so that checking a key costs no database round
    trip per call. Entries (misses too) live `ttl` seconds, so a key revoked
    by another process stops working within that time; one revoked through
    this process is dropped at once (`forget`). The cache is bounded: past
    `max_entries` it starts over, so random keys cannot grow it without end."""

    def __init__(
        self,
        store: Store,
        ttl: float,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[str, tuple[ApiKeyRecord | None, float]] = {}

    async def lookup(self, secret: str) -> ApiKeyRecord | None:
        key_hash = apikeys.hash_key(secret)
        now = self.clock()
        hit = self._entries.get(key_hash)
        if hit is not None and now - hit[1] < self.ttl:
            return hit[0]
        record = await apikeys.find_by_hash(self.store, key_hash)
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key_hash] = (record, now)
        return record

    def forget(self, key_id: str) -> None:
        """Drop a key, so that a change made through this process applies at once."""
        self._entries = {h: (r, t) for h, (r, t) in self._entries.items() if r is None or r.key_id != key_id}


class RateLimiter:
    """A token bucket per key, in process memory: `per_minute` requests a
    minute, in bursts of up to a minute's worth. Each replica counts alone."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[str, list[float]] = {}

    def take(self, key_id: str) -> float:
        """Spend one request; 0 if allowed, else the seconds until one is."""
        now = self.clock()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = [float(self.per_minute), now]
        tokens = min(float(self.per_minute), bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1:
            bucket[0] = tokens - 1
            return 0.0
        bucket[0] = tokens
        return (1 - tokens) / self.rate


class Authenticator:
    """The interceptor: resolves the key to (workspace, scopes) and checks them."""

    def __init__(self, keys: KeyCache, limiter: RateLimiter | None = None) -> None:
        self.keys = keys
        self.limiter = limiter

    async def __call__(self, ctx: CallContext, method: MethodDescriptor) -> None:
        key, secret = await self.authorize(ctx.metadata, required_scope(method), method.full_name)
        ctx.workspace = key.workspace
        ctx.key_id = key.key_id
        ctx.recheck = _Recheck(self, secret)

    async def authorize(self, metadata: Mapping[str, str], scope: str, what: str) -> tuple[ApiKeyRecord, str]:
        """The key the call presents and its secret, if it may do `what`, which
        needs `scope` (an RPC, or a route outside the contract: /metrics)."""
        secret = presented_key(metadata)
        if secret is None:
            raise Unauthenticated(
                "Missing API key: send it as X-API-Key or Authorization: Bearer",
                reason=AccessReason.API_KEY_MISSING,
            )
        key = await self.valid_key(secret)
        if scope not in apikeys.SCOPES:
            # Fail closed: a method without a (known) scope is a server bug, not
            # something a key can be allowed to do.
            raise PermissionDenied(
                f"Insufficient permissions: {what} declares no known required scope",
                reason=AccessReason.SCOPE_UNDECLARED,
            )
        if not apikeys.allows(key.scopes, scope):
            raise PermissionDenied(
                f"Insufficient permissions. Required scope: {scope}",
                reason=AccessReason.SCOPE_MISSING,
                metadata={"required_scope": scope},
            )
        if self.limiter is not None:
            wait = self.limiter.take(key.key_id)
            if wait:
                raise ResourceExhausted(
                    f"Too many requests: this key may make {self.limiter.per_minute} requests a minute",
                    reason=AccessReason.RATE_LIMITED,
                    metadata={"retry_after_seconds": str(max(1, math.ceil(wait)))},
                )
        return key, secret

    async def valid_key(self, secret: str) -> ApiKeyRecord:
        """The key `secret` names, if it is known, not revoked and not expired."""
        key = await self.keys.lookup(secret)
        if key is None:
            raise Unauthenticated("Invalid API key", reason=AccessReason.API_KEY_INVALID)
        if key.revoked_at is not None:
            raise Unauthenticated("API key has been revoked", reason=AccessReason.API_KEY_REVOKED)
        if key.expires_at is not None and key.expires_at <= datetime.now(UTC):
            raise Unauthenticated("API key has expired", reason=AccessReason.API_KEY_EXPIRED)
        return key


class _Recheck:
    """A stream's re-check of its key, at most every RECHECK_SECONDS (through
    the cache: a database read at most once per cache TTL). A stream that is
    idle sends a heartbeat now and then, so it is re-checked then too."""

    def __init__(self, auth: Authenticator, secret: str) -> None:
        self.auth = auth
        self.secret = secret
        self.due = auth.keys.clock() + RECHECK_SECONDS

    async def __call__(self) -> None:
        now = self.auth.keys.clock()
        if now >= self.due:
            self.due = now + RECHECK_SECONDS
            await self.auth.valid_key(self.secret)


class Auth:
    """The auth step of a running server: its policy, key cache and interceptors."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.policy = AuthPolicy.of(settings)
        self.keys = KeyCache(store, self.policy.key_cache_seconds)
        per_minute = self.policy.rate_limit_per_minute
        self.limiter = RateLimiter(per_minute) if per_minute else None
        self.authenticator = Authenticator(self.keys, self.limiter) if self.policy.mode == KEYS else None
        self.interceptors: list[Interceptor] = [self.authenticator] if self.authenticator else []

    async def authorize(self, metadata: Mapping[str, str], scope: str, what: str) -> None:
        """Refuse (401/403/429) a caller without a key holding `scope`, when keys are required."""
        if self.authenticator is not None:
            await self.authenticator.authorize(metadata, scope, what)

    def check(self, methods: Iterable[MethodDescriptor]) -> None:
        """Say which RPCs every key will be refused (they declare no known scope)."""
        missing = undeclared(methods)
        if missing and self.policy.mode == KEYS:
            log.error(
                "these RPCs declare no known required_scope and refuse every key: %s", ", ".join(missing)
            )
