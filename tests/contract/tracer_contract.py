"""Shared helpers and matchers for the Agent Tracer (seed 000) tests.

The envelope is checked on every call: `{"ok": true, "data": …}` for a
success, `{"ok": false, "error": {"code", "message", "details"?}}` for an
error, and nothing else. Bodies are compared whole, with matchers for the
values the server makes up (ids and times).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

# JavaScript's toISOString: UTC, milliseconds, "Z".
JS_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


class _Now:
    """Equal to a server time (toISOString form) within minutes of now."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, str) or not JS_ISO.match(other):
            return False
        return abs(datetime.now(UTC) - datetime.fromisoformat(other)) < timedelta(minutes=5)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "<server time>"


class _Uuid:
    """Equal to a UUID string."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, str):
            return False
        try:
            return str(uuid.UUID(other)) == other
        except ValueError:
            return False

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "<uuid>"


NOW = _Now()
UUID = _Uuid()

CLAUDE = "claude-plugin"
TOKENS_ZERO = {
    "inputTokens": 0,
    "outputTokens": 0,
    "cacheReadTokens": 0,
    "cacheCreateTokens": 0,
    "costUsd": 0,
    "events": 0,
}
LANES = (
    "user",
    "exploration",
    "planning",
    "implementation",
    "questions",
    "todos",
    "background",
    "coordination",
    "telemetry",
    "rule",
)


def data(resp: httpx.Response) -> Any:
    """The payload of a success envelope."""
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"ok", "data"} and body["ok"] is True, body
    return body["data"]


def error(resp: httpx.Response, status: int, code: str, message: str | None = None) -> dict[str, Any]:
    """The `error` member of an error envelope, checked."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"ok", "error"} and body["ok"] is False, body
    err = body["error"]
    assert err["code"] == code, err
    assert set(err) <= {"code", "message", "details"} and isinstance(err["message"], str), err
    if message is not None:
        assert err["message"] == message, err
    return dict(err)


def zod(*paths: tuple[str, str]) -> dict[str, Any]:
    """zod's format() tree for (dotted path, message) pairs."""
    root: dict[str, Any] = {"_errors": []}
    for path, message in paths:
        node = root
        for part in path.split("."):
            node = node.setdefault(part, {"_errors": []})
        node["_errors"].append(message)
    return root


def enum_message(allowed: tuple[str, ...], received: str) -> str:
    return f"Invalid enum value. Expected {' | '.join(repr(v) for v in allowed)}, received '{received}'"


def slug_task(
    title: str,
    slug: str,
    *,
    task_id: Any = UUID,
    status: str = "running",
    kind: str = "primary",
    origin: str = "user",
    **optional: Any,
) -> dict[str, Any]:
    """A Task as returned: optional fields only when given."""
    task = {
        "id": task_id,
        "title": title,
        "slug": slug,
        "status": status,
        "taskKind": kind,
        "createdAt": NOW,
        "updatedAt": NOW,
        "origin": origin,
        "lastSessionStartedAt": NOW,
    }
    task.update(optional)
    return task


def shown(task: dict[str, Any], display_title: str | None = None) -> dict[str, Any]:
    """A Task as the reads return it: with `displayTitle` (the title unless given)."""
    return {**task, "displayTitle": display_title if display_title is not None else task["title"]}


def session(session_id: Any, task_id: str, status: str = "running", **optional: Any) -> dict[str, Any]:
    out = {"id": session_id, "taskId": task_id, "status": status, "startedAt": NOW}
    if status != "running":
        out["endedAt"] = NOW
    out.update(optional)
    return out


def event(
    kind: str,
    task_id: str,
    lane: str,
    session_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """An event item as a runtime sends it."""
    out: dict[str, Any] = {"kind": kind, "taskId": task_id, "lane": lane}
    if session_id is not None:
        out["sessionId"] = session_id
    out.update(fields)
    return out


def view(
    event_id: Any,
    kind: str,
    task_id: str,
    lane: str,
    *,
    session_id: str | None = None,
    title: str | None = None,
    body: str | None = None,
    metadata: dict[str, Any] | None = None,
    created_at: Any = NOW,
    tags: list[str] | None = None,
    file_paths: list[str] | None = None,
    mentioned: list[str] | None = None,
    primary: str | None = None,
    semantic: dict[str, Any] | None = None,
    turn_id: Any = None,
) -> dict[str, Any]:
    """A timeline event as the timeline returns it."""
    out: dict[str, Any] = {"id": event_id, "taskId": task_id}
    if session_id is not None:
        out["sessionId"] = session_id
    out.update({"kind": kind, "lane": lane, "title": title if title is not None else kind})
    if body is not None:
        out["body"] = body
    out["metadata"] = metadata if metadata is not None else {}
    out["classification"] = {"lane": lane, "tags": tags or [], "matches": []}
    out["createdAt"] = created_at
    if semantic is not None:
        out["semantic"] = semantic
    paths: dict[str, Any] = {"filePaths": file_paths or [], "mentionedPaths": mentioned or []}
    if primary is not None or file_paths:
        paths["primaryPath"] = primary if primary is not None else (file_paths or [None])[0]
    out["paths"] = paths
    if turn_id is not None:
        out["turnId"] = turn_id
    return out


class Tracer:
    """The seed's calls over HTTP, each checking the envelope."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def post(self, path: str, body: Any) -> Any:
        return data(await self.http.post(path, json=body))

    async def ensure(self, runtime_session_id: str, title: str = "Task", **fields: Any) -> dict[str, Any]:
        body = {"runtimeSource": CLAUDE, "runtimeSessionId": runtime_session_id, "title": title, **fields}
        out: dict[str, Any] = await self.post("/ingest/v1/sessions/ensure", body)
        assert set(out) == {"taskId", "sessionId", "taskCreated", "sessionCreated"}, out
        return out

    async def end(self, runtime_session_id: str, **fields: Any) -> None:
        body = {"runtimeSource": CLAUDE, "runtimeSessionId": runtime_session_id, **fields}
        assert await self.post("/ingest/v1/sessions/end", body) == {"ended": True}

    async def ingest(self, endpoint: str, *events: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = await self.post(f"/ingest/v1/{endpoint}", {"events": list(events)})
        assert set(out) == {"accepted", "rejected"}, out
        return out

    async def accepted_ids(self, endpoint: str, *events: dict[str, Any]) -> list[str]:
        out = await self.ingest(endpoint, *events)
        assert out["rejected"] == [], out
        return [a["eventId"] for a in out["accepted"]]

    async def task(self, task_id: str) -> dict[str, Any]:
        out: dict[str, Any] = data(await self.http.get(f"/api/v1/tasks/{task_id}"))
        return out

    async def status(self, task_id: str) -> str:
        return str((await self.task(task_id))["task"]["status"])

    async def timeline(self, task_id: str, **params: Any) -> list[dict[str, Any]]:
        """Every event of the task, following the cursor through the pages."""
        events: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            page = data(await self.http.get(f"/api/v1/tasks/{task_id}/timeline", params=query))
            events += page["events"]
            cursor = page.get("nextCursor")
            if cursor is None:
                return events

    async def kinds(self, task_id: str) -> list[str]:
        return [e["kind"] for e in await self.timeline(task_id)]

    async def log(self) -> str:
        """The whole event log: unchanged means nothing was written."""
        resp = await self.http.get("/v1/log:watch", params={"after_seq": "0", "stop_at_end": "true"})
        assert resp.status_code == 200, resp.text
        return resp.text
