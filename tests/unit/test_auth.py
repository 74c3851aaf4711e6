"""The auth building blocks on their own: the mode and its loopback defaults,
how a key is read from metadata, the rate limiter, the key cache's bound,
scopes and durations."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from service.base.errors import InvalidArgument
from service.domain import apikeys
from service.rpc.auth import (
    DEFAULT_RATE_LIMIT_PER_MINUTE,
    AuthPolicy,
    ExposureError,
    KeyCache,
    RateLimiter,
    is_loopback,
    presented_key,
)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LocalHost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.0.0.5", False),
        ("example.internal", False),  # a name might resolve anywhere
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


LOCAL = ("127.0.0.1", "::1")
EXPOSED = ("0.0.0.0", "127.0.0.1")


@pytest.mark.parametrize(
    ("hosts", "mode", "allow", "rate", "expected"),
    [
        # (mode, rate limit) chosen, or the error raised
        (LOCAL, "", False, None, ("off", 0)),
        (LOCAL, "keys", False, None, ("keys", 0)),
        (EXPOSED, "", False, None, ("keys", DEFAULT_RATE_LIMIT_PER_MINUTE)),
        (EXPOSED, "keys", False, 0, ("keys", 0)),
        (EXPOSED, "keys", False, 50, ("keys", 50)),
        (LOCAL, "keys", False, 50, ("keys", 50)),
        (EXPOSED, "off", True, None, ("off", 0)),  # no key, no per-key limit
        (LOCAL, "off", False, 50, ("off", 0)),
        (EXPOSED, "off", False, None, ExposureError),
        (("127.0.0.1", "10.0.0.1"), "off", False, None, ExposureError),
        (LOCAL, "maybe", False, None, ValueError),
    ],
)
def test_auth_policy(
    hosts: tuple[str, ...], mode: str, allow: bool, rate: int | None, expected: object
) -> None:
    def resolve() -> AuthPolicy:
        return AuthPolicy.resolve(hosts, mode=mode, allow_unauthenticated=allow, rate_limit_per_minute=rate)

    if isinstance(expected, type):
        with pytest.raises(expected):
            resolve()
    else:
        policy = resolve()
        assert (policy.mode, policy.rate_limit_per_minute) == expected


@pytest.mark.parametrize(
    ("metadata", "key"),
    [
        ({}, None),
        ({"x-api-key": "k1"}, "k1"),
        ({"x-api-key": " k1 "}, "k1"),
        ({"x-api-key": "   "}, None),
        ({"authorization": "Bearer k2"}, "k2"),
        ({"authorization": "BEARER   k2 "}, "k2"),
        ({"authorization": "Basic k2"}, None),
        ({"authorization": "Bearer"}, None),
        ({"authorization": "k2"}, None),
        ({"x-api-key": "k1", "authorization": "Bearer k2"}, "k1"),
    ],
)
def test_presented_key(metadata: dict[str, str], key: str | None) -> None:
    assert presented_key(metadata) == key


def test_rate_limiter_refills_over_the_minute() -> None:
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(60)] == [0.0] * 60  # a minute's worth at once
    assert limiter.take("a") == pytest.approx(1.0)  # one a second comes back
    assert limiter.take("b") == 0.0  # each key has its own bucket
    now[0] += 0.5
    assert limiter.take("a") == pytest.approx(0.5)
    now[0] += 0.5
    assert limiter.take("a") == 0.0
    now[0] += 3600
    assert [limiter.take("a") for _ in range(61)][-2:] == [0.0, pytest.approx(1.0)]  # never above capacity


async def test_key_cache_is_bounded() -> None:
    class Store:
        reads = 0

        async def read(self, fn: object) -> None:
            Store.reads += 1

    cache = KeyCache(Store(), ttl=60, max_entries=3)  # type: ignore[arg-type]
    for i in range(3):
        assert await cache.lookup(f"unknown-{i}") is None
    assert (Store.reads, len(cache._entries)) == (3, 3)
    assert await cache.lookup("unknown-0") is None  # a cached miss
    assert Store.reads == 3
    await cache.lookup("unknown-3")
    assert len(cache._entries) == 1  # full: it started over


def test_scopes() -> None:
    assert apikeys.allows(["read:events"], "read:events")
    assert not apikeys.allows(["read:events"], "write:events")
    assert apikeys.allows(["admin"], "write:tasks")
    assert not apikeys.allows([], "read:sessions")
    assert {
        "write:events",
        "read:events",
        "read:sessions",
        "write:tasks",
        "read:tasks",
        "channels",
        "admin",
    } <= set(apikeys.SCOPES)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 30 * 86400),
        ("12h", 43200),
        ("90m", 5400),
        ("3600s", 3600),
        ("2w", 14 * 86400),
        ("1d12h", 129600),
        (" 5M ", 300),
    ],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert apikeys.parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "30", "d", "30x", "-1d", "1.5h", "30 d", "1d-2h"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        apikeys.parse_duration(text)
    assert refused.value.violations[0].field == "expires_in"


def test_secrets_and_hashes() -> None:
    secrets = {apikeys.new_secret() for _ in range(100)}
    assert len(secrets) == 100
    assert all(s.startswith("ap_") and len(s) == 43 and s[3:].isalnum() for s in secrets)
    assert apikeys.hash_key("ap_x") == hashlib.sha256(b"ap_x").hexdigest()
