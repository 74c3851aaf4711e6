"""Seed 004 (Agent Runtime API) over HTTP, against the real app.

Every request and response example of the seed and of DATA_MODELS (reference
§1.4) is replayed, then every upstream quirk of the reference §6, then the
bad input we reject with 400 (or 413) without writing anything.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import Server
from tests.contract.runtime_contract import (
    DM_EVENTS,
    DM_READ_ORDER,
    DM_RESULT_TEXT,
    DM_SESSION_ID,
    DM_SESSION_NAME,
    SEED_CREATE,
    SEED_DELETED_EVENTS,
    SEED_PATCH,
    SEED_RESULT_TEXT,
    SERVER_TIME,
    event,
    session,
    stored,
)

JSON_HEADERS = {"content-type": "application/json"}

# ---------------------------------------------------------------- helpers


def ok_json(resp: httpx.Response) -> Any:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    return resp.json()


def assert_error(resp: httpx.Response, status: int, detail: str | None = None) -> str:
    """An error is always {"detail": "<message>"}; returns the message."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert isinstance(body, dict) and set(body) == {"detail"}, body
    assert isinstance(body["detail"], str) and body["detail"], body
    if detail is not None:
        assert body["detail"] == detail
    return str(body["detail"])


async def snapshot(http: httpx.AsyncClient) -> tuple[Any, str]:
    """Everything the server holds: the sessions and the whole event log."""
    sessions = ok_json(await http.get("/sessions"))
    log = await http.get("/v1/log:watch", params={"after_seq": "0", "stop_at_end": "true"})
    assert log.status_code == 200, log.text
    return sessions, log.text


async def create(http: httpx.AsyncClient, session_id: str, name: str = "S", **extra: Any) -> dict[str, Any]:
    body = ok_json(
        await http.post("/sessions", json={"session_id": session_id, "session_name": name, **extra})
    )
    return dict(body["session"])


async def add(http: httpx.AsyncClient, session_id: str, body: dict[str, Any]) -> None:
    assert ok_json(await http.post(f"/sessions/{session_id}/events", json=body)) == {"ok": True}


async def legacy(http: httpx.AsyncClient, body: dict[str, Any]) -> None:
    assert ok_json(await http.post("/events", json=body)) == {"ok": True}


async def events(http: httpx.AsyncClient, session_id: str) -> list[dict[str, Any]]:
    """The session's events; both GET routes must agree for an existing session."""
    new = ok_json(await http.get(f"/sessions/{session_id}/events"))
    old = ok_json(await http.get(f"/events/{session_id}"))
    assert new == old
    assert set(new) == {"events"}
    return list(new["events"])


async def status_of(http: httpx.AsyncClient, session_id: str) -> str:
    body = ok_json(await http.get(f"/sessions/{session_id}/status"))
    assert set(body) == {"status"}
    return str(body["status"])


def encode(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


# ------------------------------------------------------- seed: sessions


async def test_list_sessions_when_there_are_none(server: Server) -> None:
    assert ok_json(await server.http.get("/sessions")) == {"sessions": []}


async def test_create_session_seed_example(server: Server) -> None:
    resp = await server.http.post("/sessions", json=SEED_CREATE)
    body = ok_json(resp)  # 200, not 201 (reference §6.8)
    expected = session("abc-123", "My Session", project_dir="/path/to/project", agent_name="researcher")
    assert body == {"ok": True, "session": expected}
    created = body["session"]
    assert ok_json(await server.http.get("/sessions/abc-123")) == {"session": created}
    assert ok_json(await server.http.get("/sessions")) == {"sessions": [created]}


async def test_create_session_optional_fields_default_to_null(server: Server) -> None:
    body = ok_json(await server.http.post("/sessions", json={"session_id": "s1", "session_name": "One"}))
    assert body == {"ok": True, "session": session("s1", "One")}
    nulls = ok_json(
        await server.http.post(
            "/sessions",
            json={"session_id": "s2", "session_name": "Two", "project_dir": None, "agent_name": None},
        )
    )
    assert nulls == {"ok": True, "session": session("s2", "Two")}


async def test_create_existing_session_conflicts_and_changes_nothing(server: Server) -> None:
    original = await create(server.http, "abc-123", "My Session")
    before = await snapshot(server.http)
    resp = await server.http.post("/sessions", json={**SEED_CREATE, "session_name": "Other"})
    assert_error(resp, 409, "Session already exists")
    assert await snapshot(server.http) == before
    assert ok_json(await server.http.get("/sessions/abc-123")) == {"session": original}


UNKNOWN_SESSION_ROUTES = [
    ("GET", "/sessions/nope"),
    ("GET", "/sessions/nope/result"),
    ("PATCH", "/sessions/nope/metadata"),
    ("DELETE", "/sessions/nope"),
    ("GET", "/sessions/nope/events"),
]


async def test_unknown_session_is_404(server: Server, subtests: pytest.Subtests) -> None:
    await create(server.http, "other")
    before = await snapshot(server.http)
    for method, path in UNKNOWN_SESSION_ROUTES:
        with subtests.test(f"{method} {path}"):
            kwargs: dict[str, Any] = {"json": {"session_name": "x"}} if method == "PATCH" else {}
            assert_error(await server.http.request(method, path, **kwargs), 404, "Session not found")
            assert await snapshot(server.http) == before


async def test_add_event_to_unknown_session_is_404_before_the_session_id_check(server: Server) -> None:
    before = await snapshot(server.http)
    for sent_id in ("nope", "someone-else"):
        resp = await server.http.post("/sessions/nope/events", json=event("pre_tool", sent_id, "2025-01-01"))
        assert_error(resp, 404, "Session not found")
    assert await snapshot(server.http) == before


async def test_session_status(server: Server) -> None:
    await create(server.http, "running-one")
    await create(server.http, "finished-one")
    await add(server.http, "finished-one", event("session_stop", "finished-one", "2025-01-01T00:00:00Z"))
    # an unknown session is 200 "not_existent", never 404 (reference §6.1)
    for sid, expected in [("running-one", "running"), ("finished-one", "finished"), ("nope", "not_existent")]:
        assert ok_json(await server.http.get(f"/sessions/{sid}/status")) == {"status": expected}


async def test_result_seed_example(server: Server) -> None:
    await create(server.http, "abc-123")
    content = [{"type": "text", "text": SEED_RESULT_TEXT}]
    await add(
        server.http,
        "abc-123",
        event("message", "abc-123", "2025-01-01T00:00:01Z", role="assistant", content=content),
    )
    assert_error(await server.http.get("/sessions/abc-123/result"), 400, "Session not finished")
    await add(server.http, "abc-123", event("session_stop", "abc-123", "2025-01-01T00:00:02Z"))
    assert ok_json(await server.http.get("/sessions/abc-123/result")) == {"result": SEED_RESULT_TEXT}


async def test_update_metadata_seed_example(server: Server) -> None:
    original = await create(server.http, "abc-123", "My Session", project_dir="/path/to/project")
    body = ok_json(await server.http.patch("/sessions/abc-123/metadata", json=SEED_PATCH))
    expected = session(
        "abc-123",
        "New Name",
        created_at=original["created_at"],
        project_dir="/new/path",
        agent_name="new-agent",
    )
    assert body == {"ok": True, "session": expected}
    assert ok_json(await server.http.get("/sessions/abc-123")) == {"session": expected}


async def test_delete_session_seed_example(server: Server) -> None:
    await create(server.http, "abc-123")
    await create(server.http, "keep")
    await add(server.http, "keep", event("pre_tool", "keep", "2025-01-01T00:00:00Z", tool_name="Read"))
    await asyncio.gather(
        *(
            add(server.http, "abc-123", event("pre_tool", "abc-123", f"2025-01-01T00:00:{i:02d}Z"))
            for i in range(SEED_DELETED_EVENTS)
        )
    )
    resp = await server.http.delete("/sessions/abc-123")
    assert ok_json(resp) == {
        "ok": True,
        "session_id": "abc-123",
        "deleted": {"session": True, "events_count": SEED_DELETED_EVENTS},
    }
    assert_error(await server.http.get("/sessions/abc-123"), 404, "Session not found")
    assert_error(await server.http.get("/sessions/abc-123/events"), 404, "Session not found")
    assert ok_json(await server.http.get("/events/abc-123")) == {"events": []}
    assert await status_of(server.http, "abc-123") == "not_existent"
    # a second DELETE is 404; the other session and its event are untouched
    assert_error(await server.http.delete("/sessions/abc-123"), 404, "Session not found")
    assert [s["session_id"] for s in ok_json(await server.http.get("/sessions"))["sessions"]] == ["keep"]
    assert len(await events(server.http, "keep")) == 1


async def test_unknown_routes_and_methods_answer_in_the_error_shape(server: Server) -> None:
    assert_error(await server.http.get("/no/such/route"), 404)
    assert_error(await server.http.put("/sessions"), 405)
    assert_error(await server.http.post("/sessions/abc-123"), 405)


async def test_cors_allows_the_configured_origins(server: Server) -> None:
    """Seed configuration: CORS_ORIGINS defaults to the two local UIs; all methods and headers."""
    for origin in ("http://localhost:5173", "http://localhost:3000"):
        preflight = await server.http.options(
            "/sessions/abc-123",
            headers={
                "origin": origin,
                "access-control-request-method": "DELETE",
                "access-control-request-headers": "x-anything",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
        assert "DELETE" in preflight.headers["access-control-allow-methods"]
        assert "x-anything" in preflight.headers["access-control-allow-headers"].lower()
        simple = await server.http.get("/sessions", headers={"origin": origin})
        assert simple.headers["access-control-allow-origin"] == origin
    other = await server.http.get("/sessions", headers={"origin": "http://elsewhere.example"})
    assert other.status_code == 200
    assert "access-control-allow-origin" not in other.headers


# --------------------------------------------------------- seed: events


async def test_events_seed_examples(server: Server) -> None:
    await create(server.http, "abc-123")
    assert ok_json(await server.http.get("/sessions/abc-123/events")) == {"events": []}
    assert ok_json(await server.http.get("/events/abc-123")) == {"events": []}
    late = event("pre_tool", "abc-123", "2025-01-01T00:00:02Z", tool_name="Bash")
    early = event("post_tool", "abc-123", "2025-01-01T00:00:01Z", tool_name="Read", tool_output="x")
    resp = await server.http.post("/sessions/abc-123/events", json=late)
    assert ok_json(resp) == {"ok": True}
    assert ok_json(await server.http.post("/events", json=early)) == {"ok": True}
    got = await events(server.http, "abc-123")
    # ascending timestamp order (oldest first), whatever the insertion order
    assert got == [stored(early), stored(late)]
    assert got[0]["id"] > got[1]["id"]


@pytest.mark.parametrize("route", ["session", "legacy"])
async def test_data_models_examples(server: Server, route: str) -> None:
    if route == "session":
        await create(server.http, DM_SESSION_ID, DM_SESSION_NAME)
    sent: list[dict[str, Any]] = []
    for example in DM_EVENTS.values():
        resp = await server.http.post(
            f"/sessions/{DM_SESSION_ID}/events" if route == "session" else "/events", json=example
        )
        assert ok_json(resp) == {"ok": True}
        sent.append(example)
        # stored form: an integer id, no session_name, every key present
        expected_so_far = [stored(e) for e in sorted(sent, key=lambda e: e["timestamp"])]
        assert await events(server.http, DM_SESSION_ID) == expected_so_far
    got = await events(server.http, DM_SESSION_ID)
    assert all("session_name" not in e for e in got)
    assert got == [stored(DM_EVENTS[name]) for name in DM_READ_ORDER]
    ids = {e["event_type"]: e["id"] for e in got}
    posted = [ids[name] for name in DM_EVENTS]
    assert posted == sorted(posted) and len(set(posted)) == len(posted)
    created_at = "2025-11-16T10:30:00.000000Z" if route == "legacy" else SERVER_TIME
    expected = session(DM_SESSION_ID, DM_SESSION_NAME, status="finished", created_at=created_at)
    assert ok_json(await server.http.get(f"/sessions/{DM_SESSION_ID}")) == {"session": expected}
    assert ok_json(await server.http.get(f"/sessions/{DM_SESSION_ID}/result")) == {"result": DM_RESULT_TEXT}
    assert ok_json(await server.http.delete(f"/sessions/{DM_SESSION_ID}"))["deleted"] == {
        "session": True,
        "events_count": len(DM_EVENTS),
    }


# --------------------------------------------------- reference §6 quirks
#
# The big tables run as subtests on one server (each case on its own
# session), so that a case costs a request rather than a server start.

T = "2025-01-01T10:00:0{}Z"


def msg(second: int, text: Any = None, role: str = "assistant", **kw: Any) -> dict[str, Any]:
    content = kw.pop("content", [{"type": "text", "text": text}])
    return event(kw.pop("event_type", "message"), "r", T.format(second), role=role, content=content, **kw)


NOT_FOUND = {"detail": "Session not found"}
NOT_FINISHED = {"detail": "Session not finished"}
NO_RESULT = {"detail": "No result found"}
# (id, does the session exist / is it stopped, events sent, status, body)
RESULT_CASES: list[tuple[str, str, list[dict[str, Any]], int, Any]] = [
    ("unknown-session", "none", [], 404, NOT_FOUND),
    ("not-finished", "running", [msg(1, "done")], 400, NOT_FINISHED),
    ("not-finished-no-messages", "running", [], 400, NOT_FINISHED),
    ("no-messages", "stopped", [], 404, NO_RESULT),
    ("only-user", "stopped", [msg(1, "hi", role="user")], 404, NO_RESULT),
    ("content-null", "stopped", [msg(1, content=None)], 404, NO_RESULT),
    ("content-empty", "stopped", [msg(1, content=[])], 404, NO_RESULT),
    (
        "first-block-without-text",
        "stopped",
        [msg(1, content=[{"type": "image"}, {"type": "text", "text": "second"}])],
        404,
        NO_RESULT,
    ),
    (
        "first-block-only",
        "stopped",
        [msg(1, content=[{"type": "text", "text": "first"}, {"type": "text", "text": "second"}])],
        200,
        {"result": "first"},
    ),
    ("latest-by-timestamp", "stopped", [msg(3, "latest"), msg(1, "older")], 200, {"result": "latest"}),
    ("latest-inserted-last", "stopped", [msg(1, "older"), msg(3, "latest")], 200, {"result": "latest"}),
    (
        "later-user-message-ignored",
        "stopped",
        [msg(1, "answer"), msg(3, "thanks", role="user")],
        200,
        {"result": "answer"},
    ),
    (
        "latest-assistant-without-text",
        "stopped",
        [msg(1, "older"), msg(3, content=[{"type": "tool_use"}])],
        404,
        NO_RESULT,
    ),
    (
        "only-message-events-count",
        "stopped",
        [msg(1, "answer"), msg(3, "not a message", event_type="post_tool")],
        200,
        {"result": "answer"},
    ),
    ("text-without-type", "stopped", [msg(1, content=[{"text": "bare"}])], 200, {"result": "bare"}),
    ("empty-text", "stopped", [msg(1, "")], 200, {"result": ""}),
    # upstream returns content[0]["text"] as it is: null stays null
    ("text-null", "stopped", [msg(1, None)], 200, {"result": None}),
]


async def test_result_rules(server: Server, subtests: pytest.Subtests) -> None:
    for i, (case, setup, sent, status, body) in enumerate(RESULT_CASES):
        with subtests.test(case):
            sid = f"r{i}"
            if setup != "none":
                await create(server.http, sid)
            for item in sent:
                await add(server.http, sid, {**item, "session_id": sid})
            if setup == "stopped":
                await add(server.http, sid, event("session_stop", sid, "2025-01-01T09:00:00Z"))
            resp = await server.http.get(f"/sessions/{sid}/result")
            if status != 200:
                assert_error(resp, status)
            assert resp.status_code == status, resp.text
            assert resp.json() == body


async def test_event_lists_return_the_oldest_100(server: Server) -> None:
    await create(server.http, "cap")
    stamps = [f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}Z" for i in range(105)]
    # the newest are sent first, so the oldest 100 are not the first 100 stored
    for chunk in range(0, 105, 35):
        batch = reversed(stamps[chunk : chunk + 35])
        await asyncio.gather(*(add(server.http, "cap", event("pre_tool", "cap", t)) for t in batch))
    got = await events(server.http, "cap")
    assert [e["timestamp"] for e in got] == stamps[:100]
    assert ok_json(await server.http.delete("/sessions/cap"))["deleted"]["events_count"] == 105


async def test_result_looks_past_the_100_event_cap(server: Server) -> None:
    await create(server.http, "r")
    await asyncio.gather(
        *(add(server.http, "r", event("pre_tool", "r", f"2025-01-01T00:00:{i:03d}")) for i in range(100))
    )
    await add(server.http, "r", msg(9, "beyond the cap"))
    await add(server.http, "r", event("session_stop", "r", "2025-01-01T00:00:000"))
    assert len(await events(server.http, "r")) == 100
    assert ok_json(await server.http.get("/sessions/r/result")) == {"result": "beyond the cap"}


async def test_events_sort_by_timestamp_text(server: Server) -> None:
    await create(server.http, "t")
    stamps = [
        "2025-01-01T00:00:01Z",
        "2025-01-01T00:00:00Z",
        "2025-01-01T00:00:00+00:00",
        "2025-01-01T00:00:00.500Z",
        "2025-01-01T05:00:00+05:00",
        "not-a-timestamp",
        "1700000000",
    ]
    for t in stamps:
        await add(server.http, "t", event("pre_tool", "t", t))
    got = await events(server.http, "t")
    # plain string comparison: "+" < "." < "Z", and no parsing at all
    assert [e["timestamp"] for e in got] == sorted(stamps)


async def test_sessions_sort_by_created_at_text_descending(server: Server) -> None:
    stamps = {
        "a": "2025-03-01T00:00:00Z",
        "b": "2025-03-01T00:00:00+00:00",
        "c": "2024-12-31T23:59:59.999Z",
        "d": "2025-03-01T00:00:00.5Z",
        "e": "zzz",
    }
    for sid, t in stamps.items():
        await legacy(server.http, event("session_start", sid, t, session_name=f"name-{sid}"))
    stamps["f"] = (await create(server.http, "f"))["created_at"]
    got = ok_json(await server.http.get("/sessions"))["sessions"]
    assert [s["session_id"] for s in got] == sorted(stamps, key=lambda s: stamps[s], reverse=True)
    assert [s["created_at"] for s in got] == sorted(stamps.values(), reverse=True)


FALSY_CASES: list[tuple[str, Any]] = [
    ("tool_input", {}),
    ("tool_input", None),
    ("tool_output", 0),
    ("tool_output", 0.0),
    ("tool_output", False),
    ("tool_output", ""),
    ("tool_output", []),
    ("tool_output", {}),
    ("tool_output", None),
    ("content", []),
    ("content", None),
]
TRUTHY_CASES: list[tuple[str, Any]] = [
    ("tool_input", {"a": 1, "nested": {"list": [1, "two", None, True]}}),
    ("tool_output", "x"),
    ("tool_output", 1),
    ("tool_output", 0.5),
    ("tool_output", True),
    ("tool_output", [0]),
    ("tool_output", {"a": None}),
    ("content", [{"type": "text", "text": ""}]),
]


async def test_falsy_tool_input_output_and_content_read_back_as_null(
    server: Server, subtests: pytest.Subtests
) -> None:
    table = [(k, v, None) for k, v in FALSY_CASES] + [(k, v, v) for k, v in TRUTHY_CASES]
    for i, (key, value, expected) in enumerate(table):
        with subtests.test(f"{key}={value!r}"):
            sid = f"f{i}"
            await create(server.http, sid)
            await add(server.http, sid, event("post_tool", sid, "2025-01-01T00:00:00Z", **{key: value}))
            (got,) = await events(server.http, sid)
            assert got == stored(event("post_tool", sid, "2025-01-01T00:00:00Z", **{key: value}))
            assert got[key] == expected
            assert type(got[key]) is type(expected)


async def test_legacy_session_start_creates_the_session_at_the_event_time(server: Server) -> None:
    start = event("session_start", "leg", "2025-06-01T12:00:00.000000Z", session_name="Legacy", tool_name="x")
    await legacy(server.http, start)
    expected = session("leg", "Legacy", created_at="2025-06-01T12:00:00.000000Z")
    assert ok_json(await server.http.get("/sessions/leg")) == {"session": expected}
    assert await events(server.http, "leg") == [stored(start)]


async def test_legacy_session_start_on_an_existing_session_only_resumes_it(server: Server) -> None:
    original = await create(server.http, "s", "Original", project_dir="/p", agent_name="agent")
    await add(server.http, "s", event("session_stop", "s", "2025-01-01T00:00:00Z"))
    assert await status_of(server.http, "s") == "finished"
    await legacy(server.http, event("session_start", "s", "2030-01-01T00:00:00Z", session_name="Renamed"))
    # only the status changes: name, dirs, created_at kept; last_resumed_at stays null
    assert ok_json(await server.http.get("/sessions/s")) == {"session": original}
    assert len(await events(server.http, "s")) == 2


async def test_legacy_session_stop_finishes_the_session(server: Server) -> None:
    await legacy(server.http, event("session_start", "s", "2025-01-01T00:00:00Z"))
    await legacy(server.http, event("session_stop", "s", "2025-01-01T00:00:01Z", exit_code=1, reason="error"))
    assert await status_of(server.http, "s") == "finished"
    assert_error(await server.http.get("/sessions/s/result"), 404, "No result found")


async def test_legacy_events_of_unknown_sessions_are_stored(
    server: Server, subtests: pytest.Subtests
) -> None:
    for event_type in ("session_stop", "pre_tool", "message", "custom_kind"):
        with subtests.test(event_type):
            sid = f"ghost-{event_type}"
            content = [{"type": "text", "text": "x"}]
            sent = event(event_type, sid, "2025-01-01T00:00:00Z", role="user", content=content)
            await legacy(server.http, sent)
            assert ok_json(await server.http.get(f"/events/{sid}")) == {"events": [stored(sent)]}
            assert_error(await server.http.get(f"/sessions/{sid}/events"), 404, "Session not found")
            assert_error(await server.http.get(f"/sessions/{sid}"), 404, "Session not found")
            assert await status_of(server.http, sid) == "not_existent"
            assert ok_json(await server.http.get("/sessions")) == {"sessions": []}


async def test_legacy_event_list_of_unknown_session_is_empty(server: Server) -> None:
    assert ok_json(await server.http.get("/events/never-seen")) == {"events": []}


async def test_finished_is_not_terminal(server: Server) -> None:
    await create(server.http, "s")
    await add(server.http, "s", event("session_stop", "s", "2025-01-01T00:00:00Z"))
    # session_start on the new endpoint does not resume; further events are accepted
    await add(server.http, "s", event("session_start", "s", "2025-01-01T00:00:01Z"))
    await add(server.http, "s", event("pre_tool", "s", "2025-01-01T00:00:02Z"))
    assert await status_of(server.http, "s") == "finished"
    assert len(await events(server.http, "s")) == 3
    await legacy(server.http, event("session_start", "s", "2025-01-01T00:00:03Z"))
    assert await status_of(server.http, "s") == "running"
    assert_error(await server.http.get("/sessions/s/result"), 400, "Session not finished")


async def test_events_sent_before_the_session_existed_belong_to_it(server: Server) -> None:
    await legacy(server.http, event("pre_tool", "d", "2025-01-01T00:00:00Z", tool_name="Read"))
    await create(server.http, "d")
    await add(server.http, "d", event("post_tool", "d", "2025-01-01T00:00:01Z"))
    assert len(await events(server.http, "d")) == 2
    deleted = ok_json(await server.http.delete("/sessions/d"))
    assert deleted == {"ok": True, "session_id": "d", "deleted": {"session": True, "events_count": 2}}
    # a deleted id can be created again, with nothing left of the old session
    assert await create(server.http, "d", "Again") == session("d", "Again")
    assert await events(server.http, "d") == []


async def test_delete_session_without_events_counts_zero(server: Server) -> None:
    await create(server.http, "empty")
    assert ok_json(await server.http.delete("/sessions/empty")) == {
        "ok": True,
        "session_id": "empty",
        "deleted": {"session": True, "events_count": 0},
    }


ORIGINAL = {"session_name": "Orig", "project_dir": "/orig", "agent_name": "orig-agent"}
# (id, PATCH body, the fields it changes)
PATCH_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("seed-example", SEED_PATCH, SEED_PATCH),
    ("empty-body", {}, {}),
    ("one-field", {"agent_name": "x"}, {"agent_name": "x"}),
    ("null-is-unchanged", {"session_name": None, "project_dir": "/p"}, {"project_dir": "/p"}),
    ("empty-string-is-set", {"project_dir": ""}, {"project_dir": ""}),
    ("path-id-wins", {"session_id": "other", "agent_name": "x"}, {"agent_name": "x"}),
    ("other-keys-ignored", {"status": "finished", "created_at": "1999", "last_resumed_at": "2000"}, {}),
]


async def test_update_metadata(server: Server, subtests: pytest.Subtests) -> None:
    other = await create(server.http, "other", "Other")
    for i, (case, patch, changes) in enumerate(PATCH_CASES):
        with subtests.test(case):
            sid = f"s{i}"
            original = await create(server.http, sid, **ORIGINAL)
            body = ok_json(await server.http.patch(f"/sessions/{sid}/metadata", json=patch))
            expected = {**original, **changes}
            assert body == {"ok": True, "session": expected}
            assert ok_json(await server.http.get(f"/sessions/{sid}")) == {"session": expected}
            assert ok_json(await server.http.get("/sessions/other")) == {"session": other}


# ------------------------------------------------------------ bad input

DROP = object()


def _ev(**over: Any) -> dict[str, Any]:
    body = event("pre_tool", "s1", "2025-01-01T00:00:09Z", session_name="S")
    body.update(over)
    return {k: v for k, v in body.items() if v is not DROP}


START_NEW = event("session_start", "new", "2025-01-01T00:00:00Z")
MALFORMED = [b'{"session_id": "new", ', b"{bad json}", b"\xff\xfe{}", b"{'a': 1}", b"NaN"]
NOT_OBJECTS = [[], [START_NEW], "text", 42, None, True]
# (id, body, a field the message should name)
Bad = tuple[str, Any, str | None]
COMMON_BAD: list[Bad] = [(f"malformed-{raw!r}", raw, None) for raw in MALFORMED] + [
    (f"not-an-object-{body!r}", body, None) for body in NOT_OBJECTS
]
EVENT_BAD: list[Bad] = [
    ("missing-event_type", _ev(event_type=DROP), "event_type"),
    ("missing-session_id", _ev(session_id=DROP), "session_id"),
    ("missing-session_name", _ev(session_name=DROP), "session_name"),
    ("missing-timestamp", _ev(timestamp=DROP), "timestamp"),
    ("null-event_type", _ev(event_type=None), "event_type"),
    ("empty-body", b"", None),
    ("exit_code-string", _ev(exit_code="abc"), "exit_code"),
    ("exit_code-fraction", _ev(exit_code=1.5), "exit_code"),
    ("tool_input-list", _ev(tool_input=[1]), "tool_input"),
    ("tool_input-string", _ev(tool_input="x"), "tool_input"),
    ("tool_name-number", _ev(tool_name=5), "tool_name"),
    ("timestamp-number", _ev(timestamp=1700000000), "timestamp"),
    ("role-list", _ev(role=["assistant"]), "role"),
    ("error-object", _ev(error={"e": 1}), "error"),
    ("content-object", _ev(content={"type": "text", "text": "x"}), "content"),
    ("content-string", _ev(content="text"), "content"),
    ("content-block-number", _ev(content=[1]), "content"),
    ("content-block-string", _ev(content=["text"]), "content"),
    ("content-block-null", _ev(content=[{"type": "text", "text": "ok"}, None]), "content"),
    ("content-block-list", _ev(content=[[{"type": "text", "text": "ok"}]]), "content"),
    # a session_start that fails must not create its session (POST /events would)
    ("start-with-bad-block", {**START_NEW, "content": [1]}, "content"),
    ("start-with-bad-type", {**START_NEW, "exit_code": "x"}, "exit_code"),
    # U+0000 cannot be stored by PostgreSQL: refused alike on every backend
    ("nul-in-tool_output", _ev(tool_output="nul\u0000byte"), "tool_output"),
    ("nul-in-tool_input-key", _ev(tool_input={"key\u0000": "v"}), "tool_input"),
    ("nul-in-session_name", {**START_NEW, "session_name": "n\u0000ul"}, "session_name"),
]
BAD_INPUT: dict[str, list[Bad]] = {
    "POST /sessions": [
        *COMMON_BAD,
        ("missing-session_id", {"session_name": "N"}, "session_id"),
        ("missing-session_name", {"session_id": "new"}, "session_name"),
        ("null-session_id", {"session_id": None, "session_name": "N"}, "session_id"),
        ("empty-object", {}, "session_id"),
        ("empty-body", b"", "session_id"),
        ("session_id-number", {"session_id": 5, "session_name": "N"}, "session_id"),
        ("session_name-list", {"session_id": "new", "session_name": ["N"]}, "session_name"),
        ("project_dir-number", {"session_id": "new", "session_name": "N", "project_dir": 1}, "project_dir"),
        ("agent_name-object", {"session_id": "new", "session_name": "N", "agent_name": {}}, "agent_name"),
        ("nul-in-session_name", {"session_id": "new", "session_name": "n\u0000ul"}, "session_name"),
    ],
    "POST /sessions/s1/events": [*COMMON_BAD, *EVENT_BAD],
    "POST /events": [*COMMON_BAD, *EVENT_BAD],
    "PATCH /sessions/s1/metadata": [
        *COMMON_BAD,
        ("session_name-number", {"session_name": 5}, "session_name"),
        ("project_dir-object", {"project_dir": {}}, "project_dir"),
        ("agent_name-list", {"agent_name": ["a"]}, "agent_name"),
        ("nul-in-agent_name", {"agent_name": "a\u0000"}, "agent_name"),
    ],
}


@pytest.fixture
async def populated(server: Server) -> Server:
    """A session s1 with one event, a finished legacy session, and a ghost event."""
    await create(server.http, "s1", "S", project_dir="/p")
    await add(server.http, "s1", event("pre_tool", "s1", "2025-01-01T00:00:00Z", tool_input={"a": 1}))
    await legacy(server.http, event("session_start", "old", "2024-01-01T00:00:00Z"))
    await legacy(server.http, event("session_stop", "old", "2024-01-01T00:00:01Z"))
    await legacy(server.http, event("message", "ghost", "2024-01-01T00:00:02Z", role="user"))
    return server


@pytest.mark.parametrize("route", list(BAD_INPUT))
async def test_bad_input_is_400_and_writes_nothing(
    populated: Server, subtests: pytest.Subtests, route: str
) -> None:
    http = populated.http
    method, path = route.split(" ")
    for case, body, field in BAD_INPUT[route]:
        with subtests.test(case):
            before = await snapshot(http)
            resp = await http.request(method, path, content=encode(body), headers=JSON_HEADERS)
            detail = assert_error(resp, 400)
            if field is not None:
                assert field in detail, f"the message should name {field!r}: {detail!r}"
            assert await snapshot(http) == before
            assert await status_of(http, "new") == "not_existent"


async def test_event_session_id_must_match_the_path(populated: Server) -> None:
    http = populated.http
    before = await snapshot(http)
    resp = await http.post("/sessions/s1/events", json=_ev(session_id="old"))
    assert_error(resp, 400, "Event session_id must match URL session_id")
    assert await snapshot(http) == before


def _sized(path: str, size: int) -> bytes:
    """Valid JSON for `path` of exactly `size` bytes, padded in a string field."""
    if path == "/sessions":
        base: dict[str, Any] = {"session_id": "new", "session_name": ""}
        key = "session_name"
    elif path.endswith("/metadata"):
        base, key = {"agent_name": ""}, "agent_name"
    else:
        base, key = _ev(tool_output=""), "tool_output"
    pad = size - len(json.dumps(base).encode())
    raw = json.dumps({**base, key: "x" * pad}).encode()
    assert len(raw) == size
    return raw


async def _chunks(raw: bytes) -> AsyncIterator[bytes]:
    step = 1 << 20
    for i in range(0, len(raw), step):
        yield raw[i : i + step]


@pytest.mark.parametrize("route", list(BAD_INPUT))
async def test_body_over_the_limit_is_413(populated: Server, subtests: pytest.Subtests, route: str) -> None:
    http = populated.http
    method, path = route.split(" ")
    limit = populated.core.settings.max_body_bytes
    assert limit == 8 * 1024 * 1024
    raw = _sized(path, limit + 1)
    before = await snapshot(http)
    for how in ("content-length", "chunked"):
        with subtests.test(how):
            content: Any = _chunks(raw) if how == "chunked" else raw
            resp = await http.request(method, path, content=content, headers=JSON_HEADERS)
            assert_error(resp, 413)
            assert await snapshot(http) == before


async def test_body_at_the_limit_is_accepted(populated: Server) -> None:
    http = populated.http
    raw = _sized("/sessions/s1/events", populated.core.settings.max_body_bytes)
    resp = await http.post("/sessions/s1/events", content=raw, headers=JSON_HEADERS)
    assert ok_json(resp) == {"ok": True}
    assert len((await events(http, "s1"))[-1]["tool_output"]) > 8_000_000


UNKNOWN_FIELDS = [
    ("POST", "/sessions", {"session_id": "new", "session_name": "N", "color": "red", "status": "finished"}),
    ("PATCH", "/sessions/s1/metadata", {"agent_name": "a", "unknown": {"deep": [1]}}),
    ("POST", "/sessions/s1/events", _ev(extra=1, id=99, nested={"a": None})),
    ("POST", "/events", _ev(extra=1, id=99, nested={"a": None})),
]


async def test_unknown_fields_are_ignored(populated: Server, subtests: pytest.Subtests) -> None:
    http = populated.http
    for method, path, body in UNKNOWN_FIELDS:
        with subtests.test(f"{method} {path}"):
            assert (await http.request(method, path, json=body)).status_code == 200
    assert ok_json(await http.get("/sessions/new")) == {"session": session("new", "N")}
    assert ok_json(await http.get("/sessions/s1"))["session"]["agent_name"] == "a"
    got = await events(http, "s1")
    assert got[1:] == [stored(_ev()), stored(_ev())]
    assert all(e["id"] != 99 for e in got)


# ------------------------------------------------ values stored verbatim

VERBATIM_EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("long-timestamp", {"timestamp": "2025-01-01T00:00:00.000000000+00:00 " + "t" * 100}),
    ("long-event_type", {"event_type": "custom." + "e" * 200}),
    ("long-strings", {"tool_name": "n" * 5000, "reason": "r" * 5000}),
    ("unicode", {"error": "caf\u00e9 \u2603 \U0001f600"}),
    ("numbers", {"tool_output": {"f": 0.1, "e": 1e-300, "i": 3, "neg": -7}}),
    # Free-form JSON (tool_input, tool_output, content) travels as
    # google.protobuf.Struct/Value, whose numbers are doubles: integers are
    # exact up to 2^53 (documented in the README).
    ("integers-up-to-2^53", {"tool_input": {"big": 2**53 - 1, "small": -(2**53) + 1}}),
]


async def test_event_values_are_stored_verbatim(server: Server, subtests: pytest.Subtests) -> None:
    for i, (case, overrides) in enumerate(VERBATIM_EVENTS):
        with subtests.test(case):
            sid = f"v{i}"
            await create(server.http, sid)
            sent = {**event("post_tool", sid, "2025-01-01T00:00:00Z"), **overrides}
            resp = await server.http.post(f"/sessions/{sid}/events", json=sent)
            assert ok_json(resp) == {"ok": True}
            assert await events(server.http, sid) == [stored(sent)]


# Ids and agent names at their limit (256 UTF-8 bytes; tests/contract/test_limits.py).
VERBATIM_SESSIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("long-id", "s" * 256, {"session_name": "n"}),
    ("unicode-id", "id with spaces & \u00fcn\u00efc\u00f6d\u00e9", {"session_name": "n"}),
    ("long-values", "s-long", {"session_name": "x" * 5000, "agent_name": "a" * 256}),
]


async def test_session_values_are_stored_verbatim(server: Server, subtests: pytest.Subtests) -> None:
    for case, sid, fields in VERBATIM_SESSIONS:
        with subtests.test(case):
            resp = await server.http.post("/sessions", json={"session_id": sid, **fields})
            created = ok_json(resp)["session"]
            assert created == session(sid, fields["session_name"], agent_name=fields.get("agent_name"))
            path = "/sessions/" + quote(sid, safe="")
            assert ok_json(await server.http.get(path)) == {"session": created}
            await add(server.http, sid, event("pre_tool", sid, "2025-01-01T00:00:00Z"))
            assert len(ok_json(await server.http.get(path + "/events"))["events"]) == 1
