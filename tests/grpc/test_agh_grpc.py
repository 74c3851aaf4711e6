"""The AGH services over gRPC: the same rules as the JSON routes, the caller's
identity as `x-agh-session-id` / `x-agh-agent` metadata, and errors as a
google.rpc.Status with a stable ErrorInfo reason (what the AGH family maps
to upstream's diagnostic codes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from agentplane.v1 import agh_pb2 as pb
from agentplane.v1 import agh_pb2_grpc as rpc
from agentplane.v1 import runtime_pb2, runtime_pb2_grpc

from tests.conftest import Server
from tests.grpc.test_runtime_grpc import assert_reason, failure

WORKER = (("x-agh-session-id", "worker"), ("x-agh-agent", "coder"))


@pytest.fixture
async def channel(server: Server) -> AsyncIterator[grpc.aio.Channel]:
    channel = server.channel()
    sessions = runtime_pb2_grpc.SessionServiceStub(channel)
    await sessions.CreateSession(
        runtime_pb2.CreateSessionRequest(session_id="worker", session_name="worker", agent_name="coder")
    )
    try:
        yield channel
    finally:
        await channel.close()


async def test_task_queue_round_trip(channel: grpc.aio.Channel) -> None:
    tasks, agent = rpc.AghTaskServiceStub(channel), rpc.AghAgentServiceStub(channel)
    created = await tasks.CreateAghTask(pb.CreateAghTaskRequest(title="Fix it", priority="urgent"))
    assert created.task.identifier == "TASK-1" and created.run.status == "queued"
    reply = await agent.ClaimNextTaskRun(pb.ClaimNextTaskRunRequest(lease_seconds=60), metadata=WORKER)
    assert reply.claim.run.id == created.run.id
    assert reply.claim.lease.claim_token_hash.startswith("sha256:")
    assert reply.claim.lease.lease_until.ToSeconds() - reply.claim.run.claimed_at.ToSeconds() == 60
    beat = await agent.HeartbeatTaskRun(pb.HeartbeatTaskRunRequest(run_id=created.run.id), metadata=WORKER)
    assert beat.lease.status == "claimed"
    done = pb.CompleteTaskRunRequest(run_id=created.run.id)
    done.result.struct_value.update({"ok": True})
    completed = await agent.CompleteTaskRun(done, metadata=WORKER)
    assert completed.lease.status == "completed" and not completed.lease.HasField("lease_until")
    got = await tasks.GetAghTask(pb.GetAghTaskRequest(task_id=created.task.id))
    assert got.task.status == "completed"
    assert got.runs[0].result.struct_value["ok"] is True


async def test_nothing_queued_is_an_empty_reply(channel: grpc.aio.Channel) -> None:
    reply = await rpc.AghAgentServiceStub(channel).ClaimNextTaskRun(
        pb.ClaimNextTaskRunRequest(), metadata=WORKER
    )
    assert reply == pb.ClaimNextTaskRunResponse()


async def test_errors_carry_their_reason(channel: grpc.aio.Channel) -> None:
    agent = rpc.AghAgentServiceStub(channel)
    f = await failure(agent.ClaimNextTaskRun(pb.ClaimNextTaskRunRequest()))
    assert_reason(
        f,
        grpc.StatusCode.UNAUTHENTICATED,
        "IDENTITY_REQUIRED",
        "AGH_SESSION_ID is required for agent commands",
    )
    assert f.info is not None
    assert f.info.metadata["suggested_command"] == "run this command from an AGH-managed agent session"
    f = await failure(agent.HeartbeatTaskRun(pb.HeartbeatTaskRunRequest(run_id="nope"), metadata=WORKER))
    assert_reason(
        f,
        grpc.StatusCode.ABORTED,
        "TASK_RUN_STALE_LEASE",
        "task: autonomy lease rejected: AUTONOMY_NO_ACTIVE_LEASE: invalid claim token",
    )
    f = await failure(
        agent.ClaimNextTaskRun(pb.ClaimNextTaskRunRequest(lease_seconds=86_401), metadata=WORKER)
    )
    assert_reason(f, grpc.StatusCode.INVALID_ARGUMENT, "TASK_VALIDATION_FAILED")
    assert f.violations == [("lease_seconds", "exceeds 86400")]
    f = await failure(rpc.AghTaskServiceStub(channel).GetAghTask(pb.GetAghTaskRequest(task_id="nope")))
    assert_reason(f, grpc.StatusCode.NOT_FOUND, "TASK_NOT_FOUND", 'task "nope" not found')


async def test_invalid_soul_carries_its_payload(channel: grpc.aio.Channel) -> None:
    ops = rpc.AghOperatorServiceStub(channel)
    f = await failure(
        ops.SetAgentSoul(pb.SetAgentSoulRequest(agent_name="coder", body="---\nname: x\n---\n"))
    )
    assert_reason(f, grpc.StatusCode.INVALID_ARGUMENT, "SOUL_INVALID")
    assert f.info is not None and '"validation_status":"invalid"' in f.info.metadata["payload"]


async def test_a_waiting_claim_ends_before_the_callers_deadline(channel: grpc.aio.Channel) -> None:
    """With a deadline sooner than `wait_seconds`, the wait ends just before it: an empty reply, not a timeout."""
    agent = rpc.AghAgentServiceStub(channel)
    reply = await agent.ClaimNextTaskRun(pb.ClaimNextTaskRunRequest(wait=True), metadata=WORKER, timeout=1.0)
    assert reply == pb.ClaimNextTaskRunResponse()


async def test_a_cancelled_waiting_claim_claims_nothing(channel: grpc.aio.Channel) -> None:
    """A long poll whose caller gives up claims nothing: the work stays queued."""
    agent, tasks = rpc.AghAgentServiceStub(channel), rpc.AghTaskServiceStub(channel)
    call = agent.ClaimNextTaskRun(pb.ClaimNextTaskRunRequest(wait=True), metadata=WORKER)
    await asyncio.sleep(0.2)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.sleep(0.2)
    created = await tasks.CreateAghTask(pb.CreateAghTaskRequest(title="later"))
    await asyncio.sleep(0.2)
    got = await tasks.GetAghTask(pb.GetAghTaskRequest(task_id=created.task.id))
    assert [r.status for r in got.runs] == ["queued"]
    reply = await agent.ClaimNextTaskRun(pb.ClaimNextTaskRunRequest(), metadata=WORKER)
    assert reply.claim.run.id == created.run.id
