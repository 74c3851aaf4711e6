"""`Tx.append_entries`: entries of mixed types in one statement, in order,
with the seqs they were given (the tracer's writers join rows on them)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from sqlalchemy import select

from service.base.errors import InvalidArgument
from service.store.log import Tx
from service.store.store import Store
from service.store.tables import log_entries


def _log(conn: Any) -> list[tuple[Any, ...]]:
    cols = log_entries.c
    query = select(
        cols.seq, cols.type, cols.event_id, cols.session_id, cols.occurred_at, cols.name, cols.data
    )
    return [tuple(r) for r in conn.execute(query.order_by(cols.seq))]


async def test_entries_keep_their_order_and_get_the_seqs_returned(store: Store) -> None:
    def op(tx: Tx) -> tuple[int, list[int], int]:
        first = tx.append("before", "default", {})
        seqs = tx.append_entries(
            "default",
            [
                (
                    "t.one",
                    "s-1",
                    "2026-01-01T00:00:00.000Z",
                    "kind-1",
                    "my-id",
                    orjson.dumps({"n": 1}).decode(),
                ),
                ("t.two", None, None, None, None, orjson.dumps({"n": [2]}).decode()),
                ("t.one", "s-2", None, "kind-3", None, "{}"),
            ],
        )
        assert tx.append_entries("default", []) == ()
        return first, list(seqs), tx.append("after", "default", {})

    first, seqs, last = await store.write(op)
    assert seqs == [first + 1, first + 2, first + 3] and last == first + 4
    rows = await store.read(_log)
    assert [r[0] for r in rows] == [first, *seqs, last]
    assert [r[1] for r in rows] == ["before", "t.one", "t.two", "t.one", "after"]
    assert rows[1][2:] == ("my-id", "s-1", "2026-01-01T00:00:00.000Z", "kind-1", {"n": 1})
    assert rows[2][3:] == (None, None, None, {"n": [2]})
    assert rows[3][3:] == ("s-2", None, "kind-3", {})
    assert len({r[2] for r in rows}) == 5  # generated ids are unique


async def test_a_failed_operation_leaves_none_of_its_entries(store: Store) -> None:
    def bad(tx: Tx) -> None:
        tx.append_entries("default", [("gone", None, None, None, None, "{}")] * 3)
        raise InvalidArgument("nope", reason="TEST")

    def good(tx: Tx) -> list[int]:
        return list(tx.append_entries("default", [("kept", None, None, None, None, "{}")] * 2))

    failed, kept = await asyncio.gather(store.write(bad), store.write(good), return_exceptions=True)
    assert isinstance(failed, InvalidArgument)
    rows = await store.read(_log)
    assert [(r[0], r[1]) for r in rows] == [(seq, "kept") for seq in kept]  # type: ignore[union-attr]
