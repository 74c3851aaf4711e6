"""Removing a workspace's oldest log entries: what a retention batch reads
and deletes. The rows the entries produced in the families' tables are
removed by each family's own `forget_range` (the domain calls them in the
same transaction); this module owns the log and the horizon."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from sqlalchemy import Connection, delete, select

from service.store.log import Tx
from service.store.retention.tables import workspace_policies, workspace_usage
from service.store.retention.usage import sql
from service.store.tables import log_entries

# The oldest entries after the horizon, with their size and whether they are
# older than the cutoff; planned on (workspace, seq), so a batch costs its rows.
_OLDEST_SQLITE = (
    "SELECT seq, length(data), recorded_at < ? FROM log_entries INDEXED BY ix_log_workspace_seq "
    "WHERE workspace = ? AND seq > ? ORDER BY seq LIMIT ?"
)
_OLDEST_PG = (
    "SELECT seq, data::text, recorded_at < %s FROM log_entries "
    "WHERE workspace = %s AND seq > %s ORDER BY seq LIMIT %s"
)
_REMOVE_USAGE = (
    "UPDATE workspace_usage SET horizon_seq = ?, stored_bytes = max_of(stored_bytes - ?, 0), purged_at = ? "
    "WHERE workspace = ?"
)


def _sqlite_time(moment: datetime) -> str:
    """The text SQLAlchemy (and Tx.append) store a UTC DateTime as on SQLite."""
    return moment.astimezone(UTC).isoformat(" ", "microseconds")[:26]


@dataclass(frozen=True)
class Oldest:
    seq: int
    # JSON characters of its data, as the writer counted them.
    size: int
    # Recorded before the cutoff.
    old: bool


@dataclass(frozen=True)
class Usage:
    workspace: str
    day: str
    day_events: int
    stored_bytes: int
    horizon_seq: int
    purged_at: datetime | None


def oldest(tx: Tx, workspace: str, after: int, cutoff: datetime, limit: int) -> list[Oldest]:
    """The workspace's first `limit` entries after `after`, oldest first."""
    cur = tx.cursor
    if tx.fast.sqlite:
        rows = cur.execute(_OLDEST_SQLITE, (_sqlite_time(cutoff), workspace, after, limit)).fetchall()
        return [Oldest(int(s), int(n), bool(o)) for s, n, o in rows]
    rows = cur.execute(_OLDEST_PG, (cutoff, workspace, after, limit)).fetchall()
    # PostgreSQL prints JSONB with spaces: size it as the writer did, compact.
    return [Oldest(int(s), len(orjson.dumps(orjson.loads(d))), bool(o)) for s, d, o in rows]


def remove(tx: Tx, workspace: str, after: int, upto: int, size: int, now: datetime) -> int:
    """Delete the workspace's entries with `after < seq <= upto`, move its
    horizon to `upto` and take `size` off its stored payload; the count."""
    removed = tx.conn.execute(
        delete(log_entries).where(
            log_entries.c.workspace == workspace, log_entries.c.seq > after, log_entries.c.seq <= upto
        )
    ).rowcount
    least = "max" if tx.fast.sqlite else "greatest"
    tx.cursor.execute(
        sql(tx, _REMOVE_USAGE.replace("max_of", least)),
        (upto, size, _sqlite_time(now) if tx.fast.sqlite else now, workspace),
    )
    return int(removed)


def workspaces(db: Connection | Tx) -> list[str]:
    """Every workspace that has written (each has a usage row)."""
    conn = db if isinstance(db, Connection) else db.conn
    return list(conn.execute(select(workspace_usage.c.workspace)).scalars())


def usage(conn: Connection, workspace: str) -> Usage | None:
    row = conn.execute(select(workspace_usage).where(workspace_usage.c.workspace == workspace)).first()
    return None if row is None else Usage(*row)


def horizon_of(tx: Tx, workspace: str) -> tuple[int, int]:
    """(horizon, stored payload) of the workspace, in the write transaction."""
    row = tx.cursor.execute(
        sql(tx, "SELECT horizon_seq, stored_bytes FROM workspace_usage WHERE workspace = ?"), (workspace,)
    ).fetchone()
    return (int(row[0]), int(row[1])) if row is not None else (0, 0)


# ------------------------------------------------------------------ policies

POLICY_COLUMNS = ("retention_seconds", "retention_bytes", "quota_events_per_day", "quota_stored_bytes")


def policies(conn: Connection) -> dict[str, dict[str, int | None]]:
    """Every workspace's own policy: {workspace: {column: value or None}}."""
    cols = [workspace_policies.c[n] for n in POLICY_COLUMNS]
    return {
        row[0]: dict(zip(POLICY_COLUMNS, row[1:], strict=True))
        for row in conn.execute(select(workspace_policies.c.workspace, *cols))
    }


def put_policy(tx: Tx, workspace: str, values: dict[str, int | None], now: datetime) -> None:
    """Replace the workspace's policy (None: the server's default)."""
    conn = tx.conn
    conn.execute(delete(workspace_policies).where(workspace_policies.c.workspace == workspace))
    conn.execute(workspace_policies.insert().values(workspace=workspace, updated_at=now, **values))
