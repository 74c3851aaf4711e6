"""Usage read back: cost and tokens per session, per task, per workspace, and
today's totals; and the stored records, a page at a time.

For the console and anyone else who needs the figures inside a read of
their own, the functions taking a connection are the API:
`today(conn, workspace)` and `usage_overall(conn, workspace)` (a `UsageRow`:
cost_usd, the four token counts, api_requests, api_errors) and
`of_sessions(conn, workspace, ids)` (runtime session ids -> SessionUsage).
The async ones wrap them in a `store.read`.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import Connection

from service.base.errors import CommonReason, FieldViolation, InvalidArgument, NotFound
from service.domain.telemetry.model import ENTRY_PREFIX, ENTRY_TYPES, KINDS
from service.domain.telemetry.reasons import TelemetryReason
from service.store import runtime_bindings
from service.store.log import LogEntry
from service.store.store import Store
from service.store.telemetry import queries as q
from service.store.telemetry.queries import SessionRow, UsageRow

MAX_PAGE, DEFAULT_PAGE = 1000, 100
MAX_TASK_SESSIONS = 100


@dataclass(frozen=True)
class SessionUsage:
    session: SessionRow
    task_id: str | None
    monitor_session_id: str | None


def today_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def today(conn: Connection, workspace: str) -> UsageRow:
    """The workspace's cost and tokens today (UTC), by when records happened."""
    return q.usage_on(conn, workspace, today_text())


def usage_overall(conn: Connection, workspace: str) -> tuple[UsageRow, int]:
    """The workspace's cost and tokens over everything stored, and its session count."""
    return q.usage_total(conn, workspace)


def of_sessions(conn: Connection, workspace: str, session_ids: Sequence[str]) -> dict[str, SessionUsage]:
    """Usage of the runtime sessions among `session_ids` that sent telemetry,
    each with the tracer task the hooks bound it to."""
    rows = q.sessions(conn, workspace, session_ids)
    bound = runtime_bindings.of_runtime_sessions(conn, workspace, list(rows))
    out: dict[str, SessionUsage] = {}
    for sid, row in rows.items():
        b = bound.get(sid)
        out[sid] = SessionUsage(row, b.task_id if b else None, b.monitor_session_id if b else None)
    return out


def _session(conn: Connection, workspace: str, session_id: str) -> SessionUsage:
    found = of_sessions(conn, workspace, [session_id])
    if session_id not in found:
        b = runtime_bindings.of_monitor_session(conn, workspace, session_id)
        if b is not None:
            found = of_sessions(conn, workspace, [b.runtime_session_id])
            session_id = b.runtime_session_id
    if session_id not in found:
        raise NotFound(f"no telemetry from session {session_id!r}", reason=TelemetryReason.SESSION_NOT_FOUND)
    return found[session_id]


async def session_usage(store: Store, workspace: str, session_id: str) -> SessionUsage:
    return await store.read(lambda conn: _session(conn, workspace, session_id))


def _sum(rows: Sequence[UsageRow]) -> UsageRow:
    total = UsageRow()
    for u in rows:
        total = replace(
            total,
            **{f: getattr(total, f) + getattr(u, f) for f in UsageRow.__dataclass_fields__},
        )
    return total


async def task_usage(store: Store, workspace: str, task_id: str) -> tuple[UsageRow, list[SessionUsage]]:
    def read(conn: Connection) -> tuple[UsageRow, list[SessionUsage]]:
        bound = runtime_bindings.of_task(conn, workspace, task_id)
        found = of_sessions(conn, workspace, [b.runtime_session_id for b in bound])
        ordered = sorted(found.values(), key=lambda s: s.session.last_seen_at, reverse=True)
        return _sum([s.session.usage for s in ordered]), ordered[:MAX_TASK_SESSIONS]

    return await store.read(read)


async def workspace_usage(store: Store, workspace: str) -> tuple[UsageRow, UsageRow, str, int]:
    """(all time, today, today's date, sessions)."""

    def read(conn: Connection) -> tuple[UsageRow, UsageRow, str, int]:
        day = today_text()
        total, sessions = usage_overall(conn, workspace)
        return total, q.usage_on(conn, workspace, day), day, sessions

    return await store.read(read)


def _after(page_token: str) -> int:
    if not page_token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(page_token.encode()).decode().removeprefix("seq:"))
    except ValueError:
        message = "page_token is not one this server handed out"
        raise InvalidArgument(
            message,
            reason=TelemetryReason.INVALID_PAGE_TOKEN,
            violations=[FieldViolation("page_token", message)],
        ) from None


async def list_records(
    store: Store,
    workspace: str,
    *,
    session_id: str,
    kinds: Sequence[str],
    page_size: int,
    page_token: str,
) -> tuple[list[LogEntry], str]:
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        message = f"unknown kinds {', '.join(unknown)}: expected some of {', '.join(KINDS)}"
        raise InvalidArgument(
            message, reason=CommonReason.INVALID_ARGUMENT, violations=[FieldViolation("kinds", message)]
        )
    if page_size < 0 or page_size > MAX_PAGE:
        message = f"page_size must be between 1 and {MAX_PAGE}"
        raise InvalidArgument(
            message, reason=CommonReason.INVALID_ARGUMENT, violations=[FieldViolation("page_size", message)]
        )
    limit = page_size or DEFAULT_PAGE
    after = _after(page_token)
    types = [ENTRY_PREFIX + k for k in kinds] if kinds else list(ENTRY_TYPES)
    entries = await store.read_apart(
        lambda conn: q.records(
            conn, workspace, types, after_seq=after, limit=limit + 1, session_id=session_id or None
        )
    )
    more = len(entries) > limit
    entries = entries[:limit]
    token = base64.urlsafe_b64encode(f"seq:{entries[-1].seq}".encode()).decode() if more else ""
    return entries, token
