"""Queries on the API keys table.

A `workspace` argument of None means every workspace: only the operator's
CLI, which works on the database directly, passes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from service.store.tables import api_keys


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str
    workspace: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


_COLUMNS = [getattr(api_keys.c, f) for f in ApiKeyRecord.__dataclass_fields__]


def _utc(value: datetime | None) -> datetime | None:
    """SQLite gives back naive datetimes; every one we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _record(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=row.key_id,
        workspace=row.workspace,
        name=row.name,
        prefix=row.prefix,
        scopes=tuple(row.scopes.split()),
        created_at=_utc(row.created_at),  # type: ignore[arg-type]
        expires_at=_utc(row.expires_at),
        revoked_at=_utc(row.revoked_at),
    )


_BY_HASH = select(*_COLUMNS).where(api_keys.c.key_hash == bindparam("key_hash"))
_INSERT = insert(api_keys)


def by_hash(conn: Connection, key_hash: str) -> ApiKeyRecord | None:
    """The key whose secret hashes to `key_hash` (whatever its workspace: the
    key is what tells the workspace)."""
    row = conn.execute(_BY_HASH, {"key_hash": key_hash}).first()
    return _record(row) if row else None


def insert_one(conn: Connection, record: ApiKeyRecord, key_hash: str) -> None:
    values = {f: getattr(record, f) for f in ApiKeyRecord.__dataclass_fields__}
    conn.execute(_INSERT, {**values, "scopes": " ".join(record.scopes), "key_hash": key_hash})


def list_keys(conn: Connection, workspace: str | None) -> list[ApiKeyRecord]:
    q = select(*_COLUMNS)
    if workspace is not None:
        q = q.where(api_keys.c.workspace == workspace)
    rows = conn.execute(q.order_by(api_keys.c.created_at, api_keys.c.key_id))
    return [_record(r) for r in rows]


def get(conn: Connection, workspace: str | None, key_id: str) -> ApiKeyRecord | None:
    q = select(*_COLUMNS).where(api_keys.c.key_id == key_id)
    if workspace is not None:
        q = q.where(api_keys.c.workspace == workspace)
    row = conn.execute(q).first()
    return _record(row) if row else None


def set_revoked(conn: Connection, key_id: str, when: datetime) -> None:
    conn.execute(update(api_keys).where(api_keys.c.key_id == key_id).values(revoked_at=when))
