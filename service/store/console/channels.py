"""Channels as the console shows them: most recently active first, members
with their read positions, and messages a page at a time back in history."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, and_, func, select, tuple_

from service.store.agh.channel_tables import channel_members, channel_messages, channels
from service.store.console import cursors
from service.store.console.records import Channel, Member, Message
from service.store.console.times import from_micros

MAX_MEMBERS = 500

_m = channel_messages.c


def _message_count(workspace: str) -> Any:
    return (
        select(func.count())
        .where(_m.workspace == workspace, _m.channel_id == channels.c.id)
        .scalar_subquery()
        .label("message_count")
    )


def _channel_select(workspace: str) -> Any:
    c = channels.c
    members = (
        select(func.count())
        .where(channel_members.c.workspace == workspace, channel_members.c.channel_id == c.id)
        .scalar_subquery()
        .label("member_count")
    )
    last = (
        select(func.max(_m.seq))
        .where(_m.workspace == workspace, _m.channel_id == c.id)
        .scalar_subquery()
        .label("last_seq")
    )
    return select(
        c.id,
        c.display_name,
        c.purpose,
        c.task_id,
        c.run_id,
        c.created_at,
        c.last_activity_at,
        members,
        _message_count(workspace),
        last,
    ).where(c.workspace == workspace)


def _channel(r: Any) -> Channel:
    return Channel(
        id=r.id,
        display_name=r.display_name,
        purpose=r.purpose,
        task_id=r.task_id or "",
        run_id=r.run_id or "",
        created_at=from_micros(r.created_at),
        last_activity_at=from_micros(r.last_activity_at),
        member_count=int(r.member_count or 0),
        message_count=int(r.message_count or 0),
        last_message_seq=int(r.last_seq or 0),
    )


def list_channels(conn: Connection, workspace: str, size: int, token: str) -> tuple[list[Channel], str]:
    position = cursors.decode("console.channels", (), token)
    c = channels.c
    q = _channel_select(workspace)
    if position is not None:
        at, channel_id = cursors.checked(position, int, str)
        q = q.where(tuple_(c.last_activity_at, c.id) < tuple_(at, channel_id))
    rows = conn.execute(q.order_by(c.last_activity_at.desc(), c.id.desc()).limit(size + 1)).all()
    page = rows[:size]
    token_out = (
        cursors.encode("console.channels", (), [page[-1].last_activity_at, page[-1].id])
        if len(rows) > size
        else ""
    )
    return [_channel(r) for r in page], token_out


def get_channel(conn: Connection, workspace: str, channel_id: str) -> tuple[Channel, list[Member]] | None:
    row = conn.execute(_channel_select(workspace).where(channels.c.id == channel_id)).first()
    if row is None:
        return None
    b = channel_members.c
    unread = (
        select(func.count())
        .where(and_(_m.workspace == workspace, _m.channel_id == channel_id, _m.seq > b.read_seq))
        .scalar_subquery()
        .label("unread")
    )
    members = [
        Member(
            session_id=r.session_id,
            agent_name=r.agent_name,
            read_seq=r.read_seq,
            unread=int(r.unread or 0),
            joined_at=from_micros(r.joined_at or None),
            last_seen_at=from_micros(r.last_seen_at or None),
        )
        for r in conn.execute(
            select(b.session_id, b.agent_name, b.read_seq, b.joined_at, b.last_seen_at, unread)
            .where(b.workspace == workspace, b.channel_id == channel_id)
            .order_by(b.session_id)
            .limit(MAX_MEMBERS)
        )
    ]
    return _channel(row), members


def channel_exists(conn: Connection, workspace: str, channel_id: str) -> bool:
    c = channels.c
    return conn.execute(select(c.id).where(c.workspace == workspace, c.id == channel_id)).first() is not None


def messages(
    conn: Connection, workspace: str, channel_id: str, size: int, token: str
) -> tuple[list[Message], str]:
    """The newest `size` messages before the token's position, oldest first."""
    position = cursors.decode("console.messages", (channel_id,), token)
    q = select(
        _m.seq,
        _m.message_id,
        _m.from_session_id,
        _m.to_session_id,
        _m.reply_to,
        _m.body,
        _m["metadata"].label("meta"),
        _m.sent_at,
    ).where(_m.workspace == workspace, _m.channel_id == channel_id)
    if position is not None:
        q = q.where(_m.seq < cursors.checked(position, int)[0])
    rows = conn.execute(q.order_by(_m.seq.desc()).limit(size + 1)).all()
    page = rows[:size]
    token_out = cursors.encode("console.messages", (channel_id,), [page[-1].seq]) if len(rows) > size else ""
    return [
        Message(
            seq=r.seq,
            id=r.message_id,
            from_session_id=r.from_session_id,
            to_session_id=r.to_session_id or "",
            reply_to=r.reply_to or "",
            body=orjson.loads(r.body),
            metadata=orjson.loads(r.meta),
            sent_at=from_micros(r.sent_at),
        )
        for r in reversed(page)
    ], token_out
