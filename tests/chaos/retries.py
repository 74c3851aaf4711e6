"""Retries with and without idempotency keys. The same write of each family
is sent N times with one `Idempotency-Key` (and over gRPC, CreateAghTask with
one `idempotency-key` metadata): it must be stored once and every answer be
the first one. Sent N times without a key: the families with a natural key
(Trenchcoat's per-session `seq`, the tracer's `eventId`) must store it once;
the others' copies are reported."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import httpx
from agentplane.v1 import agh_pb2, agh_pb2_grpc

from tests.chaos.context import Context, Outcome
from tests.chaos.writes import FAMILIES, Writes, stored_copies

NATURAL_KEYS = {"trenchcoat", "tracer"}


async def _send(
    client: httpx.AsyncClient, writes: Writes, family: str, times: int, keyed: bool
) -> tuple[str, int]:
    """(marker, distinct answers) of one write sent `times` times."""
    write = writes.make(family)
    headers = {"Idempotency-Key": write.key} if keyed else {}
    answers = set()
    for _ in range(times):
        answer = await client.post(write.path, json=write.body, headers=headers)
        if answer.status_code >= 300:
            raise RuntimeError(f"{family}: {answer.status_code} {answer.text[:200]}")
        answers.add(answer.content)
    return write.marker, len(answers)


async def _grpc_tasks(target: str, marker: str, times: int) -> tuple[str, int]:
    metadata = (("idempotency-key", str(uuid.uuid4())),)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = agh_pb2_grpc.AghTaskServiceStub(channel)
        answers = {
            (
                await stub.CreateAghTask(
                    agh_pb2.CreateAghTaskRequest(title=f"chaos {marker}"), metadata=metadata
                )
            ).SerializeToString(deterministic=True)
            for _ in range(times)
        }
    return marker, len(answers)


async def _all(ctx: Context, http_port: int, grpc_port: int) -> Outcome:
    times = ctx.sizes.retries
    writes = Writes()
    sent: dict[tuple[str, bool], tuple[str, int]] = {}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=30) as client:
        await writes.setup(client)
        for family in FAMILIES:
            for keyed in (True, False):
                sent[family, keyed] = await _send(client, writes, family, times, keyed)
    grpc_marker, grpc_answers = await _grpc_tasks(
        f"127.0.0.1:{grpc_port}", writes.make("tasks").marker, times
    )
    passed = True
    keyed_parts, unkeyed_parts = [], []
    for family in FAMILIES:
        copies = stored_copies(ctx.db, family)
        marker, answers = sent[family, True]
        n = copies.get(marker, 0)
        passed &= n == 1 and answers == 1
        keyed_parts.append(f"{family} {n:g}" + ("" if answers == 1 else f" ({answers} answers)"))
        marker, _ = sent[family, False]
        n = copies.get(marker, 0)
        passed &= n == 1 or family not in NATURAL_KEYS
        unkeyed_parts.append(f"{family} {n:g}")
    n = stored_copies(ctx.db, "tasks").get(grpc_marker, 0)
    passed &= n == 1 and grpc_answers == 1
    keyed_parts.append(
        f"gRPC CreateAghTask {n:g}" + ("" if grpc_answers == 1 else f" ({grpc_answers} answers)")
    )
    figures = (
        f"same write sent {times} times; stored with one key: {', '.join(keyed_parts)}; "
        f"without a key: {', '.join(unkeyed_parts)} (natural keys must give 1)"
    )
    return Outcome(passed, figures)


def run(ctx: Context) -> Outcome:
    with ctx.server() as srv:
        return asyncio.run(_all(ctx, srv.http_port, srv.grpc_port))
