"""Group commit: a failing operation undoes only itself; callers hear after commit."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from service.base.errors import InvalidArgument
from service.store import log
from service.store.log import Tx
from service.store.store import Store
from service.store.tables import log_entries


def _types(conn: object) -> list[str]:
    return [r.type for r in conn.execute(select(log_entries.c.type).order_by(log_entries.c.seq))]  # type: ignore[attr-defined]


async def test_failing_operation_in_a_batch_undoes_only_itself(store: Store) -> None:
    def good(name: str):
        def op(tx: Tx) -> int:
            return tx.append(name, "default", {"n": name})

        return op

    def bad(tx: Tx) -> None:
        tx.append("half.written", "default", {})
        raise InvalidArgument("nope", reason="TEST")

    results = await asyncio.gather(
        store.write(good("a")), store.write(bad), store.write(good("b")), return_exceptions=True
    )
    assert isinstance(results[1], InvalidArgument)
    assert results[0] < results[2]  # seqs in submission order
    assert await store.read(_types) == ["a", "b"]  # nothing of the failed operation remains


async def test_unexpected_exception_is_reported_and_isolated(store: Store) -> None:
    def boom(tx: Tx) -> None:
        tx.append("x", "default", {})
        raise RuntimeError("bug")

    def ok(tx: Tx) -> int:
        return tx.append("ok", "default", {})

    results = await asyncio.gather(store.write(boom), store.write(ok), return_exceptions=True)
    assert isinstance(results[0], RuntimeError)
    assert isinstance(results[1], int)
    assert await store.read(_types) == ["ok"]


async def test_watchers_are_woken_with_the_committed_position(store: Store) -> None:
    start = store.notifier.head
    waiter = asyncio.create_task(store.notifier.wait_beyond(start, within=5))
    await asyncio.sleep(0)
    seq = await store.write(lambda tx: tx.append("woke", "default", {}))
    assert await waiter is True
    assert store.notifier.head == seq
    entries = await store.read(lambda c: log.read_after(c, start, limit=10))
    assert [e.type for e in entries] == ["woke"]


async def test_stop_commits_what_was_already_submitted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    s = Store(url)
    await s.open()
    pending = [
        asyncio.ensure_future(s.write(lambda tx, i=i: tx.append(f"e{i}", "default", {}))) for i in range(50)
    ]
    await asyncio.sleep(0)
    await s.close()
    assert all(p.done() and not p.exception() for p in pending)
    again = Store(url)
    await again.open()
    assert len(await again.read(_types)) == 50
    await again.close()
