"""AghAgentService, AghTaskService and AghOperatorService: the AGH family
(seed 003) and agentplane's operator API for its task queue."""

from __future__ import annotations

import orjson
from agentplane.v1 import agh_pb2 as pb

from service.api.agh_views import (
    context_pb,
    coordinator_pb,
    lease_pb,
    lineage_pb,
    me_pb,
    policy_pb,
    run_channel_pb,
    run_pb,
    soul_pb,
    spawned_session_pb,
    task_pb,
    task_record_pb,
)
from service.base.errors import InvalidArgument
from service.codec import struct_to_python, to_dict, value_to_python
from service.domain.agh import context, leases, soul, spawn, tasks
from service.domain.agh.common import now_us
from service.domain.agh.identity import Claimed
from service.domain.agh.reasons import AghReason
from service.rpc.context import CallContext
from service.store.store import Store


def operator(ctx: CallContext) -> dict[str, str]:
    """The actor of an operator call: the API key, when auth is on."""
    return {"kind": "human", "ref": ctx.key_id or "operator"}


def _json(req: object, field: str) -> object:
    """A google.protobuf.Value field as a JSON value (None when unset)."""
    return value_to_python(getattr(req, field)) if req.HasField(field) else None  # type: ignore[attr-defined]


class AghTaskServicer:
    service = pb.DESCRIPTOR.services_by_name["AghTaskService"]

    def __init__(self, store: Store) -> None:
        self.store = store

    async def CreateAghTask(self, req: pb.CreateAghTaskRequest, ctx: CallContext) -> pb.CreateAghTaskResponse:
        spec = tasks.NewTask(
            title=req.title,
            description=req.description,
            scope=req.scope,
            workspace=req.workspace,
            priority=req.priority,
            max_attempts=req.max_attempts,
            draft=req.draft,
            metadata=struct_to_python(req.metadata) if req.HasField("metadata") else None,
        )
        task, run = await tasks.create_task(self.store, ctx.workspace, spec, actor=operator(ctx))
        reply = pb.CreateAghTaskResponse(task=task_record_pb(task))
        if run is not None:
            reply.run.CopyFrom(run_pb(run))
        return reply

    async def ListAghTasks(self, req: pb.ListAghTasksRequest, ctx: CallContext) -> pb.ListAghTasksResponse:
        page, token = await tasks.list_tasks(
            self.store,
            ctx.workspace,
            status=req.status,
            priority=req.priority,
            scope=req.scope,
            page_size=req.page_size,
            page_token=req.page_token,
        )
        return pb.ListAghTasksResponse(tasks=[task_record_pb(t) for t in page], next_page_token=token)

    async def GetAghTask(self, req: pb.GetAghTaskRequest, ctx: CallContext) -> pb.GetAghTaskResponse:
        found = await tasks.get_task(self.store, ctx.workspace, req.task_id)
        return pb.GetAghTaskResponse(task=task_record_pb(found.task), runs=[run_pb(r) for r in found.runs])

    async def QueueAghTaskRun(
        self, req: pb.QueueAghTaskRunRequest, ctx: CallContext
    ) -> pb.QueueAghTaskRunResponse:
        task, run = await tasks.queue_another_run(self.store, ctx.workspace, req.task_id, actor=operator(ctx))
        return pb.QueueAghTaskRunResponse(task=task_record_pb(task), run=run_pb(run))

    async def CancelAghTask(self, req: pb.CancelAghTaskRequest, ctx: CallContext) -> pb.CancelAghTaskResponse:
        task = await tasks.cancel_task(
            self.store, ctx.workspace, req.task_id, req.reason, actor=operator(ctx)
        )
        return pb.CancelAghTaskResponse(task=task_record_pb(task))

    async def PauseAghTask(self, req: pb.PauseAghTaskRequest, ctx: CallContext) -> pb.PauseAghTaskResponse:
        task = await tasks.set_paused(self.store, ctx.workspace, req.task_id, True, actor=operator(ctx))
        return pb.PauseAghTaskResponse(task=task_record_pb(task))

    async def ResumeAghTask(self, req: pb.ResumeAghTaskRequest, ctx: CallContext) -> pb.ResumeAghTaskResponse:
        task = await tasks.set_paused(self.store, ctx.workspace, req.task_id, False, actor=operator(ctx))
        return pb.ResumeAghTaskResponse(task=task_record_pb(task))


class AghAgentServicer:
    service = pb.DESCRIPTOR.services_by_name["AghAgentService"]

    def __init__(self, store: Store) -> None:
        self.store = store

    async def ClaimNextTaskRun(
        self, req: pb.ClaimNextTaskRunRequest, ctx: CallContext
    ) -> pb.ClaimNextTaskRunResponse:
        spec = leases.ClaimSpec(
            workspace_id=req.workspace_id.strip(),
            priority_min=req.priority_min,
            lease_seconds=req.lease_seconds,
            wait=req.wait,
            wait_seconds=req.wait_seconds,
        )
        claim = await leases.claim_next(
            self.store, ctx.workspace, Claimed.of(ctx.metadata), spec, give_up_in=ctx.time_remaining
        )
        if claim is None:
            return pb.ClaimNextTaskRunResponse()
        return pb.ClaimNextTaskRunResponse(
            claim=pb.AghClaim(
                task=task_pb(claim.task),
                run=run_pb(claim.run),
                lease=lease_pb(claim.run),
                coordination_channel=run_channel_pb(claim.run, ctx.workspace),
            )
        )

    async def HeartbeatTaskRun(
        self, req: pb.HeartbeatTaskRunRequest, ctx: CallContext
    ) -> pb.HeartbeatTaskRunResponse:
        _, run = await leases.heartbeat(
            self.store,
            ctx.workspace,
            Claimed.of(ctx.metadata),
            req.run_id,
            req.lease_seconds,
            req.claim_token_hash,
        )
        return pb.HeartbeatTaskRunResponse(lease=lease_pb(run))

    async def CompleteTaskRun(
        self, req: pb.CompleteTaskRunRequest, ctx: CallContext
    ) -> pb.CompleteTaskRunResponse:
        _, run = await leases.complete(
            self.store,
            ctx.workspace,
            Claimed.of(ctx.metadata),
            req.run_id,
            _json(req, "result"),
            req.claim_token_hash,
        )
        return pb.CompleteTaskRunResponse(lease=lease_pb(run))

    async def FailTaskRun(self, req: pb.FailTaskRunRequest, ctx: CallContext) -> pb.FailTaskRunResponse:
        _, run = await leases.fail(
            self.store,
            ctx.workspace,
            Claimed.of(ctx.metadata),
            req.run_id,
            req.error,
            _json(req, "metadata"),
            req.claim_token_hash,
        )
        return pb.FailTaskRunResponse(lease=lease_pb(run))

    async def ReleaseTaskRun(
        self, req: pb.ReleaseTaskRunRequest, ctx: CallContext
    ) -> pb.ReleaseTaskRunResponse:
        _, run = await leases.release(
            self.store, ctx.workspace, Claimed.of(ctx.metadata), req.run_id, req.reason, req.claim_token_hash
        )
        return pb.ReleaseTaskRunResponse(lease=lease_pb(run))

    async def GetAgentMe(self, req: pb.GetAgentMeRequest, ctx: CallContext) -> pb.GetAgentMeResponse:
        found = await context.situation(self.store, ctx.workspace, Claimed.of(ctx.metadata), now_us())
        return pb.GetAgentMeResponse(me=me_pb(found))

    async def GetAgentContext(
        self, req: pb.GetAgentContextRequest, ctx: CallContext
    ) -> pb.GetAgentContextResponse:
        now = now_us()
        found = await context.situation(self.store, ctx.workspace, Claimed.of(ctx.metadata), now)
        return pb.GetAgentContextResponse(context=context_pb(found, now))

    async def GetCoordinatorConfig(
        self, req: pb.GetCoordinatorConfigRequest, ctx: CallContext
    ) -> pb.GetCoordinatorConfigResponse:
        config = await context.coordinator_config(self.store, ctx.workspace, Claimed.of(ctx.metadata))
        return pb.GetCoordinatorConfigResponse(coordinator=coordinator_pb(config))

    async def SpawnAgentSession(
        self, req: pb.SpawnAgentSessionRequest, ctx: CallContext
    ) -> pb.SpawnAgentSessionResponse:
        spec = spawn.SpawnSpec(
            agent_name=req.agent_name,
            ttl_seconds=req.ttl_seconds,
            spawn_role=req.spawn_role,
            auto_stop_on_parent=req.auto_stop_on_parent if req.HasField("auto_stop_on_parent") else True,
            permissions=_permissions(req.permissions),
            provider=req.provider,
            name=req.name,
        )
        child = await spawn.spawn(self.store, ctx.workspace, Claimed.of(ctx.metadata), spec)
        return pb.SpawnAgentSessionResponse(
            spawn=pb.AghSpawn(
                session=spawned_session_pb(child.session, child.lineage, ctx.workspace),
                lineage=lineage_pb(child.lineage),
                permissions=policy_pb(child.lineage.permissions),
            )
        )

    async def GetAgentSoul(self, req: pb.GetAgentSoulRequest, ctx: CallContext) -> pb.GetAgentSoulResponse:
        state = await soul.caller_soul(self.store, ctx.workspace, Claimed.of(ctx.metadata))
        return pb.GetAgentSoulResponse(soul=_valid_soul(state))

    async def ValidateAgentSoul(
        self, req: pb.ValidateAgentSoulRequest, ctx: CallContext
    ) -> pb.ValidateAgentSoulResponse:
        state = await soul.validate(
            self.store, ctx.workspace, Claimed.of(ctx.metadata), req.workspace_id, req.agent_name, req.body
        )
        return pb.ValidateAgentSoulResponse(soul=_valid_soul(state))


def _permissions(policy: pb.AghPermissionPolicy) -> dict[str, list[str]]:
    return {c: list(getattr(policy, c)) for c in spawn.CATEGORIES}


def _valid_soul(state: soul.SoulState) -> pb.AghSoul:
    """The soul message, or (invalid) the 422 that carries it as its body, as upstream answers."""
    msg = soul_pb(state)
    if state.valid:
        return msg
    payload = orjson.dumps(to_dict(msg, proto_names=True, omit_unset=True)).decode()
    raise InvalidArgument(
        f"soul of agent {state.agent_name!r} is invalid",
        reason=AghReason.SOUL_INVALID,
        metadata={"payload": payload, "agent_name": state.agent_name},
    )


class AghOperatorServicer:
    service = pb.DESCRIPTOR.services_by_name["AghOperatorService"]

    def __init__(self, store: Store) -> None:
        self.store = store

    async def SetAgentSoul(self, req: pb.SetAgentSoulRequest, ctx: CallContext) -> pb.SetAgentSoulResponse:
        state = await soul.set_soul(self.store, ctx.workspace, req.agent_name, req.body, actor=operator(ctx))
        return pb.SetAgentSoulResponse(soul=_valid_soul(state))

    async def SetSessionSpawnPolicy(
        self, req: pb.SetSessionSpawnPolicyRequest, ctx: CallContext
    ) -> pb.SetSessionSpawnPolicyResponse:
        spec = spawn.PolicySpec(
            permissions=_permissions(req.permissions),
            max_children=req.max_children,
            max_depth=req.max_depth,
            max_active_per_workspace=req.max_active_per_workspace,
        )
        lineage = await spawn.set_policy(self.store, ctx.workspace, req.session_id, spec)
        return pb.SetSessionSpawnPolicyResponse(lineage=lineage_pb(lineage))
