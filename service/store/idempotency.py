"""Idempotency keys' rows (migration 0009) and the writer's hook that records
a key in the transaction of the write it guards.

The call chain sets `current` to the call's Claim; `Writer.enqueue` wraps
each operation with `guarded`, capturing the claim then, so the first
operation of the call inserts the key's row inside its own savepoint: the
write and its key commit together or not at all. A crash after the commit
leaves the row without an answer, and a retry is told so instead of
writing again.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import Boolean, Column, Connection, Index, LargeBinary, Text, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel

from service.domain.idempotency import Claim, Stored, in_flight
from service.store.tables import BigId

T = TypeVar("T")


class IdempotencyKeyRow(SQLModel, table=True):
    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_expires", "expires_at"),)

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    # "/agentplane.v1.SessionService/CreateSession": a key is scoped per RPC.
    method: str = Field(sa_column=Column(Text, primary_key=True))
    key: str = Field(sa_column=Column(Text, primary_key=True))
    fingerprint: str = Field(sa_column=Column(Text, nullable=False))
    # Milliseconds since the Unix epoch (UTC).
    created_at: int = Field(sa_column=Column(BigId, nullable=False))
    expires_at: int = Field(sa_column=Column(BigId, nullable=False))
    # The serialised response (or google.rpc.Status when `is_error`); NULL
    # until stored, and for good if the server died in between.
    answer: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    is_error: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))


keys = IdempotencyKeyRow.__table__  # type: ignore[attr-defined]

# The claim of the call running in this context (set by the call chain).
current: ContextVar[Claim | None] = ContextVar("idempotency_claim", default=None)


def _pk(claim: Claim) -> Any:
    return (keys.c.workspace == claim.workspace) & (keys.c.method == claim.method) & (keys.c.key == claim.key)


def _insert(conn: Connection, claim: Claim, answer: bytes | None, is_error: bool) -> bool:
    """Insert the key's row (replacing an expired one); False if a live row exists."""
    conn.execute(delete(keys).where(_pk(claim) & (keys.c.expires_at <= claim.created_ms)))
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(keys)
        .values(
            workspace=claim.workspace,
            method=claim.method,
            key=claim.key,
            fingerprint=claim.fingerprint,
            created_at=claim.created_ms,
            expires_at=claim.expires_ms,
            answer=answer,
            is_error=is_error,
        )
        .on_conflict_do_nothing()
    )
    return bool(conn.execute(stmt).rowcount)


def guarded(op: Callable[[Any], T]) -> Callable[[Any], T]:
    """`op`, recording the current call's key first if it is not yet recorded
    (in the same savepoint: if `op` fails, the key goes with it)."""
    claim = current.get()
    if claim is None:
        return op

    def run(tx: Any) -> T:
        if claim.recorded:
            return op(tx)
        if not _insert(tx.conn, claim, None, False):
            raise in_flight()
        claim.recorded = True
        try:
            return op(tx)
        except BaseException:
            claim.recorded = False
            raise

    return run


def find(conn: Connection, workspace: str, method: str, key: str, now_ms: int) -> Stored | None:
    """The key's live row, if any."""
    row = conn.execute(
        select(keys.c.fingerprint, keys.c.answer, keys.c.is_error).where(
            (keys.c.workspace == workspace)
            & (keys.c.method == method)
            & (keys.c.key == key)
            & (keys.c.expires_at > now_ms)
        )
    ).first()
    return None if row is None else Stored(row.fingerprint, row.answer, bool(row.is_error))


def store_answer(conn: Connection, claim: Claim, answer: bytes, is_error: bool) -> None:
    """Keep the call's answer: on the row its write recorded, or on a new one
    when the call wrote nothing through the writer (an error then is not kept:
    nothing was written, so a retry may run again)."""
    if claim.recorded:
        conn.execute(update(keys).where(_pk(claim)).values(answer=answer, is_error=is_error))
    elif not is_error:
        _insert(conn, claim, answer, False)


def sweep(conn: Connection, now_ms: int) -> int:
    """Delete the keys whose window has ended; how many."""
    return int(conn.execute(delete(keys).where(keys.c.expires_at <= now_ms)).rowcount)
