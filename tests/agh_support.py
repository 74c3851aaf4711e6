"""Helpers shared by the AGH tests: identities, requests, the bodies the API
returns (as exact dicts with matchers for ids, times and hashes), a clock
that can be moved forward, and a snapshot of everything AGH stores."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, Table, select

from service.store.agh.tables import agh_session_lineage, agh_souls, agh_task_events, agh_task_runs, agh_tasks
from service.store.tables import log_entries, sessions
from tests.conftest import Server


class _Matches:
    def __init__(self, pattern: str, what: str) -> None:
        self.pattern = re.compile(pattern)
        self.what = what

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.pattern.fullmatch(other) is not None

    def __hash__(self) -> int:
        return hash(self.what)

    def __repr__(self) -> str:
        return f"<any {self.what}>"


class _AnyPositive:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, int) and not isinstance(other, bool) and other > 0

    def __hash__(self) -> int:
        return 1

    def __repr__(self) -> str:
        return "<any positive int>"


ANY_TIME: Any = _Matches(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?Z", "RFC 3339 UTC time")
ANY_UUID: Any = _Matches(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "uuid")
ANY_HASH: Any = _Matches(r"sha256:[0-9a-f]{64}", "claim token hash")
ANY_SEQ: Any = _AnyPositive()
ABSENT = object()

AGENT = "coder"


def identity(session_id: str, agent: str = AGENT) -> dict[str, str]:
    return {"X-AGH-Session-ID": session_id, "X-AGH-Agent": agent}


async def start_session(http: httpx.AsyncClient, session_id: str, agent: str | None = AGENT) -> None:
    body: dict[str, Any] = {"session_id": session_id, "session_name": f"session {session_id}"}
    if agent is not None:
        body["agent_name"] = agent
    resp = await http.post("/sessions", json=body)
    assert resp.status_code == 200, resp.text


async def stop_session(http: httpx.AsyncClient, session_id: str) -> None:
    event = {
        "event_type": "session_stop",
        "session_id": session_id,
        "session_name": "s",
        "timestamp": "2026-01-01T00:00:00Z",
    }
    resp = await http.post(f"/sessions/{session_id}/events", json=event)
    assert resp.status_code == 200, resp.text


def created(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def ok(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    return dict(resp.json())


async def create_task(http: httpx.AsyncClient, title: str = "Fix the build", **fields: Any) -> dict[str, Any]:
    return created(await http.post("/api/tasks", json={"title": title, **fields}))


async def claim(http: httpx.AsyncClient, session_id: str, **body: Any) -> httpx.Response:
    return await http.post("/api/agent/tasks/claim-next", json=body, headers=identity(session_id))


async def claimed(http: httpx.AsyncClient, session_id: str, **body: Any) -> dict[str, Any]:
    """A successful claim's `claim`."""
    return dict(ok(await claim(http, session_id, **body))["claim"])


async def lease_op(
    http: httpx.AsyncClient, session_id: str, run_id: str, op: str, body: Any = None, agent: str = AGENT
) -> httpx.Response:
    return await http.post(
        f"/api/agent/tasks/{run_id}/{op}",
        json={} if body is None else body,
        headers=identity(session_id, agent),
    )


def task_ref(
    task_id: Any = ANY_UUID,
    *,
    title: str = "Fix the build",
    status: str = "ready",
    priority: str = "medium",
    scope: str = "global",
    workspace_id: str | None = None,
    paused: bool = False,
    identifier: Any = None,
) -> dict[str, Any]:
    """A task as agents see it (TaskReference)."""
    out = {
        "id": task_id,
        "identifier": identifier if identifier is not None else _Matches(r"TASK-\d+", "identifier"),
        "title": title,
        "status": status,
        "priority": priority,
        "scope": scope,
        "paused": paused,
        "effective_paused": paused,
        "latest_event_seq": ANY_SEQ,
    }
    if workspace_id is not None:
        out["workspace_id"] = workspace_id
    return out


def task_record(
    task_id: Any = ANY_UUID,
    *,
    title: str = "Fix the build",
    description: str = "",
    status: str = "ready",
    priority: str = "medium",
    scope: str = "global",
    workspace_id: str | None = None,
    paused: bool = False,
    max_attempts: int = 3,
    metadata: Any = ABSENT,
    identifier: Any = None,
) -> dict[str, Any]:
    """A task as the operator API shows it."""
    out = {
        "id": task_id,
        "identifier": identifier if identifier is not None else _Matches(r"TASK-\d+", "identifier"),
        "title": title,
        "description": description,
        "status": status,
        "priority": priority,
        "scope": scope,
        "paused": paused,
        "effective_paused": paused,
        "max_attempts": max_attempts,
        "latest_event_seq": ANY_SEQ,
        "created_at": ANY_TIME,
        "updated_at": ANY_TIME,
    }
    if workspace_id is not None:
        out["workspace_id"] = workspace_id
    if metadata is not ABSENT:
        out["metadata"] = metadata
    return out


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a run, as a run or lease shows it."""

    session_id: str
    token_hash: Any = ANY_HASH
    leased: bool = True

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "session_id": self.session_id,
            "claimed_by": {"kind": "agent_session", "ref": self.session_id},
            "claim_token_hash": self.token_hash,
        }
        if self.leased:
            out.update(lease_until=ANY_TIME, heartbeat_at=ANY_TIME)
        return out


def run_body(
    task_id: Any,
    *,
    run_id: Any = ANY_UUID,
    status: str = "queued",
    attempt: int = 1,
    holder: Holder | None = None,
    ended: bool = False,
    error: str | None = None,
    failure_kind: str | None = None,
    previous_run_id: str | None = None,
    result: Any = ABSENT,
    metadata: Any = ABSENT,
    origin: tuple[str, str] = ("daemon", "task_api"),
) -> dict[str, Any]:
    """A run in full (claims, the operator API)."""
    out: dict[str, Any] = {"id": run_id, "task_id": task_id, "status": status, "attempt": attempt}
    if previous_run_id is not None:
        out["previous_run_id"] = previous_run_id
    if failure_kind is not None:
        out["failure_kind"] = failure_kind
    if holder is not None:
        out.update(holder.fields())
    out["coordination_channel_id"] = run_channel(run_id)
    out["origin"] = {"kind": origin[0], "ref": origin[1]}
    out["queued_at"] = ANY_TIME
    if holder is not None:
        out["claimed_at"] = ANY_TIME
    if ended:
        out["ended_at"] = ANY_TIME
    if error is not None:
        out["error"] = error
    if metadata is not ABSENT:
        out["metadata"] = metadata
    if result is not ABSENT:
        out["result"] = result
    return out


def lease_body(task_id: Any, run_id: Any, status: str, holder: Holder | None) -> dict[str, Any]:
    out: dict[str, Any] = {"task_id": task_id, "run_id": run_id, "status": status}
    if holder is not None:
        out.update(holder.fields())
    out["coordination_channel_id"] = run_channel(run_id)
    return out


ANY_RUN_CHANNEL: Any = _Matches(
    r"run-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "run channel"
)


def run_channel(run_id: Any) -> Any:
    """The coordination channel of a run (created with it): `run-<run id>`."""
    return f"run-{run_id}" if isinstance(run_id, str) else ANY_RUN_CHANNEL


def run_channel_body(task_id: Any, run_id: Any = ANY_UUID) -> dict[str, Any]:
    """A run's coordination channel, as a claim shows it."""
    channel = run_channel(run_id)
    return {
        "id": channel,
        "display_name": channel,
        "purpose": "task_run_coordination",
        "workspace_id": "default",
        "task_id": task_id,
        "run_id": run_id,
        "allowed_message_kinds": [
            "status",
            "request",
            "reply",
            "blocker",
            "handoff",
            "result",
            "review_request",
        ],
    }


def agh_error(
    code: str, error: Any, *, category: str, evidence: Any = ABSENT, action: str | None = None
) -> dict[str, Any]:
    """An AGH error body, whole."""
    titles = {"session": "Agent identity error", "task": "Task error", "daemon": "Request error"}
    prefix = {"session": "agentidentity", "task": "task", "daemon": "api"}
    if code.startswith("spawn_"):
        titles["session"], prefix["session"] = "Spawn error", "spawn"
    if code == "session_not_found":
        titles["session"], prefix["session"] = "Session error", "session"
    if code in ("invalid_json", "body_too_large"):
        titles["daemon"] = "Invalid request"
    message = error if action is None else error[: -len(action) - 2]
    diagnostic: dict[str, Any] = {
        "id": f"{prefix[category]}.{code}",
        "code": code,
        "category": category,
        "title": titles[category],
        "message": message,
        "severity": "error",
        "data_freshness": "live",
    }
    if action is not None:
        diagnostic["suggested_command"] = action
    if evidence is not ABSENT:
        diagnostic["evidence"] = evidence
    return {"error": error, "diagnostic": diagnostic}


def assert_error(resp: httpx.Response, status: int, body: dict[str, Any]) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json() == body


START = "run this command from an AGH-managed agent session"
RESUME = "start or resume the AGH session, then retry"
CLEAR = "clear stale AGH identity environment variables and retry"
IDENTITY_ERRORS = {
    "no session": (
        {"X-AGH-Agent": AGENT},
        agh_error(
            "identity_required",
            f"AGH_SESSION_ID is required for agent commands: {START}",
            category="session",
            action=START,
        ),
    ),
    "blank session": (
        {"X-AGH-Session-ID": "  ", "X-AGH-Agent": AGENT},
        agh_error(
            "identity_required",
            f"AGH_SESSION_ID is required for agent commands: {START}",
            category="session",
            action=START,
        ),
    ),
    "no agent": (
        {"X-AGH-Session-ID": "worker"},
        agh_error(
            "identity_required",
            f"AGH_AGENT is required for agent commands: {START}",
            category="session",
            action=START,
        ),
    ),
    "unknown session": (
        identity("ghost"),
        agh_error(
            "identity_stale",
            f"agent session identity is not known to the daemon: {RESUME}",
            category="session",
            action=RESUME,
        ),
    ),
    "finished session": (
        identity("finished"),
        agh_error(
            "identity_stale",
            f"agent session identity is not active: {RESUME}",
            category="session",
            action=RESUME,
        ),
    ),
    "other agent": (
        identity("worker", "reviewer"),
        agh_error(
            "identity_mismatch",
            f"AGH_AGENT does not match the daemon session agent: {CLEAR}",
            category="session",
            action=CLEAR,
        ),
    ),
}


class Clock:
    """Moves the AGH domain's clock forward (leases, TTLs, contexts), so that
    a lease or a TTL ends without the test sleeping."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from service.domain.agh import common

        self.offset = 0
        real = common.now_us

        def now() -> int:
            return real() + self.offset

        for module in ("service.domain.agh.leases", "service.domain.agh.spawn", "service.api.agh"):
            monkeypatch.setattr(f"{module}.now_us", now)

    def advance(self, seconds: float) -> None:
        self.offset += int(seconds * 1_000_000)


_TABLES = (agh_tasks, agh_task_runs, agh_task_events, agh_session_lineage, agh_souls, sessions)


async def rows_and_log(server: Server, tables: Sequence[Table]) -> dict[str, Any]:
    """Every row of `tables`, and the whole event log: compared before and
    after a refused call, to show it wrote nothing."""

    def read(conn: Connection) -> dict[str, Any]:
        out: dict[str, Any] = {t.name: sorted(map(tuple, conn.execute(select(t))), key=repr) for t in tables}
        out["log"] = [tuple(r) for r in conn.execute(select(log_entries).order_by(log_entries.c.seq))]
        return out

    return await server.core.store.read(read)


async def snapshot(server: Server) -> dict[str, Any]:
    """Every row AGH wrote, and the whole event log."""
    return await rows_and_log(server, _TABLES)


async def log_types(server: Server, after: int = 0) -> list[str]:
    def read(conn: Connection) -> list[str]:
        rows = conn.execute(
            select(log_entries.c.type).where(log_entries.c.seq > after).order_by(log_entries.c.seq)
        )
        return [r[0] for r in rows]

    return await server.core.store.read(read)


def log_head(server: Server) -> int:
    return server.core.store.notifier.head
