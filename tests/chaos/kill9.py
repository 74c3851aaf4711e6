"""kill -9 cycles with acknowledged-write accounting.

Writers of four families (runtime events, Trenchcoat batches, tracer event
batches, AGH tasks) post continuously, each write with its own
Idempotency-Key; the server is killed with SIGKILL at random moments and
restarted on the same ports and database. A write whose answer was lost
(connection cut) is looked up in the database while the server is down
(committed without an acknowledgement?) and then retried with the same key
until it is acknowledged (a 409 to such a retry, "committed before, its
answer lost", counts as an acknowledgement). At the end every acknowledged
write must be stored, none twice, and no batch in part."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

import httpx

from tests.bench.run import free_port
from tests.chaos.context import Context, Outcome
from tests.chaos.writes import FAMILIES, Write, Writes, stored_copies

LANES = 2  # writers per family


@dataclass
class Ledger:
    acked: dict[str, str] = field(default_factory=dict)  # marker -> family
    in_doubt: dict[str, str] = field(default_factory=dict)  # sent, answer lost, not yet acknowledged
    retried: set[str] = field(default_factory=set)  # every write once in doubt
    committed_unacked: int = 0
    conflicts: int = 0  # retries answered 409: "committed before, answer lost"
    statuses: Counter[int] = field(default_factory=Counter)  # refusals other than 429/503
    examples: dict[int, str] = field(default_factory=dict)  # the first such answer of each status
    stopping: bool = False


async def _writer(client: httpx.AsyncClient, writes: Writes, family: str, lane: int, ledger: Ledger) -> None:
    pending: Write | None = None
    while True:
        if pending is None:
            if ledger.stopping:
                return
            pending = writes.make(family, lane)
        try:
            answer = await client.post(
                pending.path, json=pending.body, headers={"Idempotency-Key": pending.key}
            )
        except (httpx.ConnectError, httpx.ConnectTimeout):
            await asyncio.sleep(0.05)  # never reached a server: send it again later
            continue
        except httpx.TransportError:
            ledger.in_doubt[pending.marker] = family  # sent; it may have committed
            ledger.retried.add(pending.marker)
            await asyncio.sleep(0.05)
            continue
        if answer.status_code in (429, 503):
            await asyncio.sleep(0.1)
            continue
        if answer.status_code < 300:
            ledger.acked[pending.marker] = family
        elif answer.status_code == 409 and pending.marker in ledger.retried:
            # The key's write committed but its answer was lost: it counts as
            # acknowledged, so it must be stored (and once).
            ledger.acked[pending.marker] = family
            ledger.conflicts += 1
        else:
            ledger.statuses[answer.status_code] += 1
            ledger.examples.setdefault(answer.status_code, f"{pending.family} {answer.text[:200]}")
        ledger.in_doubt.pop(pending.marker, None)
        pending = None


def _account_in_doubt(ctx: Context, ledger: Ledger) -> None:
    """While the server is down: which writes whose answer was lost are stored."""
    for family in set(ledger.in_doubt.values()):
        copies = stored_copies(ctx.db, family)
        ledger.committed_unacked += sum(
            1 for m, f in ledger.in_doubt.items() if f == family and copies.get(m, 0) >= 1
        )
    ledger.in_doubt.clear()


async def _cycles(ctx: Context, ledger: Ledger) -> None:
    ports = (free_port(), free_port())
    writes = Writes(LANES)
    limits = httpx.Limits(max_connections=LANES * len(FAMILIES))
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{ports[0]}", timeout=30, limits=limits
    ) as client:
        writers: list[asyncio.Task[None]] = []
        try:
            for cycle in range(ctx.sizes.cycles + 1):
                with ctx.server(ports) as srv:
                    if cycle == 0:
                        await writes.setup(client)
                        writers = [
                            asyncio.create_task(_writer(client, writes, family, lane, ledger))
                            for family in FAMILIES
                            for lane in range(LANES)
                        ]
                    if cycle == ctx.sizes.cycles:  # the last life: retries finish, then a clean stop
                        ledger.stopping = True
                        await asyncio.wait_for(asyncio.gather(*writers), 60)
                        break
                    await asyncio.sleep(ctx.rng.uniform(0.2, ctx.sizes.uptime))
                    assert srv.proc is not None
                    srv.proc.kill()
                    srv.proc.wait()
                    await asyncio.sleep(0.2)  # the writers see their connections cut
                    _account_in_doubt(ctx, ledger)
        finally:
            for task in writers:
                task.cancel()
            await asyncio.gather(*writers, return_exceptions=True)


def run(ctx: Context) -> Outcome:
    ledger = Ledger()
    asyncio.run(_cycles(ctx, ledger))
    lost = duplicated = torn = 0
    per_family: Counter[str] = Counter(ledger.acked.values())
    details = []
    for family in FAMILIES:
        copies = stored_copies(ctx.db, family)
        doubled = sum(n >= 2 for n in copies.values())
        torn += sum(n != int(n) for n in copies.values())
        duplicated += doubled
        if doubled:
            details.append(f"{family}: {doubled} stored twice or more")
        missing = [m for m, f in ledger.acked.items() if f == family and copies.get(m, 0) == 0]
        lost += len(missing)
        if missing:
            details.append(f"{family}: lost {', '.join(missing[:5])}")
    if ledger.statuses:
        details.append(f"refused: {dict(ledger.statuses)}")
        details += [f"{status}: {text}" for status, text in ledger.examples.items()]
    figures = (
        f"{ctx.sizes.cycles} kills, {len(ledger.acked):,} acknowledged writes "
        f"({', '.join(f'{f} {per_family[f]:,}' for f in FAMILIES)}): {lost} lost, "
        f"{ledger.committed_unacked} committed unacknowledged, {duplicated} duplicated on retry "
        f"({ledger.conflicts} retries answered 409 already committed), "
        f"{torn} batches in part"
    )
    passed = lost == 0 and duplicated == 0 and torn == 0 and not ledger.statuses and len(ledger.acked) > 0
    return Outcome(passed, figures, details)
