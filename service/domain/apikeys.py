"""API keys: what they may do (scopes), and creating, listing and revoking them.

A key is a random secret shown once, when it is created; the store keeps
only its SHA-256. Every key belongs to one workspace, and every call made
with it reads and writes only that workspace. Creating and revoking a key
are facts of the event log like any other write (`api_key.created`,
`api_key.revoked`; never with the secret or its hash).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from service.base.errors import FieldViolation, InvalidArgument, NotFound, Reason, invalid
from service.domain.validation import reject_nul_characters
from service.store import apikeys as q
from service.store.apikeys import ApiKeyRecord
from service.store.log import Tx
from service.store.store import Store

ADMIN = "admin"
# The scope vocabulary. An RPC declares the one it needs with the
# `agentplane.v1.required_scope` method option; a key holding `admin` may
# call every RPC. A new area of the API adds its scopes here.
SCOPES: dict[str, str] = {
    "read:sessions": "list and read sessions",
    "write:sessions": "create, update and delete sessions",
    "read:events": "read events and the event log (watch streams, WebSockets)",
    "write:events": "send events (hooks, telemetry ingest)",
    "read:tasks": "read tasks",
    "write:tasks": "create, claim and update tasks",
    "channels": "read and post channel messages",
    "read:metrics": "read the server's metrics (GET /metrics)",
    ADMIN: "everything, including managing the workspace's API keys",
}

KEY_PREFIX = "ap_"
# 40 base62 characters: 238 bits of randomness.
_SECRET_LENGTH = 40
_ALPHABET = string.ascii_letters + string.digits
# How much of a secret `keys list` shows (the fixed prefix and 8 more).
_SHOWN = len(KEY_PREFIX) + 8
_WORKSPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class AccessReason(Reason):
    """Why a call's key is refused or an API-key request is bad."""

    API_KEY_MISSING = "API_KEY_MISSING"
    API_KEY_INVALID = "API_KEY_INVALID"
    API_KEY_REVOKED = "API_KEY_REVOKED"
    API_KEY_EXPIRED = "API_KEY_EXPIRED"
    API_KEY_NOT_FOUND = "API_KEY_NOT_FOUND"
    INVALID_API_KEY_REQUEST = "INVALID_API_KEY_REQUEST"
    SCOPE_MISSING = "SCOPE_MISSING"
    SCOPE_UNDECLARED = "SCOPE_UNDECLARED"
    RATE_LIMITED = "RATE_LIMITED"


def hash_key(secret: str) -> str:
    """How a key is stored and looked up: lower-case hex SHA-256."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(_SECRET_LENGTH))


def allows(scopes: Iterable[str], required: str) -> bool:
    """Whether a key with `scopes` may do what needs `required`."""
    held = set(scopes)
    return ADMIN in held or required in held


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `3600s`, `2w` (or combined, `1d12h`)."""
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise invalid("expires_in", f"{text!r} is not a duration such as 30d, 12h, 90m or 3600s")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


def _check_new_key(workspace: str, name: str, scopes: list[str], expires_in: timedelta | None) -> None:
    reject_nul_characters({"name": name, "workspace": workspace, "scopes": scopes})
    violations = []
    if not name.strip():
        violations.append(FieldViolation("name", "is required"))
    if not _WORKSPACE.fullmatch(workspace):
        violations.append(
            FieldViolation(
                "workspace", "must be 1 to 64 letters, digits, '.', '_' or '-', starting alphanumeric"
            )
        )
    if not scopes:
        violations.append(FieldViolation("scopes", "is required"))
    for i, scope in enumerate(scopes):
        if scope not in SCOPES:
            violations.append(
                FieldViolation(f"scopes[{i}]", f"unknown scope {scope!r}; known: {', '.join(SCOPES)}")
            )
    if expires_in is not None and expires_in <= timedelta(0):
        violations.append(FieldViolation("expires_in", "must be positive"))
    if violations:
        raise InvalidArgument(
            "; ".join(f"{v.field}: {v.description}" for v in violations),
            reason=AccessReason.INVALID_API_KEY_REQUEST,
            violations=violations,
        )


def _log_fact(tx: Tx, kind: str, record: ApiKeyRecord, **extra: str | None) -> None:
    tx.append(
        kind,
        record.workspace,
        {"key_id": record.key_id, "name": record.name, "scopes": list(record.scopes), **extra},
    )


async def create_key(
    store: Store,
    workspace: str,
    name: str,
    scopes: list[str],
    expires_in: timedelta | None = None,
    created_by: str | None = None,
) -> tuple[ApiKeyRecord, str]:
    """A new key and its secret (the only time the secret exists outside the caller)."""
    _check_new_key(workspace, name, scopes, expires_in)
    now = datetime.now(UTC)
    secret = new_secret()
    record = ApiKeyRecord(
        key_id=f"key_{secrets.token_hex(8)}",
        workspace=workspace,
        name=name.strip(),
        prefix=secret[:_SHOWN],
        scopes=tuple(dict.fromkeys(scopes)),
        created_at=now,
        expires_at=now + expires_in if expires_in is not None else None,
    )

    def op(tx: Tx) -> None:
        q.insert_one(tx.conn, record, hash_key(secret))
        expires = record.expires_at.isoformat() if record.expires_at else None
        _log_fact(tx, "api_key.created", record, expires_at=expires, created_by=created_by)

    await store.write(op)
    return record, secret


async def list_keys(store: Store, workspace: str | None) -> list[ApiKeyRecord]:
    return await store.read(lambda conn: q.list_keys(conn, workspace))


async def revoke_key(store: Store, workspace: str | None, key_id: str) -> ApiKeyRecord:
    """Revoke a key (a no-op for a revoked one); NotFound outside `workspace`."""

    def op(tx: Tx) -> ApiKeyRecord:
        record = q.get(tx.conn, workspace, key_id)
        if record is None:
            raise NotFound(f"API key {key_id} not found", reason=AccessReason.API_KEY_NOT_FOUND)
        if record.revoked_at is not None:
            return record
        now = datetime.now(UTC)
        q.set_revoked(tx.conn, key_id, now)
        revoked = replace(record, revoked_at=now)
        _log_fact(tx, "api_key.revoked", revoked)
        return revoked

    return await store.write(op)


async def find_by_hash(store: Store, key_hash: str) -> ApiKeyRecord | None:
    """The key whose secret hashes to `key_hash`, in whatever workspace."""
    return await store.read(lambda conn: q.by_hash(conn, key_hash))
