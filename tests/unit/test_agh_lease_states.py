"""The lease state machine, as a table: from each state a run can be in, what
each lease operation of the session `W` does (the run's status after it), or
which error refuses it (and then nothing has changed). The domain is called
directly, on each backend; time moves with a patched clock. The rules
themselves, without a database: test_agh_lease_rules.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import Connection, select

from service.base.errors import DomainError
from service.domain.agh import leases, tasks
from service.domain.agh.identity import Claimed
from service.domain.runtime import sessions as runtime
from service.store.agh.tables import agh_task_runs, agh_tasks
from service.store.store import Store
from service.store.tables import log_entries
from tests.agh_support import Clock

WS = "default"
W, OTHER = Claimed("w", "coder"), Claimed("other", "coder")
OPERATOR = {"kind": "human", "ref": "test"}
LEASE = 30


@pytest.fixture
async def store(store: Store) -> Store:
    """The unit tests' store, with the two agents' sessions."""
    for who in (W, OTHER):
        await runtime.create_session(store, WS, who.session_id, who.session_id, agent_name=who.agent_name)
    return store


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


async def queued(store: Store, clock: Clock) -> str:
    _, run = await tasks.create_task(store, WS, tasks.NewTask(title="t"), actor=OPERATOR)
    assert run is not None
    return run.id


async def claimed(store: Store, clock: Clock) -> str:
    run_id = await queued(store, clock)
    claim = await leases.claim_next(store, WS, W, leases.ClaimSpec(lease_seconds=LEASE))
    assert claim is not None and claim.run.id == run_id
    return run_id


async def expired(store: Store, clock: Clock) -> str:
    run_id = await claimed(store, clock)
    clock.advance(LEASE + 1)
    return run_id


async def swept(store: Store, clock: Clock) -> str:
    run_id = await expired(store, clock)
    assert await leases.sweep_expired(store) == 1
    return run_id


async def taken_over(store: Store, clock: Clock) -> str:
    run_id = await swept(store, clock)
    claim = await leases.claim_next(store, WS, OTHER, leases.ClaimSpec())
    assert claim is not None and claim.run.id == run_id
    return run_id


async def held_elsewhere_while_w_holds_another(store: Store, clock: Clock) -> str:
    run_id = await queued(store, clock)
    assert (await leases.claim_next(store, WS, OTHER, leases.ClaimSpec())) is not None
    await claimed(store, clock)
    return run_id


async def completed(store: Store, clock: Clock) -> str:
    run_id = await claimed(store, clock)
    await leases.complete(store, WS, W, run_id, {"ok": True}, "")
    return run_id


async def failed(store: Store, clock: Clock) -> str:
    run_id = await claimed(store, clock)
    await leases.fail(store, WS, W, run_id, "boom", None, "")
    return run_id


async def released(store: Store, clock: Clock) -> str:
    run_id = await claimed(store, clock)
    await leases.release(store, WS, W, run_id, "", "")
    return run_id


async def canceled(store: Store, clock: Clock) -> str:
    run_id = await claimed(store, clock)
    task_id = await _task_of(store, run_id)
    await tasks.cancel_task(store, WS, task_id, "", actor=OPERATOR)
    return run_id


STATES: dict[str, Callable[[Store, Clock], Awaitable[str]]] = {
    "queued": queued,
    "claimed": claimed,
    "expired": expired,
    "swept": swept,
    "taken over": taken_over,
    "held elsewhere": held_elsewhere_while_w_holds_another,
    "completed": completed,
    "failed": failed,
    "released": released,
    "canceled": canceled,
}

OPS: dict[str, Callable[[Store, str], Awaitable[Any]]] = {
    "heartbeat": lambda s, r: leases.heartbeat(s, WS, W, r, 0, ""),
    "complete": lambda s, r: leases.complete(s, WS, W, r, {"done": 1}, ""),
    "fail": lambda s, r: leases.fail(s, WS, W, r, "broke", None, ""),
    "release": lambda s, r: leases.release(s, WS, W, r, "", ""),
}

STALE, TERMINAL, NOT_OWNED, NOT_RELEASABLE = (
    "TASK_RUN_STALE_LEASE",
    "TASK_RUN_ALREADY_TERMINAL",
    "TASK_RUN_NOT_OWNED",
    "TASK_RUN_NOT_RELEASABLE",
)
# state -> (heartbeat, complete, fail, release): the run's status after, or the refusal.
TABLE: dict[str, tuple[str, str, str, str]] = {
    "queued": (STALE, STALE, STALE, NOT_RELEASABLE),
    "claimed": ("claimed", "completed", "failed", "queued"),
    "expired": (STALE, STALE, STALE, NOT_RELEASABLE),
    "swept": (STALE, STALE, STALE, NOT_RELEASABLE),
    "taken over": (STALE, STALE, STALE, NOT_RELEASABLE),
    "held elsewhere": (NOT_OWNED, NOT_OWNED, NOT_OWNED, NOT_OWNED),
    "completed": (TERMINAL, TERMINAL, TERMINAL, NOT_RELEASABLE),
    "failed": (TERMINAL, TERMINAL, TERMINAL, NOT_RELEASABLE),
    "released": (STALE, STALE, STALE, NOT_RELEASABLE),
    "canceled": (TERMINAL, TERMINAL, TERMINAL, NOT_RELEASABLE),
}
CASES = [(state, op, TABLE[state][i]) for state in TABLE for i, op in enumerate(OPS)]


async def _task_of(store: Store, run_id: str) -> str:
    def read(conn: Connection) -> str:
        return str(
            conn.execute(select(agh_task_runs.c.task_id).where(agh_task_runs.c.id == run_id)).scalar_one()
        )

    return await store.read(read)


async def everything(store: Store) -> tuple[Any, ...]:
    def read(conn: Connection) -> tuple[Any, ...]:
        return tuple(
            sorted(map(tuple, conn.execute(select(t))), key=repr)
            for t in (agh_tasks, agh_task_runs, log_entries)
        )

    return await store.read(read)


async def run_status(store: Store, run_id: str) -> str:
    def read(conn: Connection) -> str:
        return str(
            conn.execute(select(agh_task_runs.c.status).where(agh_task_runs.c.id == run_id)).scalar_one()
        )

    return await store.read(read)


@pytest.mark.parametrize(("state", "op", "outcome"), CASES, ids=[f"{s}-{o}" for s, o, _ in CASES])
async def test_lease_operation(store: Store, clock: Clock, state: str, op: str, outcome: str) -> None:
    run_id = await STATES[state](store, clock)
    before = await everything(store)
    if outcome.isupper():
        with pytest.raises(DomainError) as refused:
            await OPS[op](store, run_id)
        assert refused.value.reason == outcome
        assert await everything(store) == before
    else:
        await OPS[op](store, run_id)
        assert await run_status(store, run_id) == outcome


CLAIMABLE = {"queued", "swept", "released"}


@pytest.mark.parametrize("state", sorted(STATES))
async def test_claim_takes_only_queued_runs(store: Store, clock: Clock, state: str) -> None:
    """A third session claims: it gets the run only in the states that put it (back) in the queue."""
    run_id = await STATES[state](store, clock)
    third = Claimed("third", "coder")
    await runtime.create_session(store, WS, "third", "third", agent_name="coder")
    claim = await leases.claim_next(store, WS, third, leases.ClaimSpec())
    taken = claim.run.id if claim is not None else None
    if state in CLAIMABLE:
        assert taken == run_id
    else:
        # A failed run is followed by its queued retry: a new run, not this one.
        assert taken != run_id
        assert (taken is not None) == (state == "failed")


async def _claim_or_refusal(store: Store) -> str | None:
    try:
        claim = await leases.claim_next(store, WS, W, leases.ClaimSpec(lease_seconds=LEASE))
    except DomainError as err:
        return err.reason
    return None if claim is None else claim.run.id


async def test_claim_while_holding_a_lease_is_refused(store: Store, clock: Clock) -> None:
    await claimed(store, clock)
    await queued(store, clock)
    before = await everything(store)
    assert await _claim_or_refusal(store) == "TASK_RUN_STILL_ACTIVE"
    assert await everything(store) == before
    clock.advance(LEASE + 1)  # an expired lease no longer counts
    assert await _claim_or_refusal(store) not in (None, "TASK_RUN_STILL_ACTIVE")


async def test_expiry_keeps_the_attempt_and_failure_queues_the_next(store: Store, clock: Clock) -> None:
    run_id = await swept(store, clock)
    claim = await leases.claim_next(store, WS, W, leases.ClaimSpec())
    assert claim is not None and (claim.run.id, claim.run.attempt) == (run_id, 1)
    await leases.fail(store, WS, W, run_id, "x", None, "")
    retry = await leases.claim_next(store, WS, W, leases.ClaimSpec())
    assert retry is not None and retry.run.attempt == 2 and retry.run.previous_run_id == run_id
