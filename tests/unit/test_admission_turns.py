"""Large requests admitted are processed a few at a time, in arrival order
(service.rpc.admission.ByteBudget.turn), so that many decoded batches never
hold the event loop at once; small requests never wait for a turn."""

from __future__ import annotations

import asyncio

from service.rpc.admission import LARGE_AT_ONCE, LARGE_BYTES, ByteBudget


async def test_large_requests_take_turns_in_arrival_order_and_small_ones_never_wait() -> None:
    budget = ByteBudget(0)
    release = asyncio.Event()
    entered: list[str] = []

    async def request(name: str, size: int, hold: asyncio.Event | None = None) -> None:
        async with budget.turn(size):
            entered.append(name)
            if hold is not None:
                await hold.wait()

    holders = [asyncio.create_task(request(f"large-{i}", LARGE_BYTES, release)) for i in range(LARGE_AT_ONCE)]
    waiting = [asyncio.create_task(request(f"next-{i}", LARGE_BYTES * 3)) for i in range(2)]
    await asyncio.sleep(0.01)
    assert entered == [f"large-{i}" for i in range(LARGE_AT_ONCE)]  # the next ones wait

    await asyncio.wait_for(request("small", LARGE_BYTES - 1), 1)  # not behind them
    assert entered[-1] == "small"

    release.set()
    await asyncio.wait_for(asyncio.gather(*holders, *waiting), 1)
    assert entered[LARGE_AT_ONCE + 1 :] == ["next-0", "next-1"]
