"""Reading channels: the agent's channel list, `recv` (a non-destructive
read after the caller's read position, long-polling on the feed), the
acknowledged read positions, streams, and the operator's listings.

A cursor is the `seq` of a message: 0 (from the start), or a message of one
of the channels read. A seq past the end of the log, or one that belongs to
another channel, is refused (400 `invalid_cursor`) rather than silently
skipping or repeating messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import orjson
from sqlalchemy import Connection

from service.base.agh_states import ACTIVE
from service.base.errors import FieldViolation, InvalidArgument
from service.domain.agh.channels import message_validation as rules
from service.domain.agh.channels.feed import ChannelFeed, StreamLimiter
from service.domain.agh.channels.messaging import run_channel_id
from service.domain.agh.common import now_us
from service.domain.agh.identity import Caller, Claimed, require_headers, resolve
from service.domain.agh.reasons import AghReason
from service.store import log, sessions
from service.store.agh import channels as q
from service.store.agh import tasks as agh_q
from service.store.agh.channels import ChannelRecord, MemberRecord, MessageRecord
from service.store.log import Tx
from service.store.retention import usage as retention_usage
from service.store.store import Store

DEFAULT_WAIT_SECONDS = 30
MAX_WAIT_SECONDS = 300
# A long poll ends this much before the caller's deadline, to answer in time.
_DEADLINE_MARGIN = 0.5
DEFAULT_PAGE = 50
MAX_PAGE = 500
DEFAULT_MESSAGES = 100
MAX_MESSAGES = 1000
_SESSION_RUNS = 50


def _bad_cursor(field: str, description: str) -> InvalidArgument:
    return InvalidArgument(
        f"channel: invalid cursor: {field} {description}",
        reason=AghReason.INVALID_CURSOR,
        violations=[FieldViolation(field, description)],
    )


def _channels(conn: Connection, workspace: str, channel_ids: Sequence[str]) -> list[ChannelRecord]:
    found = []
    for channel_id in channel_ids:
        channel = q.get_channel(conn, workspace, channel_id)
        if channel is None:
            raise rules.channel_not_found(channel_id)
        found.append(channel)
    return found


def check_cursor(conn: Connection, workspace: str, channel_ids: Sequence[str], seq: int, field: str) -> None:
    if seq < 0:
        raise _bad_cursor(field, "must not be negative")
    if seq == 0:
        return
    removed_through = retention_usage.horizon(conn, workspace)
    if seq <= removed_through:  # its message is gone: retention removed it
        if seq < removed_through and field == "after_seq":
            raise retention_usage.cursor_before_horizon(seq, removed_through)
        return
    if seq > log.head(conn):
        raise _bad_cursor(field, f"{seq} is past the end of the log")
    message = q.message_at(conn, seq)
    if message is None or message.workspace != workspace or message.channel_id not in channel_ids:
        raise _bad_cursor(field, f"{seq} is not a message of channel {', '.join(channel_ids)}")


def _held_run_ids(conn: Connection, workspace: str, session_id: str) -> list[str]:
    return [r.id for r in agh_q.runs_of_session(conn, workspace, session_id, _SESSION_RUNS)]


async def agent_channels(store: Store, workspace: str, claimed: Claimed) -> list[ChannelRecord]:
    """The network channels of the workspace, and the coordination channels
    of the runs the caller holds or whose channel it joined."""
    require_headers(claimed)

    def read(conn: Connection) -> list[ChannelRecord]:
        caller = resolve(conn, workspace, claimed)
        return q.channels_of_session(
            conn, workspace, caller.session_id, _held_run_ids(conn, workspace, caller.session_id)
        )

    return await store.read(read)


@dataclass(frozen=True)
class Recv:
    channel: str
    wait: bool = False
    limit: int | None = None
    after_seq: int | None = None
    wait_seconds: int = 0


def _check_recv(spec: Recv) -> float:
    rules.check_channel_id(spec.channel)
    if spec.limit is not None and spec.limit <= 0:
        raise InvalidArgument(
            "channel: invalid limit: must be a positive integer",
            reason=AghReason.INVALID_LIMIT,
            violations=[FieldViolation("limit", "must be a positive integer")],
        )
    if not 0 <= spec.wait_seconds <= MAX_WAIT_SECONDS:
        raise rules.invalid("wait_seconds", f"must be between 0 and {MAX_WAIT_SECONDS}")
    return float(spec.wait_seconds or DEFAULT_WAIT_SECONDS)


async def recv(
    store: Store,
    feed: ChannelFeed,
    workspace: str,
    claimed: Claimed,
    spec: Recv,
    *,
    give_up_in: float | None = None,
) -> list[MessageRecord]:
    """The messages after the caller's read position (or `after_seq`), oldest
    first; with `wait`, waits for one when there is none yet."""
    require_headers(claimed)
    wait_for = _check_recv(spec)
    channel_ids = [spec.channel]

    def read(conn: Connection) -> tuple[Caller, int, list[MessageRecord]]:
        caller = resolve(conn, workspace, claimed)
        _channels(conn, workspace, channel_ids)
        if spec.after_seq is not None:
            check_cursor(conn, workspace, channel_ids, spec.after_seq, "after_seq")
            after = spec.after_seq
        else:
            after = q.read_positions(conn, workspace, channel_ids, caller.session_id).get(spec.channel, 0)
        found = q.messages_of(conn, workspace, channel_ids, after, spec.limit, visible_to=caller.session_id)
        return caller, after, found

    caller, after, found = await store.read(read)
    if found or not spec.wait:
        return found
    if give_up_in is not None:
        wait_for = min(wait_for, max(0.0, give_up_in - _DEADLINE_MARGIN))
    if not await _first_message(feed, workspace, channel_ids, caller.session_id, after, wait_for):
        return []
    return await store.read(
        lambda conn: q.messages_of(
            conn, workspace, channel_ids, after, spec.limit, visible_to=caller.session_id
        )
    )


async def _first_message(
    feed: ChannelFeed, workspace: str, channel_ids: list[str], session_id: str, after: int, within: float
) -> bool:
    """Whether a message for the session arrives within `within` seconds."""
    if within <= 0:
        return False
    messages = feed.follow(workspace, channel_ids, session_id, after, within)
    try:
        async with asyncio.timeout(within):
            async for item in messages:
                return isinstance(item, MessageRecord)
    except TimeoutError:
        pass
    finally:
        await messages.aclose()  # type: ignore[attr-defined]
    return False


async def ack(store: Store, workspace: str, claimed: Claimed, channel_id: str, seq: int) -> int:
    """Move the caller's read position on the channel to `seq`; returns the position."""
    require_headers(claimed)
    rules.check_channel_id(channel_id)
    if seq <= 0:
        raise _bad_cursor("seq", "must be the seq of a message of the channel")

    def op(tx: Tx) -> int:
        caller = resolve(tx.conn, workspace, claimed)
        _channels(tx.conn, workspace, [channel_id])
        check_cursor(tx.conn, workspace, [channel_id], seq, "seq")
        now = now_us()
        position = q.upsert_member(
            tx.conn, workspace, channel_id, caller.session_id, caller.agent_name, now, seq
        )
        data = {"channel_id": channel_id, "session_id": caller.session_id, "read_seq": position}
        tx.append("channel.read", workspace, data, session_id=caller.session_id)
        return position

    return await store.write(op)


@dataclass(frozen=True)
class StreamSpec:
    channels: tuple[str, ...]
    after_seq: int | None = None


async def stream(
    store: Store,
    feed: ChannelFeed,
    limiter: StreamLimiter,
    principal: str,
    workspace: str,
    claimed: Claimed,
    spec: StreamSpec,
    heartbeat_seconds: float,
) -> AsyncIterator[MessageRecord | int]:
    """The channels' messages for the caller from the cursor (or its read
    positions), then new ones for ever; an int is a heartbeat (the seq of
    the last message delivered)."""
    require_headers(claimed)
    channel_ids = list(dict.fromkeys(spec.channels))
    for i, channel_id in enumerate(channel_ids):
        rules.check_channel_id(channel_id, "channel" if i == 0 else "also_channels")

    def read(conn: Connection) -> tuple[Caller, int, dict[str, int]]:
        caller = resolve(conn, workspace, claimed)
        _channels(conn, workspace, channel_ids)
        if spec.after_seq is not None:
            check_cursor(conn, workspace, channel_ids, spec.after_seq, "after_seq")
            return caller, spec.after_seq, {}
        positions = q.read_positions(conn, workspace, channel_ids, caller.session_id)
        return caller, min(positions.get(c, 0) for c in channel_ids), positions

    caller, cursor, positions = await store.read(read)
    with limiter.hold(principal):
        async for item in feed.follow(
            workspace,
            channel_ids,
            caller.session_id,
            cursor,
            heartbeat_seconds,
            positions,
            explicit=spec.after_seq is not None,
        ):
            yield item


async def list_channels(
    store: Store, workspace: str, page_size: int, page_token: str
) -> tuple[list[ChannelRecord], str]:
    if page_size < 0 or page_size > MAX_PAGE:
        raise rules.invalid("page_size", f"must be between 0 and {MAX_PAGE}")
    size = page_size or DEFAULT_PAGE
    found = await store.read(lambda conn: q.list_channels(conn, workspace, page_token, size + 1))
    return found[:size], (found[size - 1].id if len(found) > size else "")


async def list_messages(
    store: Store, workspace: str, channel_id: str, after_seq: int, limit: int
) -> tuple[list[MessageRecord], int]:
    rules.check_channel_id(channel_id)
    if limit < 0 or limit > MAX_MESSAGES:
        raise rules.invalid("limit", f"must be between 0 and {MAX_MESSAGES}")
    size = limit or DEFAULT_MESSAGES

    def read(conn: Connection) -> list[MessageRecord]:
        _channels(conn, workspace, [channel_id])
        check_cursor(conn, workspace, [channel_id], after_seq, "after_seq")
        return q.messages_of(conn, workspace, [channel_id], after_seq, size + 1)

    found = await store.read(read)
    return found[:size], (found[size - 1].seq if len(found) > size else 0)


async def members(store: Store, workspace: str, channel_id: str) -> list[MemberRecord]:
    """Those who posted or acknowledged, and the holder of the channel's run."""
    rules.check_channel_id(channel_id)

    def read(conn: Connection) -> list[MemberRecord]:
        (channel,) = _channels(conn, workspace, [channel_id])
        found = q.members(conn, workspace, channel_id)
        holder = _run_holder(conn, workspace, channel)
        if holder is not None and all(m.session_id != holder[0] for m in found):
            found.append(MemberRecord(holder[0], holder[1], 0, 0, 0))
            found.sort(key=lambda m: m.session_id)
        return found

    return await store.read(read)


def _run_holder(conn: Connection, workspace: str, channel: ChannelRecord) -> tuple[str, str] | None:
    """(session, agent) holding the channel's run, if it is held."""
    if channel.run_id is None:
        return None
    found = agh_q.run_with_task(conn, workspace, channel.run_id)
    if found is None or found[0].session_id is None or found[0].status not in ACTIVE:
        return None
    session = sessions.get(conn, workspace, found[0].session_id)
    return found[0].session_id, (session.agent_name if session else None) or ""


PREVIEW_CHARS = 180


@dataclass
class ChannelSituation:
    """What /me and /context show of channels: the channels the caller can
    use, its current run's coordination channel, the unread messages there
    (newest first, at most `limit`) and the peers on it."""

    channels: list[ChannelRecord]
    coordination: ChannelRecord | None = None
    unread_count: int = 0
    unread: list[MessageRecord] = field(default_factory=list)
    peers: list[MemberRecord] = field(default_factory=list)


def preview(m: MessageRecord) -> str:
    """A message body's first line, at most 180 characters (upstream's inbox preview)."""
    body = orjson.loads(m.body)
    text = body if isinstance(body, str) else m.body
    return text.strip().split("\n", 1)[0][:PREVIEW_CHARS]


def channel_situation(
    conn: Connection, workspace: str, session_id: str, run_id: str | None, limit: int
) -> ChannelSituation:
    """In the caller's /me or /context read; `run_id`: its current run."""
    found = ChannelSituation(
        q.channels_of_session(conn, workspace, session_id, _held_run_ids(conn, workspace, session_id))
    )
    if run_id is None:
        return found
    found.coordination = q.get_channel(conn, workspace, run_channel_id(run_id))
    if found.coordination is None:  # a run queued before channels existed
        return found
    channel_id = found.coordination.id
    after = q.read_positions(conn, workspace, [channel_id], session_id).get(channel_id, 0)
    found.unread_count = q.count_visible(conn, workspace, channel_id, after, session_id)
    found.unread = q.newest_visible(conn, workspace, channel_id, after, session_id, limit)
    found.peers = [m for m in q.members(conn, workspace, channel_id) if m.session_id != session_id]
    return found
