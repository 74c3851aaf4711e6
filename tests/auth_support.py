"""Helpers for tests that run with API keys required (AGENTPLANE_AUTH=keys).

A test module turns auth on by overriding the `settings` fixture (the
`server` and `live_server` fixtures then use it):

    @pytest.fixture
    def settings(settings: Settings) -> Settings:
        return with_keys(settings)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from service.base.config import Settings
from service.domain import apikeys
from service.store.store import Store

MISSING_KEY = "Missing API key: send it as X-API-Key or Authorization: Bearer"
_VARIABLE = re.compile(r"\{[^}]+\}")


def with_keys(settings: Settings) -> Settings:
    settings.auth = "keys"
    return settings


@dataclass(frozen=True)
class Key:
    key_id: str
    secret: str
    workspace: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.secret}

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-api-key", self.secret),)


async def make_key(
    store: Store,
    scopes: Iterable[str] = ("admin",),
    workspace: str = "default",
    expires_in: timedelta | None = None,
) -> Key:
    record, secret = await apikeys.create_key(store, workspace, "test", list(scopes), expires_in)
    return Key(record.key_id, secret, workspace)


def every_scope_but(scope: str) -> list[str]:
    """A key that may do everything an RPC needing `scope` is not allowed."""
    return [s for s in apikeys.SCOPES if s not in (scope, apikeys.ADMIN)]


def concrete(route_path: str) -> str:
    """A route path with each variable filled in."""
    return _VARIABLE.sub("x", route_path)
