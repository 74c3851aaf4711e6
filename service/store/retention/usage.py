"""What each workspace holds and may still write, kept by the writer.

Every write operation's appends are counted in its transaction (`Tx.usage`);
the writer charges them here after the operation ran and before its
savepoint is released, so a write that would cross a quota is refused whole
(its savepoint rolled back) and nothing of it is stored. The counts go to
the workspace's `workspace_usage` row once per group commit, as increments
(so a retention pass in the same commit keeps its own decrement), and the
row is read at most once per commit per workspace, only for a workspace
that has a quota: a counter row, never a COUNT(*)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from service.base.clock import Clock
from service.base.errors import CommonReason, OutOfRange, ResourceExhausted
from service.store.fastpath import cursor_of, driver_cursor

if TYPE_CHECKING:
    from service.store.log import Tx

# A workspace's quotas: (log entries a UTC day, stored payload characters); 0: none.
Quotas = Callable[[str], tuple[int, int]]

_READ = "SELECT day, day_events, stored_bytes FROM workspace_usage WHERE workspace = ?"
_HORIZON = "SELECT horizon_seq FROM workspace_usage WHERE workspace = ?"
_HORIZONS_PAST = "SELECT workspace, horizon_seq FROM workspace_usage WHERE horizon_seq > ? ORDER BY workspace"
_ADD = (
    "INSERT INTO workspace_usage (workspace, day, day_events, stored_bytes, horizon_seq) "
    "VALUES (?, ?, ?, ?, 0) ON CONFLICT (workspace) DO UPDATE SET "
    "day_events = CASE WHEN workspace_usage.day = excluded.day "
    "THEN workspace_usage.day_events + excluded.day_events ELSE excluded.day_events END, "
    "day = excluded.day, stored_bytes = workspace_usage.stored_bytes + excluded.stored_bytes"
)


def sql(db: Any, text: str) -> str:
    """`text` with the driver's placeholders (SQLite's `?`, psycopg's `%s`)."""
    return text if cursor_of(db).sqlite else text.replace("?", "%s")


def day_of(moment: datetime) -> str:
    return moment.date().isoformat()


def day_end(moment: datetime) -> datetime:
    """When the quota day of `moment` ends (the next UTC midnight)."""
    return datetime.combine(moment.date() + timedelta(days=1), datetime.min.time(), moment.tzinfo)


@dataclass
class _Account:
    day: str = ""
    day_events: int = 0
    stored_bytes: int = 0
    loaded: bool = False
    # What this commit adds.
    events: int = 0
    size: int = 0


class Meter:
    """The writer's usage accounting: `quotas` (set by the retention domain)
    says a workspace's limits, `clock` what day it is."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.quotas: Quotas = lambda workspace: (0, 0)

    def batch(self, tx: Tx) -> MeteredBatch:
        return MeteredBatch(self, tx)


class MeteredBatch:
    """The accounts of one group commit."""

    def __init__(self, meter: Meter, tx: Tx) -> None:
        self._meter = meter
        self._tx = tx
        self._day = day_of(meter.clock.now())
        self._accounts: dict[str, _Account] = {}

    def _load(self, workspace: str, account: _Account) -> None:
        cur = cursor_of(self._tx)
        row = cur.cursor.execute(sql(self._tx, _READ), (workspace,)).fetchone()
        if row is not None:
            account.day, account.day_events, account.stored_bytes = row[0], int(row[1]), int(row[2])
        account.loaded = True

    def charge(self, tx: Tx) -> None:
        """Count what the operation just appended; ResourceExhausted (and
        nothing counted) when it would cross a quota of its workspace."""
        if not tx.usage:
            return
        checks = []
        for workspace, (events, size) in tx.usage.items():
            account = self._accounts.get(workspace)
            if account is None:
                account = self._accounts[workspace] = _Account()
            per_day, stored = self._meter.quotas(workspace)
            if (per_day or stored) and not tx.unmetered:
                if not account.loaded:
                    self._load(workspace, account)
                checks.append((workspace, account, events, size, per_day, stored))
        for workspace, account, events, size, per_day, stored in checks:
            today = (account.day_events if account.day == self._day else 0) + account.events
            if per_day and today + events > per_day:
                raise _events_refused(workspace, per_day, today, events, self._meter.clock.now())
            held = account.stored_bytes + account.size
            if stored and size > 0 and held + size > stored:
                raise _bytes_refused(workspace, stored, held, size)
        for workspace, (events, size) in tx.usage.items():
            account = self._accounts[workspace]
            account.events += events
            account.size += size

    def flush(self) -> None:
        """Write the commit's counts, in its transaction."""
        rows = [(w, self._day, a.events, a.size) for w, a in self._accounts.items() if a.events or a.size]
        if rows:
            cursor_of(self._tx).cursor.executemany(sql(self._tx, _ADD), rows)


def _events_refused(workspace: str, limit: int, today: int, events: int, now: datetime) -> ResourceExhausted:
    resets = day_end(now)
    return ResourceExhausted(
        f"quota exceeded: workspace {workspace!r} may append {limit} log entries a day (UTC) and has "
        f"appended {today} today; this write would add {events}, so nothing of it was stored. "
        f"The count resets at {resets.isoformat().replace('+00:00', 'Z')}",
        reason=CommonReason.QUOTA_EVENTS_PER_DAY,
        metadata={
            "quota": "events_per_day",
            "limit": str(limit),
            "resets_at": resets.isoformat().replace("+00:00", "Z"),
            "retry_after_seconds": str(max(1, int((resets - now).total_seconds()))),
        },
    )


def _bytes_refused(workspace: str, limit: int, held: int, size: int) -> ResourceExhausted:
    return ResourceExhausted(
        f"quota exceeded: workspace {workspace!r} may store {limit} bytes of log data and holds {held}; "
        f"this write would add {size}, so nothing of it was stored. Room comes back as retention "
        "removes old entries, or when an admin raises quota_stored_bytes",
        reason=CommonReason.QUOTA_STORED_BYTES,
        metadata={"quota": "stored_bytes", "limit": str(limit), "stored_bytes": str(held)},
    )


def horizon(db: Connection | Tx, workspace: str) -> int:
    """The workspace's retention horizon: every entry of it with `seq` at or
    below this was removed (0: none ever was). A cursor below it cannot
    resume without a gap; resuming from it loses nothing still kept. The
    function the live feeds and the OTLP exporter call."""
    if isinstance(db, Connection):
        cur = driver_cursor(db)
        try:
            row = cur.execute(sql(db, _HORIZON), (workspace,)).fetchone()
        finally:
            cur.close()
    else:
        row = db.cursor.execute(sql(db, _HORIZON), (workspace,)).fetchone()
    return int(row[0]) if row is not None else 0


def horizons_past(conn: Connection, cursor: int) -> list[tuple[str, int]]:
    """(workspace, horizon) of every workspace whose retention removed entries
    after `cursor`: a reader of the whole log (the OTLP exporter) resuming
    from it would miss them."""
    cur = driver_cursor(conn)
    try:
        rows = cur.execute(sql(conn, _HORIZONS_PAST), (cursor,)).fetchall()
    finally:
        cur.close()
    return [(str(w), int(h)) for w, h in rows]


def check_cursor(db: Connection | Tx, workspace: str, cursor: int) -> None:
    """OUT_OF_RANGE when retention removed entries after `cursor`: resuming
    from it would skip them. Called after a page is read, in its snapshot,
    so a pass that committed before the read is seen."""
    removed_through = horizon(db, workspace)
    if cursor < removed_through:
        raise cursor_before_horizon(cursor, removed_through)


def cursor_before_horizon(cursor: int, removed_through: int) -> OutOfRange:
    return OutOfRange(
        f"cursor {cursor} is before the retention horizon: entries up to seq {removed_through} were "
        f"removed; the oldest retained seq is {removed_through + 1} or later, resume after seq "
        f"{removed_through}",
        reason=CommonReason.CURSOR_BEFORE_HORIZON,
        metadata={"oldest_seq": str(removed_through + 1), "resume_after_seq": str(removed_through)},
    )
