"""Which tracer task a runtime session is bound to, asked by other families.

The Claude Code and Codex hooks bind each runtime session (the runtime's own
session id) to a tracer task and monitor session (`tracer_bindings`). The
OTLP receiver keys its telemetry by the same runtime session id, so this is
where the two meet: usage per task adds up the runtime sessions bound to it,
and a monitor session id finds its runtime session. Read-only, shared store:
the tracer family owns the table and writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from service.store.tracer.tables import TracerBindingRow

_bindings = TracerBindingRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Bound:
    runtime_session_id: str
    task_id: str
    # None once the monitor session ended (the binding is historical).
    monitor_session_id: str | None


def _rows(conn: Connection, where: Sequence[Any]) -> list[Bound]:
    c = _bindings.c
    rows = conn.execute(select(c.runtime_session_id, c.task_id, c.monitor_session_id).where(*where))
    return [Bound(*row) for row in rows]


def of_runtime_sessions(
    conn: Connection, workspace: str, runtime_session_ids: Sequence[str]
) -> dict[str, Bound]:
    """The binding of each runtime session that has one (any runtime source)."""
    found: dict[str, Bound] = {}
    for start in range(0, len(runtime_session_ids), 500):
        chunk = list(runtime_session_ids[start : start + 500])
        for b in _rows(conn, [_bindings.c.workspace == workspace, _bindings.c.runtime_session_id.in_(chunk)]):
            found[b.runtime_session_id] = b
    return found


def of_task(conn: Connection, workspace: str, task_id: str) -> list[Bound]:
    """The runtime sessions bound to a task, now or before."""
    return _rows(conn, [_bindings.c.workspace == workspace, _bindings.c.task_id == task_id])


def of_monitor_session(conn: Connection, workspace: str, monitor_session_id: str) -> Bound | None:
    """The runtime session a monitor session is bound to, while it is."""
    found = _rows(
        conn, [_bindings.c.workspace == workspace, _bindings.c.monitor_session_id == monitor_session_id]
    )
    return found[0] if found else None
