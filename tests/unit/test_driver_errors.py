"""Input the database refuses is INVALID_ARGUMENT, on reads and writes, on
both backends (so the routes answer 400, never 500); the rest of the batch
commits."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, insert, text

from service.base.errors import InvalidArgument
from service.store import log
from service.store.log import Tx
from service.store.store import Store
from service.store.tables import sessions


def _session(session_id: str) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "workspace": "default",
        "session_id": session_id,
        "session_name": "n",
        "status": "running",
        "created_at": now.isoformat(),
        "updated_at": now,
    }


async def test_an_unindexable_key_is_invalid_argument_and_undoes_only_itself(store: Store) -> None:
    def put(session_id: str):
        def op(tx: Tx) -> int:
            tx.conn.execute(insert(sessions).values(**_session(session_id)))
            return tx.append("session.created", "default", {"id": session_id[:8]})

        return op

    # 8,000 random bytes: past PostgreSQL's index-row limit however compressed.
    huge = secrets.token_hex(4000)
    results = await asyncio.gather(
        store.write(put("a")), store.write(put(huge)), store.write(put("b")), return_exceptions=True
    )
    if store.engines.dialect == "postgresql":
        assert isinstance(results[1], InvalidArgument), results[1]
        assert results[1].reason == "UNSTORABLE_VALUE"
        assert "index row" in results[1].message
    assert isinstance(results[0], int) and isinstance(results[2], int)
    head = await store.read(log.head)
    assert head == max(r for r in results if isinstance(r, int))


async def test_an_out_of_range_number_in_a_read_is_invalid_argument(store: Store) -> None:
    postgres = store.engines.dialect == "postgresql"
    # PostgreSQL: "integer out of range"; SQLite: no 64-bit integer holds it.
    value = 2**40 if postgres else 2**70
    sql = text("SELECT CAST(:v AS integer)" if postgres else "SELECT :v")

    def read(conn: Connection) -> object:
        return conn.execute(sql, {"v": value}).scalar()

    with pytest.raises(InvalidArgument) as caught:
        await store.read(read)
    assert caught.value.reason == "UNSTORABLE_VALUE"
    assert await store.read(log.head) == 0  # the store still serves
