"""The activity columns of the shared session projection: first and last
event time, counts, tokens and model, as ingested telemetry updates them.

A batch touches a few sessions: one select finds those that exist, then one
executemany inserts the new ones and one updates the rest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from service.store.sessions import SessionRecord
from service.store.tables import sessions


@dataclass
class Activity:
    """What telemetry has told about a session."""

    started_at: str | None = None
    ended_at: str | None = None
    duration_ms: int | None = None
    event_count: int = 0
    tool_count: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_tokens: int | None = None
    cache_read_tokens: int | None = None
    model: str | None = None
    stop_reason: str | None = None


ACTIVITY_FIELDS = tuple(Activity.__dataclass_fields__)
_RECORD_FIELDS = tuple(SessionRecord.__dataclass_fields__)
# What an update may change besides the activity: status and an unset project_dir.
_UPDATED = ("status", "project_dir", *ACTIVITY_FIELDS)

_SELECT = select(*(getattr(sessions.c, f) for f in (*_RECORD_FIELDS, *ACTIVITY_FIELDS))).where(
    sessions.c.workspace == bindparam("workspace"),
    sessions.c.session_id.in_(bindparam("session_ids", expanding=True)),
)
_INSERT = insert(sessions)
# Bind names must differ from column names in an UPDATE's WHERE and SET.
_UPDATE = (
    update(sessions)
    .where(
        sessions.c.workspace == bindparam("b_workspace"), sessions.c.session_id == bindparam("b_session_id")
    )
    .values({f: bindparam(f"b_{f}") for f in (*_UPDATED, "updated_at")})
)


def find(
    conn: Connection, workspace: str, session_ids: Sequence[str]
) -> dict[str, tuple[SessionRecord, Activity]]:
    """The sessions of `session_ids` that exist, with their activity."""
    rows = conn.execute(_SELECT, {"workspace": workspace, "session_ids": list(session_ids)})
    found: dict[str, tuple[SessionRecord, Activity]] = {}
    for row in rows:
        values = row._mapping
        record = SessionRecord(**{f: values[f] for f in _RECORD_FIELDS})
        found[record.session_id] = (record, Activity(**{f: values[f] for f in ACTIVITY_FIELDS}))
    return found


def insert_many(
    conn: Connection, workspace: str, rows: Sequence[tuple[SessionRecord, Activity]], now: Any
) -> None:
    conn.execute(
        _INSERT,
        [{**r.as_dict(), **asdict(a), "workspace": workspace, "updated_at": now} for r, a in rows],
    )


def update_many(
    conn: Connection, workspace: str, rows: Sequence[tuple[SessionRecord, Activity]], now: Any
) -> None:
    params = []
    for record, activity in rows:
        values = {"status": record.status, "project_dir": record.project_dir, **asdict(activity)}
        params.append(
            {
                "b_workspace": workspace,
                "b_session_id": record.session_id,
                "b_updated_at": now,
                **{f"b_{k}": v for k, v in values.items()},
            }
        )
    conn.execute(_UPDATE, params)
