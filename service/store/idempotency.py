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
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Index,
    LargeBinary,
    Text,
    bindparam,
    delete,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel

from service.base.errors import Aborted, CommonReason
from service.store.fastpath import RawStatement, driver_cursor
from service.store.tables import BigId

T = TypeVar("T")


@dataclass
class Claim:
    """A keyed write in progress: recorded (`recorded`) with the first write
    operation of the call, in that operation's savepoint."""

    workspace: str
    method: str
    key: str
    fingerprint: str
    created_ms: int
    expires_ms: int
    recorded: bool = False
    # Set when the call has returned: a task it started (which inherits the
    # context) writes on its own, unguarded.
    closed: bool = False


@dataclass(frozen=True)
class Stored:
    """A key's row: the request it was first used with and, once known, the
    answer (a serialised response, or a serialised google.rpc.Status)."""

    fingerprint: str
    answer: bytes | None
    is_error: bool


def in_flight() -> Aborted:
    return Aborted(
        "a request with this idempotency key is in progress elsewhere; retry later",
        reason=CommonReason.IDEMPOTENCY_KEY_IN_FLIGHT,
    )


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


_COLUMNS = ("workspace", "method", "key", "fingerprint", "created_at", "expires_at", "answer", "is_error")
_PK = (
    (keys.c.workspace == bindparam("w_workspace"))
    & (keys.c.method == bindparam("w_method"))
    & (keys.c.key == bindparam("w_key"))
)


def _upsert(dialect: Any) -> Any:
    """Insert a key's row, replacing an expired one; a live one stays (no row changed)."""
    stmt = dialect.insert(keys).values({c: bindparam(c) for c in _COLUMNS})
    return stmt.on_conflict_do_update(
        index_elements=[keys.c.workspace, keys.c.method, keys.c.key],
        set_={c: stmt.excluded[c] for c in _COLUMNS[3:]},
        where=keys.c.expires_at <= stmt.excluded.created_at,
    )


# Every keyed write runs these: straight on the driver's cursor (service.store.fastpath).
_INSERT = {"sqlite": RawStatement(_upsert(sqlite)), "postgresql": RawStatement(_upsert(postgresql))}
_FIND = RawStatement(
    select(keys.c.fingerprint, keys.c.answer, keys.c.is_error).where(
        _PK & (keys.c.expires_at > bindparam("w_now"))
    )
)
_ANSWER = RawStatement(
    update(keys).where(_PK).values(answer=bindparam("b_answer"), is_error=bindparam("b_is_error"))
)
_SWEEP = delete(keys).where(keys.c.expires_at <= bindparam("w_now"))


def _where(claim: Claim) -> dict[str, Any]:
    return {"w_workspace": claim.workspace, "w_method": claim.method, "w_key": claim.key}


def _insert(conn: Connection, claim: Claim, answer: bytes | None, is_error: bool) -> bool:
    """Insert the key's row (replacing an expired one); False if a live row exists."""
    row = (
        claim.workspace,
        claim.method,
        claim.key,
        claim.fingerprint,
        claim.created_ms,
        claim.expires_ms,
        answer,
        is_error,
    )
    params = dict(zip(_COLUMNS, row, strict=True))
    return bool(_INSERT[conn.dialect.name].execute(driver_cursor(conn), conn.dialect, params).rowcount)


def guarded(op: Callable[[Any], T]) -> Callable[[Any], T]:
    """`op`, recording the current call's key first if it is not yet recorded
    (in the same savepoint: if `op` fails, the key goes with it)."""
    claim = current.get()
    if claim is None or claim.closed:
        return op

    def run(tx: Any) -> T:
        if claim.recorded or claim.closed:
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
    params = {"w_workspace": workspace, "w_method": method, "w_key": key, "w_now": now_ms}
    row = _FIND.execute(driver_cursor(conn), conn.dialect, params).fetchone()
    return None if row is None else Stored(row[0], None if row[1] is None else bytes(row[1]), bool(row[2]))


def store_answer(conn: Connection, claim: Claim, answer: bytes, is_error: bool) -> None:
    """Keep the call's answer: on the row its write recorded, or on a new one
    when the call wrote nothing through the writer (an error then is not kept:
    nothing was written, so a retry may run again)."""
    if claim.recorded:
        params = {**_where(claim), "b_answer": answer, "b_is_error": is_error}
        _ANSWER.execute(driver_cursor(conn), conn.dialect, params)
    elif not is_error:
        _insert(conn, claim, answer, False)


def sweep(conn: Connection, now_ms: int) -> int:
    """Delete the keys whose window has ended; how many."""
    return int(conn.execute(_SWEEP, {"w_now": now_ms}).rowcount)
