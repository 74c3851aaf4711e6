"""The console's read operations: check the request, run one bounded read
(`store.read_apart` where the cost grows with the data), and say NOT_FOUND
for an item the caller's workspace does not hold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection

from service.base.errors import NotFound, invalid
from service.domain.console.reasons import ConsoleReason
from service.store.console import channels as channel_reads
from service.store.console import overview as overview_reads
from service.store.console import queue as queue_reads
from service.store.console import rules as rule_reads
from service.store.console import sessions as session_reads
from service.store.console import timeline as timeline_reads
from service.store.console.records import (
    KINDS,
    Channel,
    Item,
    Member,
    Message,
    Overview,
    Queue,
    QueueTask,
    Rule,
    Run,
    Timeline,
    Today,
    Usage,
    Verdict,
)
from service.store.console.sessions import Filters
from service.store.store import Store
from service.store.telemetry import queries as telemetry_usage

# (default, most) per list.
SESSIONS_PAGE = (50, 500)
TIMELINE_PAGE = (200, 1000)
QUEUE_PAGE = (50, 500)
RUNS_PAGE = (50, 500)
CHANNELS_PAGE = (50, 500)
MESSAGES_PAGE = (100, 500)
RULES_PAGE = (50, 500)
VERDICTS_PAGE = (50, 500)
RECENT = (20, 100)


def page_size(value: int, bounds: tuple[int, int], field: str = "page_size") -> int:
    """0 is the default; more than the most is the most; negative is refused."""
    default, most = bounds
    if value < 0:
        raise invalid(field, f"must be between 0 and {most}")
    return min(value or default, most)


def _not_found(what: str, item_id: str) -> NotFound:
    return NotFound(f"{what} {item_id!r} not found", reason=ConsoleReason.CONSOLE_ITEM_NOT_FOUND)


def _kind(value: str, field: str, *, required: bool) -> str:
    if (value or required) and value not in KINDS:
        raise invalid(field, f"must be one of {', '.join(KINDS)}")
    return value


def now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- overview


def _usage_today(conn: Connection, workspace: str, since_seq: int, midnight: datetime) -> Usage:
    """Today's tokens and cost: OTLP telemetry's (service.store.telemetry) when
    it saw model requests today, since hooks report the same requests as
    tracer `token.usage` events; else the tracer's."""
    seen = telemetry_usage.usage_on(conn, workspace, midnight.strftime("%Y-%m-%d"))
    if not seen.api_requests:
        return overview_reads.usage_today(conn, workspace, since_seq, midnight)
    return Usage(
        seen.input_tokens,
        seen.output_tokens,
        seen.cache_read_tokens,
        seen.cache_creation_tokens,
        seen.cost_usd,
        source="telemetry",
    )


async def overview(store: Store, workspace: str, recent_limit: int) -> Overview:
    limit = page_size(recent_limit, RECENT, "recent_limit")
    at = now()

    def read(conn: Connection) -> Overview:
        midnight = overview_reads.start_of_day(at)
        since_today = overview_reads.first_seq_since(conn, midnight)
        today = Today(
            since=midnight,
            errors_by_kind=overview_reads.errors_since(conn, workspace, since_today),
            verdicts=overview_reads.verdicts_since(conn, workspace, midnight),
            usage=_usage_today(conn, workspace, since_today, midnight),
        )
        return Overview(
            server_time=at,
            head_seq=timeline_reads.head_seq(conn, workspace),
            running=overview_reads.running(conn, workspace),
            per_minute=overview_reads.per_minute(conn, workspace, at),
            today=today,
            recent=overview_reads.recent(conn, workspace, limit),
        )

    return await store.read_apart(read)


# ---------------------------------------------------------------- sessions and timelines


@dataclass(frozen=True)
class SessionQuery:
    kind: str = ""
    status: str = ""
    runtime: str = ""
    query: str = ""
    page_size: int = 0
    page_token: str = ""


async def list_sessions(store: Store, workspace: str, q: SessionQuery) -> tuple[list[Item], str]:
    filters = Filters(_kind(q.kind, "kind", required=False), q.status, q.runtime, q.query)
    size = page_size(q.page_size, SESSIONS_PAGE)
    return await store.read_apart(
        lambda conn: session_reads.list_items(conn, workspace, filters, size, q.page_token)
    )


async def timeline(store: Store, workspace: str, kind: str, item_id: str, size: int, token: str) -> Timeline:
    _kind(kind, "kind", required=True)
    size = page_size(size, TIMELINE_PAGE)

    def read(conn: Connection) -> Timeline:
        item = session_reads.get_item(conn, workspace, kind, item_id)
        if item is None:
            raise _not_found(kind, item_id)
        events, turns, tree, next_token, follow = timeline_reads.page(conn, workspace, item, size, token)
        head = timeline_reads.head_seq(conn, workspace)
        return Timeline(item, events, turns, tree, next_token, follow, head)

    return await store.read(read)


# ---------------------------------------------------------------- queue


async def queue(store: Store, workspace: str, state: str, priority: str, size: int, token: str) -> Queue:
    size = page_size(size, QUEUE_PAGE)
    at = now()

    def read(conn: Connection) -> Queue:
        tasks, next_token = queue_reads.tasks(conn, workspace, state, priority, size, token, at)
        return Queue(
            server_time=at,
            by_state=queue_reads.counts(conn, workspace, "status"),
            by_priority=queue_reads.counts(conn, workspace, "priority"),
            tasks=tasks,
            next_page_token=next_token,
            leases=[] if token else queue_reads.leases(conn, workspace, at),
        )

    return await store.read(read)


async def task_runs(
    store: Store, workspace: str, task_id: str, size: int, token: str
) -> tuple[QueueTask, list[Run], str, datetime]:
    size = page_size(size, RUNS_PAGE)
    at = now()

    def read(conn: Connection) -> tuple[QueueTask, list[Run], str, datetime]:
        task = queue_reads.find_task(conn, workspace, task_id, at)
        if task is None:
            raise _not_found("task", task_id)
        runs, next_token = queue_reads.runs(conn, workspace, task.id, size, token, at)
        return task, runs, next_token, at

    return await store.read(read)


# ---------------------------------------------------------------- channels


async def list_channels(store: Store, workspace: str, size: int, token: str) -> tuple[list[Channel], str]:
    size = page_size(size, CHANNELS_PAGE)
    return await store.read(lambda conn: channel_reads.list_channels(conn, workspace, size, token))


async def channel(store: Store, workspace: str, channel_id: str) -> tuple[Channel, list[Member]]:
    def read(conn: Connection) -> tuple[Channel, list[Member]]:
        found = channel_reads.get_channel(conn, workspace, channel_id)
        if found is None:
            raise _not_found("channel", channel_id)
        return found

    return await store.read(read)


async def channel_messages(
    store: Store, workspace: str, channel_id: str, size: int, token: str
) -> tuple[list[Message], str]:
    size = page_size(size, MESSAGES_PAGE)

    def read(conn: Connection) -> tuple[list[Message], str]:
        if not channel_reads.channel_exists(conn, workspace, channel_id):
            raise _not_found("channel", channel_id)
        return channel_reads.messages(conn, workspace, channel_id, size, token)

    return await store.read(read)


# ---------------------------------------------------------------- rules


async def list_rules(store: Store, workspace: str, size: int, token: str) -> tuple[list[Rule], str]:
    size = page_size(size, RULES_PAGE)
    return await store.read(lambda conn: rule_reads.list_rules(conn, workspace, size, token))


async def rule_verdicts(
    store: Store, workspace: str, rule_id: str, status: str, size: int, token: str
) -> tuple[Rule, list[Verdict], str]:
    size = page_size(size, VERDICTS_PAGE)

    def read(conn: Connection) -> tuple[Rule, list[Verdict], str]:
        rule = rule_reads.get_rule(conn, workspace, rule_id)
        if rule is None:
            raise _not_found("rule", rule_id)
        found, next_token = rule_reads.verdicts(conn, workspace, rule_id, status, size, token)
        return rule, found, next_token

    return await store.read(read)
