"""AGH records as proto messages (service/api/agh.py uses these).

Upstream omits empty optional fields; the AGH family omits unset `optional`
fields and messages, so these set a field only when there is a value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from agentplane.v1 import agh_pb2 as pb
from google.protobuf import json_format, struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from service.codec import from_dict
from service.domain.agh import context
from service.domain.agh import soul as souls
from service.domain.agh.channels.message_validation import MESSAGE_KINDS
from service.domain.agh.channels.messaging import run_channel_id
from service.domain.agh.channels.reading import preview
from service.domain.agh.context import Situation, TaskEvent
from service.domain.agh.soul import SoulState
from service.domain.agh.spawn import CATEGORIES
from service.store.agh.channels import RUN_COORDINATION, ChannelRecord, MemberRecord, MessageRecord
from service.store.agh.tasks import LineageRecord, RunRecord, TaskRecord
from service.store.sessions import SessionRecord


def timestamp(us: int | None) -> Timestamp | None:
    if us is None:
        return None
    seconds, micros = divmod(us, 1_000_000)
    return Timestamp(seconds=seconds, nanos=micros * 1000)


def json_value(value: Any) -> struct_pb2.Value | None:
    """A JSON value as google.protobuf.Value (None stays unset)."""
    if value is None:
        return None
    return json_format.ParseDict(value, struct_pb2.Value())


def present(**fields: Any) -> dict[str, Any]:
    """The keyword arguments whose value is not None (unset otherwise)."""
    return {k: v for k, v in fields.items() if v is not None}


def actor(kind: str | None, ref: str | None) -> pb.AghActor | None:
    return None if kind is None else pb.AghActor(kind=kind, ref=ref or "")


def task_pb(task: TaskRecord) -> pb.AghTask:
    """A task as agents see it (upstream's TaskReference)."""
    return pb.AghTask(
        id=task.id,
        identifier=task.identifier,
        title=task.title,
        status=task.status,
        priority=task.priority,
        scope=task.scope,
        paused=task.paused,
        effective_paused=task.paused,
        latest_event_seq=task.latest_event_seq,
        **present(workspace_id=task.scope_workspace),
    )


def task_record_pb(task: TaskRecord) -> pb.AghTaskRecord:
    """A task as the operator API shows it."""
    msg = pb.AghTaskRecord(
        id=task.id,
        identifier=task.identifier,
        title=task.title,
        description=task.description,
        status=task.status,
        priority=task.priority,
        scope=task.scope,
        paused=task.paused,
        effective_paused=task.paused,
        max_attempts=task.max_attempts,
        latest_event_seq=task.latest_event_seq,
        created_at=timestamp(task.created_at),
        updated_at=timestamp(task.updated_at),
        **present(workspace_id=task.scope_workspace),
    )
    if task.metadata is not None:
        msg.metadata.update(task.metadata)
    return msg


def _run_fields(run: RunRecord) -> dict[str, Any]:
    """What every view of a run shows."""
    return dict(
        id=run.id,
        task_id=run.task_id,
        status=run.status,
        attempt=run.attempt,
        **present(
            previous_run_id=run.previous_run_id,
            failure_kind=run.failure_kind,
            claimed_by=actor(run.claimed_by_kind, run.claimed_by_ref),
            session_id=run.session_id,
            claim_token_hash=run.claim_token_hash,
            lease_until=timestamp(run.lease_until),
            heartbeat_at=timestamp(run.heartbeat_at),
            queued_at=timestamp(run.queued_at),
            claimed_at=timestamp(run.claimed_at),
            started_at=timestamp(run.started_at),
            ended_at=timestamp(run.ended_at),
            error=run.error,
        ),
        coordination_channel_id=run_channel_id(run.id),
    )


def run_pb(run: RunRecord) -> pb.AghTaskRun:
    """A run in full (claims and the operator API)."""
    return pb.AghTaskRun(
        **_run_fields(run),
        origin=pb.AghActor(kind=run.origin_kind, ref=run.origin_ref),
        **present(metadata=json_value(run.metadata), result=json_value(run.result)),
    )


def run_summary_pb(run: RunRecord, max_attempts: int) -> pb.AghTaskRunSummary:
    """A run as the context bundle shows it."""
    return pb.AghTaskRunSummary(**_run_fields(run), max_attempts=max_attempts)


def lease_pb(run: RunRecord) -> pb.AghLease:
    """A run's lease, as its holder sees it."""
    return pb.AghLease(
        task_id=run.task_id,
        run_id=run.id,
        status=run.status,
        **present(
            session_id=run.session_id,
            claimed_by=actor(run.claimed_by_kind, run.claimed_by_ref),
            claim_token_hash=run.claim_token_hash,
            lease_until=timestamp(run.lease_until),
            heartbeat_at=timestamp(run.heartbeat_at),
        ),
        coordination_channel_id=run_channel_id(run.id),
    )


def channel_pb(channel: ChannelRecord, workspace: str) -> pb.AghChannel:
    return pb.AghChannel(
        id=channel.id,
        display_name=channel.display_name,
        purpose=channel.purpose,
        workspace_id=workspace,
        allowed_message_kinds=channel.allowed_message_kinds,
        last_activity_at=timestamp(channel.last_activity_at),
        **present(task_id=channel.task_id, run_id=channel.run_id, workflow_id=channel.workflow_id),
    )


def run_channel_pb(run: RunRecord, workspace: str) -> pb.AghChannel:
    """A run's coordination channel, as a claim shows it (created with the run)."""
    channel_id = run_channel_id(run.id)
    return pb.AghChannel(
        id=channel_id,
        display_name=channel_id,
        purpose=RUN_COORDINATION,
        workspace_id=workspace,
        task_id=run.task_id,
        run_id=run.id,
        allowed_message_kinds=MESSAGE_KINDS,
    )


def time_of(value: Any) -> Timestamp | None:
    """A session time as stored (ISO 8601 text, or a datetime) as a Timestamp;
    None when it cannot be read (seed 004 sessions carry caller-given text)."""
    if value is None:
        return None
    try:
        when = (
            value
            if isinstance(value, datetime)
            else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        )
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    ts = Timestamp()
    ts.FromDatetime(when)
    return ts


def policy_pb(permissions: dict[str, list[str]]) -> pb.AghPermissionPolicy:
    return pb.AghPermissionPolicy(**{c: permissions.get(c, []) for c in CATEGORIES})


def lineage_pb(lineage: LineageRecord) -> pb.AghLineage:
    budget = pb.AghSpawnBudget(
        max_children=lineage.max_children,
        max_depth=lineage.max_depth,
        ttl_seconds=lineage.ttl_seconds,
        **present(max_active_per_workspace=lineage.max_active_per_workspace or None),
    )
    return pb.AghLineage(
        spawn_depth=lineage.spawn_depth,
        auto_stop_on_parent=lineage.auto_stop_on_parent,
        spawn_budget=budget,
        permission_policy=policy_pb(lineage.permissions),
        **present(
            parent_session_id=lineage.parent_session_id,
            root_session_id=lineage.root_session_id,
            spawn_role=lineage.spawn_role,
            ttl_expires_at=timestamp(lineage.ttl_expires_at),
        ),
    )


def _session_fields(session: SessionRecord, lineage: LineageRecord | None, updated_at: Any) -> dict[str, Any]:
    spawned = lineage is not None and lineage.parent_session_id is not None
    return dict(
        id=session.session_id,
        state="active" if session.status == "running" else "stopped",
        type="spawned" if spawned else "user",
        **present(
            name=session.session_name or None,
            lineage=lineage_pb(lineage) if lineage is not None else None,
            created_at=time_of(session.created_at),
            updated_at=time_of(updated_at),
        ),
    )


def session_summary_pb(
    session: SessionRecord, lineage: LineageRecord | None, updated_at: Any
) -> pb.AghSessionSummary:
    return pb.AghSessionSummary(**_session_fields(session, lineage, updated_at))


def spawned_session_pb(session: SessionRecord, lineage: LineageRecord, workspace: str) -> pb.AghSession:
    return pb.AghSession(
        **_session_fields(session, lineage, None),
        agent_name=session.agent_name or "",
        provider=lineage.provider,
        workspace_id=workspace,
        badge=lineage.spawn_role or "",
        attachable=False,
        updated_at=time_of(session.created_at),
    )


def soul_pb(state: SoulState) -> pb.AghSoul:
    """A soul in full (GET /soul, /soul/validate, SetAgentSoul)."""
    parsed = state.parsed
    front = parsed.frontmatter if parsed else {}
    msg = pb.AghSoul(
        agent_name=state.agent_name,
        enabled=state.enabled,
        present=state.present,
        active=state.active,
        valid=state.valid,
        validation_status=state.validation_status,
        frontmatter=pb.AghSoulFrontmatter(
            **present(version=front.get("version"), role=front.get("role")),
            **{k: front.get(k, []) for k in souls.LIST_KEYS},
        ),
        limits=pb.AghSoulLimits(
            max_body_bytes=souls.MAX_BODY_BYTES, context_projection_bytes=souls.CONTEXT_PROJECTION_BYTES
        ),
        config_provenance=pb.AghSoulConfigProvenance(
            digest=souls.config_digest(),
            source="default",
            enabled=state.enabled,
            max_body_bytes=souls.MAX_BODY_BYTES,
            context_projection_bytes=souls.CONTEXT_PROJECTION_BYTES,
        ),
        diagnostics=[
            pb.AghSoulDiagnostic(
                code=d.code,
                severity=d.severity,
                message=d.message,
                **present(field=d.field, section=d.section, line=d.line, owner_surface=d.owner_surface),
            )
            for d in (parsed.diagnostics if parsed else [])
        ],
        **present(
            digest=parsed.digest if parsed and state.present else None,
            body=parsed.body if parsed and state.present else None,
        ),
    )
    if state.stored is not None:
        msg.snapshot_id = msg.revision_id = state.stored.revision_id
        msg.created_at.FromMicroseconds(state.stored.created_at)
    return msg


_SUMMARY_FIELDS = frozenset(pb.AghTaskRunSummary.DESCRIPTOR.fields_by_name)
_TASK_FIELDS = frozenset(pb.AghTask.DESCRIPTOR.fields_by_name)


def _event_pb(event: TaskEvent) -> pb.AghTaskEvent:
    """A task's log entry as the context bundle shows it (from the entry's data)."""
    data = event.data
    msg = pb.AghTaskEvent(
        event_id=event.event_id,
        event_type=event.type,
        sequence=event.seq,
        actor=pb.AghActor(**data.get("actor", {})),
        origin=pb.AghActor(kind="daemon", ref="agentplane"),
        **present(timestamp=time_of(event.recorded_at), payload=json_value(data.get("payload"))),
    )
    task = data.get("task") or {}
    if task:
        view = {k: v for k, v in task.items() if k in _TASK_FIELDS and v is not None}
        view.update(effective_paused=task.get("paused", False), latest_event_seq=event.seq)
        msg.task.CopyFrom(from_dict(view, pb.AghTask))
    run = data.get("run")
    if run:
        view = {k: v for k, v in run.items() if k in _SUMMARY_FIELDS and v is not None}
        msg.run.CopyFrom(from_dict(view, pb.AghTaskRunSummary))
        msg.run.max_attempts = int(task.get("max_attempts", 0))
        msg.run.coordination_channel_id = run_channel_id(run["id"])
        if run.get("claimed_by_kind"):
            msg.run.claimed_by.CopyFrom(
                pb.AghActor(kind=run["claimed_by_kind"], ref=run.get("claimed_by_ref") or "")
            )
    return msg


def _self_pb(s: Situation) -> pb.AghSelf:
    return pb.AghSelf(
        session_id=s.caller.session_id, agent_name=s.caller.agent_name, provider=s.lineage.provider
    )


def _workspace_pb(s: Situation) -> pb.AghWorkspace:
    return pb.AghWorkspace(id=s.workspace, name=s.workspace, **present(root_dir=s.caller.session.project_dir))


def _summary(s: Situation) -> pb.AghSessionSummary:
    return session_summary_pb(s.caller.session, s.lineage if s.has_lineage else None, s.session_updated_at)


def _section(meta: dict[str, Any]) -> pb.AghSectionMeta:
    return pb.AghSectionMeta(**meta)


def coordinator_pb(config: dict[str, Any]) -> pb.AghCoordinatorConfig:
    return pb.AghCoordinatorConfig(**config)


def me_pb(s: Situation) -> pb.AghMe:
    current = s.current
    leases = [lease_pb(current.run)] if current is not None and current.holds_lease else []
    return pb.AghMe(
        self=_self_pb(s),
        workspace=_workspace_pb(s),
        session=_summary(s),
        capabilities=[],
        channels=[channel_pb(c, s.workspace) for c in s.channels.channels],
        active_task_leases=leases,
        coordinator=coordinator_pb(context.coordinator(s.workspace)),
        limits=pb.AghLimits(**context.limits(s.lineage)),
    )


def _task_section(s: Situation) -> pb.AghTaskSection:
    current = s.current
    if current is None:
        return pb.AghTaskSection(available=False)
    task, max_attempts = current.task, current.task.max_attempts
    bundle = pb.AghContextBundle(
        task=task_pb(task),
        current_run=run_summary_pb(current.run, max_attempts),
        prior_attempts=[run_summary_pb(r, max_attempts) for r in current.prior_attempts],
        handoff_summary="",
        latest_event_seq=task.latest_event_seq,
        limits=pb.AghBundleLimits(**context.BUNDLE_LIMITS),
        recent_events=[_event_pb(e) for e in current.events],
    )
    section = pb.AghTaskSection(available=True, task=task_pb(task), bundle=bundle)
    if current.holds_lease:
        section.lease.CopyFrom(lease_pb(current.run))
    return section


def _inbox_item_pb(m: MessageRecord) -> pb.AghInboxItem:
    metadata = from_dict(orjson.loads(m.metadata), pb.AghMessageMetadata)
    return pb.AghInboxItem(
        message_id=m.message_id,
        channel_id=m.channel_id,
        kind=metadata.message_kind,
        metadata=metadata,
        timestamp=timestamp(m.sent_at),
        **present(preview=preview(m) or None),
    )


def _peer_pb(m: MemberRecord, channel_id: str) -> pb.AghPeer:
    return pb.AghPeer(
        peer_id=m.session_id, session_id=m.session_id, display_name=m.agent_name, channel_id=channel_id
    )


def _channel_sections(s: Situation) -> dict[str, Any]:
    """The coordination channel of the caller's run, its unread messages
    (newest first) and the peers on it."""
    found = s.channels
    if found.coordination is None:
        empty = _section(context.section(0))
        return {
            "coordination_channel": pb.AghCoordinationSection(available=False),
            "inbox_summary": pb.AghInboxSummary(section=empty, unread_count=0, items=[]),
            "peer_roster": pb.AghPeerRoster(section=empty, peers=[]),
        }
    channel_id = found.coordination.id
    peers = found.peers[: context.CONTEXT_SECTION_LIMIT]
    return {
        "coordination_channel": pb.AghCoordinationSection(
            available=True, channel=channel_pb(found.coordination, s.workspace)
        ),
        "inbox_summary": pb.AghInboxSummary(
            section=_section(context.section(found.unread_count)),
            unread_count=found.unread_count,
            items=[_inbox_item_pb(m) for m in found.unread],
        ),
        "peer_roster": pb.AghPeerRoster(
            section=_section(context.section(len(found.peers))),
            peers=[_peer_pb(m, channel_id) for m in peers],
        ),
    }


def context_pb(s: Situation, generated_at: int) -> pb.AghContext:
    empty = _section(context.section(0))
    soul = souls.compact(s.soul)
    return pb.AghContext(
        self=_self_pb(s),
        workspace=_workspace_pb(s),
        session=_summary(s),
        soul=pb.AghSoulSection(**soul),
        task=_task_section(s),
        **_channel_sections(s),
        capabilities=pb.AghCapabilitySection(section=empty, capabilities=[]),
        limits=pb.AghLimits(**context.limits(s.lineage)),
        provenance=pb.AghProvenance(generated_at=timestamp(generated_at), source="daemon.situation"),
    )
