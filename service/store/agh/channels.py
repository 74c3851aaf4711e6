"""Queries on channels, their messages and members (channels_tables.py).

Reads and the rare writes go through SQLAlchemy Core; the two statements of
every send (the message insert and the channel's activity time) are built
once. `new_messages` is the one query a replica's feed runs per commit,
whatever the number of streams open on it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from service.store.agh.channel_tables import channel_members, channel_messages, channels
from service.store.fastpath import RawStatement, cursor_of
from service.store.log import Tx

NETWORK = "network_channel"
RUN_COORDINATION = "task_run_coordination"


@dataclass
class ChannelRecord:
    id: str
    display_name: str
    purpose: str
    task_id: str | None
    run_id: str | None
    workflow_id: str | None
    allowed_message_kinds: list[str]
    created_at: int
    last_activity_at: int


@dataclass
class MessageRecord:
    seq: int
    workspace: str
    channel_id: str
    message_id: str
    from_session_id: str
    to_session_id: str | None
    reply_to: str | None
    # JSON text, as the sender gave it.
    body: str
    metadata: str
    sent_at: int
    # The API layer's rendering of the message, made once and shared by every
    # stream that delivers it.
    rendered: Any = field(default=None, compare=False, repr=False)

    def visible_to(self, session_id: str) -> bool:
        """A session sees others' messages to the channel and replies to itself."""
        return self.from_session_id != session_id and self.to_session_id in (None, session_id)


@dataclass
class MemberRecord:
    session_id: str
    agent_name: str
    read_seq: int
    joined_at: int
    last_seen_at: int


_CHANNEL_COLUMNS = [channels.c[n] for n in ChannelRecord.__dataclass_fields__]
_MESSAGE_FIELDS = [n for n in MessageRecord.__dataclass_fields__ if n != "rendered"]
_MESSAGE_COLUMNS = [channel_messages.c[n] for n in _MESSAGE_FIELDS]
_MEMBER_COLUMNS = [channel_members.c[n] for n in MemberRecord.__dataclass_fields__]


def _message(row: Any) -> MessageRecord:
    return MessageRecord(*row)


# The statements of every send, built once and run on the driver's cursor
# (see service.store.fastpath).
_GET_CHANNEL = RawStatement(
    select(*_CHANNEL_COLUMNS).where(
        channels.c.workspace == bindparam("ws"), channels.c.id == bindparam("cid")
    )
)
_TOUCH = RawStatement(
    update(channels)
    .where(channels.c.workspace == bindparam("ws"), channels.c.id == bindparam("cid"))
    .values(last_activity_at=bindparam("now"))
)
_INSERT_MESSAGE = RawStatement(
    insert(channel_messages).values({c.name: bindparam(c.name) for c in channel_messages.c})
)
_MESSAGE_BY_ID = RawStatement(
    select(*_MESSAGE_COLUMNS).where(
        channel_messages.c.workspace == bindparam("ws"), channel_messages.c.message_id == bindparam("mid")
    )
)
_MESSAGE_AT = RawStatement(select(*_MESSAGE_COLUMNS).where(channel_messages.c.seq == bindparam("seq")))
_NEW_MESSAGES = RawStatement(
    select(*_MESSAGE_COLUMNS)
    .where(channel_messages.c.seq > bindparam("after"))
    .order_by(channel_messages.c.seq)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)


def get_channel(conn: Connection, workspace: str, channel_id: str) -> ChannelRecord | None:
    db = cursor_of(conn)
    row = db.one(_GET_CHANNEL, {"ws": workspace, "cid": channel_id})
    if row is None:
        return None
    found = ChannelRecord(*row)
    found.allowed_message_kinds = db.json_out(found.allowed_message_kinds)
    return found


def insert_channel(conn: Connection, workspace: str, rec: ChannelRecord) -> None:
    conn.execute(insert(channels).values(workspace=workspace, **rec.__dict__))


def touch_channel(conn: Connection, workspace: str, channel_id: str, now: int) -> None:
    cursor_of(conn).run(_TOUCH, {"ws": workspace, "cid": channel_id, "now": now})


def insert_message(conn: Connection, rec: MessageRecord) -> None:
    cursor_of(conn).run(_INSERT_MESSAGE, {n: getattr(rec, n) for n in _MESSAGE_FIELDS})


def message_by_id(conn: Connection, workspace: str, message_id: str) -> MessageRecord | None:
    row = cursor_of(conn).one(_MESSAGE_BY_ID, {"ws": workspace, "mid": message_id})
    return None if row is None else _message(row)


def message_at(conn: Connection, seq: int) -> MessageRecord | None:
    row = cursor_of(conn).one(_MESSAGE_AT, {"seq": seq})
    return None if row is None else _message(row)


def new_messages(conn: Connection, after: int, limit: int) -> list[MessageRecord]:
    """Every channel's messages after `after`, in order (the feed's read)."""
    rows = cursor_of(conn).all(_NEW_MESSAGES, {"after": after, "limit": limit, "offset": 0})
    return [_message(r) for r in rows]


def messages_of(
    conn: Connection,
    workspace: str,
    channel_ids: Collection[str],
    after: int,
    limit: int | None,
    *,
    visible_to: str | None = None,
) -> list[MessageRecord]:
    """Messages of the channels after `after`, oldest first; only those
    `visible_to` a session, when given (see MessageRecord.visible_to)."""
    m = channel_messages.c
    q = select(*_MESSAGE_COLUMNS).where(
        m.workspace == workspace, m.channel_id.in_(list(channel_ids)), m.seq > after
    )
    if visible_to is not None:
        q = q.where(
            m.from_session_id != visible_to, or_(m.to_session_id.is_(None), m.to_session_id == visible_to)
        )
    q = q.order_by(m.seq)
    if limit is not None:
        q = q.limit(limit)
    return [_message(r) for r in conn.execute(q)]


def count_visible(conn: Connection, workspace: str, channel_id: str, after: int, session_id: str) -> int:
    m = channel_messages.c
    q = select(func.count()).where(
        m.workspace == workspace,
        m.channel_id == channel_id,
        m.seq > after,
        m.from_session_id != session_id,
        or_(m.to_session_id.is_(None), m.to_session_id == session_id),
    )
    return int(conn.execute(q).scalar_one())


def newest_visible(
    conn: Connection, workspace: str, channel_id: str, after: int, session_id: str, limit: int
) -> list[MessageRecord]:
    m = channel_messages.c
    q = (
        select(*_MESSAGE_COLUMNS)
        .where(
            m.workspace == workspace,
            m.channel_id == channel_id,
            m.seq > after,
            m.from_session_id != session_id,
            or_(m.to_session_id.is_(None), m.to_session_id == session_id),
        )
        .order_by(m.seq.desc())
        .limit(limit)
    )
    return [_message(r) for r in conn.execute(q)]


def list_channels(conn: Connection, workspace: str, after_id: str, limit: int) -> list[ChannelRecord]:
    q = select(*_CHANNEL_COLUMNS).where(channels.c.workspace == workspace, channels.c.id > after_id)
    return [ChannelRecord(*r) for r in conn.execute(q.order_by(channels.c.id).limit(limit))]


def channels_of_session(
    conn: Connection, workspace: str, session_id: str, run_ids: Sequence[str]
) -> list[ChannelRecord]:
    """The workspace's network channels, and the coordination channels the
    session is a member of or whose run it holds."""
    member_of = select(channel_members.c.channel_id).where(
        channel_members.c.workspace == workspace, channel_members.c.session_id == session_id
    )
    conditions = [channels.c.purpose == NETWORK, channels.c.id.in_(member_of)]
    if run_ids:
        conditions.append(channels.c.run_id.in_(list(run_ids)))
    q = select(*_CHANNEL_COLUMNS).where(channels.c.workspace == workspace, or_(*conditions))
    return [ChannelRecord(*r) for r in conn.execute(q.order_by(channels.c.id))]


def get_member(conn: Connection, workspace: str, channel_id: str, session_id: str) -> MemberRecord | None:
    row = conn.execute(
        select(*_MEMBER_COLUMNS).where(
            and_(
                channel_members.c.workspace == workspace,
                channel_members.c.channel_id == channel_id,
                channel_members.c.session_id == session_id,
            )
        )
    ).first()
    return None if row is None else MemberRecord(*row)


def read_positions(
    conn: Connection, workspace: str, channel_ids: Collection[str], session_id: str
) -> dict[str, int]:
    rows = conn.execute(
        select(channel_members.c.channel_id, channel_members.c.read_seq).where(
            channel_members.c.workspace == workspace,
            channel_members.c.session_id == session_id,
            channel_members.c.channel_id.in_(list(channel_ids)),
        )
    )
    return {cid: int(seq) for cid, seq in rows}


def members(conn: Connection, workspace: str, channel_id: str) -> list[MemberRecord]:
    q = select(*_MEMBER_COLUMNS).where(
        channel_members.c.workspace == workspace, channel_members.c.channel_id == channel_id
    )
    return [MemberRecord(*r) for r in conn.execute(q.order_by(channel_members.c.session_id))]


def _upsert(dialect_insert: Any, greatest: Any) -> RawStatement:
    names = ("workspace", "channel_id", "session_id", "agent_name", "read_seq")
    values: dict[str, Any] = {n: bindparam(n) for n in names}
    stmt = dialect_insert(channel_members).values(
        {**values, "joined_at": bindparam("now"), "last_seen_at": bindparam("now")}
    )
    excluded = stmt.excluded
    return RawStatement(
        stmt.on_conflict_do_update(
            index_elements=["workspace", "channel_id", "session_id"],
            set_={
                "last_seen_at": excluded.last_seen_at,
                "agent_name": excluded.agent_name,
                "read_seq": greatest(channel_members.c.read_seq, excluded.read_seq),
            },
        ).returning(channel_members.c.read_seq)
    )


_UPSERT_MEMBER = {
    "sqlite": _upsert(sqlite.insert, func.max),
    "postgresql": _upsert(postgresql.insert, func.greatest),
}


def upsert_member(
    conn: Connection,
    workspace: str,
    channel_id: str,
    session_id: str,
    agent_name: str,
    now: int,
    read_seq: int,
) -> int:
    """Record the session as a member (seen now); its read position moves to
    `read_seq` if that is ahead. Returns the position. One statement, so two
    replicas joining at once never collide."""
    params = {
        "workspace": workspace,
        "channel_id": channel_id,
        "session_id": session_id,
        "agent_name": agent_name,
        "read_seq": read_seq,
        "now": now,
    }
    row = cursor_of(conn).one(_UPSERT_MEMBER[conn.dialect.name], params)
    assert row is not None
    return int(row[0])


def forget_range(tx: Tx, workspace: str, after: int, upto: int) -> None:
    """Remove the channel messages of the log entries `after < seq <= upto`
    (retention); channels and read positions stay."""
    tx.conn.execute(
        delete(channel_messages).where(
            channel_messages.c.workspace == workspace,
            channel_messages.c.seq > after,
            channel_messages.c.seq <= upto,
        )
    )
