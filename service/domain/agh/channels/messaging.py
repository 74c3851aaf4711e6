"""Channels and what is posted to them: operators create network channels,
every task run gets a coordination channel (`run-<run id>`), and agents and
operators post messages and replies.

A post is one write: the message row, its `channel.message` log entry (whose
seq is the message's), the channel's activity time and the sender's
membership, in one transaction; a repeated idempotency key returns the first
message and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from service.base.errors import AlreadyExists, InvalidArgument, NotFound
from service.base.ids import uuid7
from service.domain.agh.channels import message_validation as rules
from service.domain.agh.channels.message_validation import MISSING, Missing
from service.domain.agh.common import iso, now_us
from service.domain.agh.identity import Claimed, require_headers, resolve
from service.domain.agh.reasons import AghReason
from service.domain.validation import reject_nul_characters
from service.store.agh import channels as q
from service.store.agh.channels import NETWORK, RUN_COORDINATION, ChannelRecord, MessageRecord
from service.store.log import Tx
from service.store.store import Store

MESSAGE_ENTRY = "channel.message"


def run_channel_id(run_id: str) -> str:
    return f"run-{run_id}"


def channel_view(channel: ChannelRecord, workspace: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": channel.id,
        "display_name": channel.display_name,
        "purpose": channel.purpose,
        "workspace_id": workspace,
        "allowed_message_kinds": channel.allowed_message_kinds,
        "last_activity_at": iso(channel.last_activity_at),
    }
    for key in ("task_id", "run_id", "workflow_id"):
        if getattr(channel, key):
            out[key] = getattr(channel, key)
    return out


def message_view(m: MessageRecord) -> dict[str, Any]:
    """A message as log entries carry it (the routes' shape, plus `seq`)."""
    out: dict[str, Any] = {
        "message_id": m.message_id,
        "channel_id": m.channel_id,
        "from_session_id": m.from_session_id,
        "body": orjson.loads(m.body),
        "metadata": orjson.loads(m.metadata),
        "timestamp": iso(m.sent_at),
    }
    if m.to_session_id:
        out["to_session_id"] = m.to_session_id
    if m.reply_to:
        out["reply_to_message_id"] = m.reply_to
    return out


def _new_channel(
    channel_id: str, purpose: str, kinds: list[str], now: int, *, display_name: str = "", **refs: str | None
) -> ChannelRecord:
    return ChannelRecord(
        id=channel_id,
        display_name=display_name or channel_id,
        purpose=purpose,
        task_id=refs.get("task_id"),
        run_id=refs.get("run_id"),
        workflow_id=refs.get("workflow_id") or None,
        allowed_message_kinds=kinds,
        created_at=now,
        last_activity_at=now,
    )


def open_run_channel(tx: Tx, workspace: str, task_id: str, run_id: str, now: int) -> ChannelRecord:
    """The coordination channel of a newly queued run, in the run's
    transaction (its `task_run.queued` log entry explains the row)."""
    kinds = list(rules.MESSAGE_KINDS)
    channel = _new_channel(
        run_channel_id(run_id), RUN_COORDINATION, kinds, now, task_id=task_id, run_id=run_id
    )
    q.insert_channel(tx.conn, workspace, channel)
    return channel


@dataclass(frozen=True)
class NewChannel:
    id: str
    display_name: str = ""
    allowed_message_kinds: tuple[str, ...] = ()
    workflow_id: str = ""


async def create_channel(
    store: Store, workspace: str, spec: NewChannel, actor: dict[str, str]
) -> ChannelRecord:
    reject_nul_characters(spec.__dict__)
    rules.check_channel_id(spec.id, "id")
    kinds = rules.check_kinds(list(spec.allowed_message_kinds))

    def op(tx: Tx) -> ChannelRecord:
        if q.get_channel(tx.conn, workspace, spec.id) is not None:
            raise AlreadyExists(
                f'channel "{spec.id}" already exists',
                reason=AghReason.CHANNEL_EXISTS,
                metadata={"channel_id": spec.id},
            )
        now = now_us()
        channel = _new_channel(
            spec.id, NETWORK, kinds, now, display_name=spec.display_name.strip(), workflow_id=spec.workflow_id
        )
        q.insert_channel(tx.conn, workspace, channel)
        data = {"channel": channel_view(channel, workspace), "actor": actor}
        tx.append("channel.created", workspace, data, occurred_at=iso(now))
        return channel

    return await store.write(op)


@dataclass(frozen=True)
class Post:
    """A message as received (checked inside the write)."""

    body: Any = MISSING
    metadata: dict[str, Any] | None = None
    idempotency_key: str = ""


def _post(
    tx: Tx,
    workspace: str,
    channel: ChannelRecord,
    sender: tuple[str, str],
    body_text: str,
    metadata: dict[str, Any],
    metadata_text: str,
    message_id: str,
    *,
    to: str | None = None,
    reply_to: str | None = None,
) -> MessageRecord:
    rules.check_allowed(metadata["message_kind"], channel.allowed_message_kinds, channel.id)
    now = now_us()
    session_id, agent_name = sender
    message = MessageRecord(
        seq=0,
        workspace=workspace,
        channel_id=channel.id,
        message_id=message_id,
        from_session_id=session_id,
        to_session_id=to,
        reply_to=reply_to,
        body=body_text,
        metadata=metadata_text,
        sent_at=now,
    )
    message.seq = tx.append(
        MESSAGE_ENTRY, workspace, message_view(message), session_id=session_id or None, occurred_at=iso(now)
    )
    q.insert_message(tx.conn, message)
    q.touch_channel(tx.conn, workspace, channel.id, now)
    if session_id:
        q.upsert_member(tx.conn, workspace, channel.id, session_id, agent_name, now, 0)
    return message


def _resend(tx: Tx, workspace: str, key: str, channel_id: str) -> MessageRecord | None:
    """The message a repeated idempotency key created, if any."""
    if not key:
        return None
    found = q.message_by_id(tx.conn, workspace, key)
    if found is not None and found.channel_id != channel_id:
        raise AlreadyExists(
            f'idempotency_key "{key}" was used for a message of channel "{found.channel_id}"',
            reason=AghReason.MESSAGE_EXISTS,
            metadata={"message_id": key},
        )
    return found


def _existing_channel(tx: Tx, workspace: str, channel_id: str) -> ChannelRecord:
    channel = q.get_channel(tx.conn, workspace, channel_id)
    if channel is None:
        raise rules.channel_not_found(channel_id)
    return channel


def _sender_of(workspace: str, claimed: Claimed | None) -> Callable[[Tx], tuple[str, str]]:
    def sender(tx: Tx) -> tuple[str, str]:
        if claimed is None:
            return "", ""
        caller = resolve(tx.conn, workspace, claimed)
        return caller.session_id, caller.agent_name

    return sender


async def send(
    store: Store, workspace: str, claimed: Claimed | None, channel_id: str, post: Post
) -> MessageRecord:
    """Post to a channel as the agent `claimed` names (None: the operator)."""
    if claimed is not None:
        require_headers(claimed)
    rules.check_channel_id(channel_id)
    key = post.idempotency_key.strip()
    sender_of = _sender_of(workspace, claimed)

    def op(tx: Tx) -> MessageRecord:
        # Upstream's order: who is calling, then the channel, then the payload.
        sender = sender_of(tx)
        channel = _existing_channel(tx, workspace, channel_id)
        metadata = rules.check_metadata(post.metadata, channel_id)
        body_text, metadata_text = rules.check_payload(post.body, metadata)
        reject_nul_characters(key, "idempotency_key")
        found = _resend(tx, workspace, key, channel_id)
        if found is not None:
            return found
        return _post(tx, workspace, channel, sender, body_text, metadata, metadata_text, key or uuid7())

    return await store.write(op)


@dataclass(frozen=True)
class Reply:
    reply_to_message_id: str
    body: Any = MISSING
    # None (or empty): the source's metadata with kind `reply`.
    metadata: dict[str, Any] | None = None
    idempotency_key: str = ""


async def reply(store: Store, workspace: str, claimed: Claimed, spec: Reply) -> MessageRecord:
    """Reply to a message: addressed to its sender, on its channel."""
    require_headers(claimed)
    source_id = spec.reply_to_message_id.strip()
    key = spec.idempotency_key.strip()
    sender_of = _sender_of(workspace, claimed)

    def op(tx: Tx) -> MessageRecord:
        sender = sender_of(tx)
        if not source_id:
            raise rules.invalid("reply_to_message_id", "is required")
        if isinstance(spec.body, Missing):
            raise rules.invalid("body", "is required")
        if spec.metadata and spec.metadata.get("message_kind") != rules.REPLY:
            raise rules.invalid("metadata.message_kind", "must be reply")
        reject_nul_characters({"reply_to_message_id": source_id, "idempotency_key": key})
        source = q.message_by_id(tx.conn, workspace, source_id)
        if source is None:
            raise NotFound(
                f'target peer not found: message_id="{source_id}"',
                reason=AghReason.MESSAGE_NOT_FOUND,
                metadata={"message_id": source_id},
            )
        if not source.from_session_id:
            raise InvalidArgument(
                f'message "{source_id}" has no sender to reply to (an operator posted it)',
                reason=AghReason.CHANNEL_VALIDATION_FAILED,
            )
        if spec.metadata:
            channel_id = str(spec.metadata.get("coordination_channel_id") or source.channel_id)
            metadata = rules.check_metadata(spec.metadata, channel_id)
        else:
            channel_id = source.channel_id
            metadata = {**orjson.loads(source.metadata), "message_kind": rules.REPLY}
        body_text, metadata_text = rules.check_payload(spec.body, metadata)
        channel = _existing_channel(tx, workspace, channel_id)
        found = _resend(tx, workspace, key, channel_id)
        if found is not None:
            return found
        return _post(
            tx,
            workspace,
            channel,
            sender,
            body_text,
            metadata,
            metadata_text,
            key or uuid7(),
            to=source.from_session_id,
            reply_to=source.message_id,
        )

    return await store.write(op)
