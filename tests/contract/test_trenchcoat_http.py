"""Seed 002 (Trenchcoat events API) over HTTP, against the real app.

The seed's request and error examples first, then the batch limits, every
validation error shape (all offending fields listed, the whole batch
refused), the plugin's input shape (reference §1.2), what a batch does to
the shared session (reference §4), and bad bodies: each refused input is
checked to write nothing.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, select

from service.store.tables import log_entries, sessions
from tests.conftest import Server

SID = "550e8400-e29b-41d4-a716-446655440000"
OTHER_SID = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
SEED_KEY = {"X-API-Key": "ct_live_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6"}
# The seed's curl example.
SEED_REQUEST = {
    "events": [
        {"event_type": "session_start", "session_id": SID, "timestamp": "2024-01-15T10:30:00Z", "data": {}},
        {
            "event_type": "tool_use",
            "session_id": SID,
            "timestamp": "2024-01-15T10:30:15Z",
            "data": {"tool_name": "Read", "tool_input_preview": "/src/components/dashboard/Sidebar.tsx"},
        },
    ]
}
# The seed's "Request Body" example.
SEED_BODY = {
    "events": [
        {
            "event_type": "tool_use",
            "session_id": SID,
            "timestamp": "2024-01-15T10:30:00Z",
            "data": {"tool_name": "Read", "tool_input_preview": "/src/components/dashboard/Sidebar.tsx"},
        }
    ]
}
ENUM_MESSAGE = (
    "Invalid enum value. Expected one of: session_start, session_end, tool_use, tool_result, "
    "subagent_stop, assistant_stop"
)
DATETIME_MESSAGE = "Invalid datetime: expected ISO 8601 with a UTC offset or Z"
BATCH_TOO_LARGE = {
    "error": {"code": "VALIDATION_ERROR", "message": "Batch size exceeds limit of 1000 events per request."}
}
ACTIVITY = (
    "session_id",
    "session_name",
    "status",
    "created_at",
    "project_dir",
    "agent_name",
    "last_resumed_at",
    "started_at",
    "ended_at",
    "duration_ms",
    "event_count",
    "tool_count",
    "input_tokens",
    "output_tokens",
    "cache_creation_tokens",
    "cache_read_tokens",
    "model",
    "stop_reason",
)

# ---------------------------------------------------------------- helpers


def ev(
    kind: str = "tool_use", ts: str = "2024-01-15T10:30:00Z", sid: str = SID, **data: Any
) -> dict[str, Any]:
    return {"event_type": kind, "session_id": sid, "timestamp": ts, "data": data}


async def ingest(http: httpx.AsyncClient, body: Any, **kwargs: Any) -> httpx.Response:
    if isinstance(body, bytes):
        return await http.post("/api/v1/events", content=body, headers={**SEED_KEY, **kwargs})
    return await http.post("/api/v1/events", json=body, headers={**SEED_KEY, **kwargs})


def accepted(resp: httpx.Response, n: int) -> None:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json() == {"data": {"accepted": n, "rejected": 0}}


def validation_error(resp: httpx.Response, details: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """A 400 VALIDATION_ERROR; with `details`, exactly the seed's body with them."""
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["code"] == "VALIDATION_ERROR", body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if details is not None:
        assert body == {
            "error": {
                "code": "VALIDATION_ERROR",
                "message": "Request body is invalid.",
                "details": [{"field": f, "message": m} for f, m in details],
            }
        }
    return dict(body["error"])


def _rows(conn: Connection) -> dict[str, Any]:
    session_rows = conn.execute(select(sessions).order_by(sessions.c.workspace, sessions.c.session_id))
    log_rows = conn.execute(select(log_entries).order_by(log_entries.c.seq))
    return {
        "sessions": [dict(r._mapping) for r in session_rows],
        "log": [(r.seq, r.type, r.session_id, r.data) for r in log_rows],
    }


async def state(server: Server) -> dict[str, Any]:
    """Everything the server holds: every session row (activity included) and the whole log."""
    return await server.core.store.read(_rows)


async def activity(server: Server, session_id: str = SID) -> dict[str, Any]:
    rows = [r for r in (await state(server))["sessions"] if r["session_id"] == session_id]
    assert len(rows) == 1, rows
    return {k: rows[0][k] for k in ACTIVITY}


def session_view(session_id: str, created_at: str, **extra: Any) -> dict[str, Any]:
    """A Trenchcoat-made session as GET /sessions shows it."""
    return {
        "session_id": session_id,
        "session_name": "",
        "status": "running",
        "created_at": created_at,
        "project_dir": None,
        "agent_name": None,
        "last_resumed_at": None,
        **extra,
    }


def trenchcoat_entries(log: list[tuple[Any, ...]]) -> list[Any]:
    return [data for _, kind, _, data in log if kind == "trenchcoat.event"]


# ------------------------------------------------------------ seed examples


async def test_seed_request_example(server: Server) -> None:
    accepted(await ingest(server.http, SEED_REQUEST), 2)
    listed = (await server.http.get("/sessions")).json()
    assert listed == {"sessions": [session_view(SID, "2024-01-15T10:30:00Z")]}
    held = await state(server)
    assert [kind for _, kind, _, _ in held["log"]] == [
        "session.created",
        "trenchcoat.event",
        "trenchcoat.event",
    ]
    assert trenchcoat_entries(held["log"]) == [
        {
            "event_type": "session_start",
            "session_id": SID,
            "timestamp": "2024-01-15T10:30:00Z",
            "seq": 0,
            "data": {},
        },
        {
            "event_type": "tool_use",
            "session_id": SID,
            "timestamp": "2024-01-15T10:30:15Z",
            "seq": 0,
            "data": {"tool_name": "Read", "tool_input_preview": "/src/components/dashboard/Sidebar.tsx"},
        },
    ]
    assert await activity(server) == {
        **session_view(SID, "2024-01-15T10:30:00Z"),
        "started_at": "2024-01-15T10:30:00.000000Z",
        "ended_at": "2024-01-15T10:30:15.000000Z",
        "duration_ms": 15000,
        "event_count": 2,
        "tool_count": 1,
        "input_tokens": None,
        "output_tokens": None,
        "cache_creation_tokens": None,
        "cache_read_tokens": None,
        "model": None,
        "stop_reason": None,
    }


async def test_seed_body_example_creates_the_session_without_session_start(server: Server) -> None:
    accepted(await ingest(server.http, SEED_BODY), 1)
    assert (await server.http.get(f"/sessions/{SID}")).json() == {
        "session": session_view(SID, "2024-01-15T10:30:00Z")
    }
    row = await activity(server)
    # one event: no positive duration (upstream stores null)
    assert (row["event_count"], row["tool_count"], row["duration_ms"]) == (1, 1, None)


async def test_seed_validation_error_example(server: Server) -> None:
    before = await state(server)
    body = {"events": [ev(sid="not-a-uuid"), ev(), ev(kind="page_view")]}
    validation_error(
        await ingest(server.http, body),
        [("events[0].session_id", "Invalid UUID format"), ("events[2].event_type", ENUM_MESSAGE)],
    )
    assert await state(server) == before


async def test_batch_limits(server: Server) -> None:
    before = await state(server)
    too_many = {"events": [ev(ts=f"2024-01-15T10:30:00.{i:04d}Z") for i in range(1001)]}
    resp = await ingest(server.http, too_many)
    assert resp.status_code == 400 and resp.json() == BATCH_TOO_LARGE
    assert await state(server) == before
    validation_error(
        await ingest(server.http, {"events": []}), [("events", "Array must contain at least 1 element(s)")]
    )
    validation_error(await ingest(server.http, {}), [("events", "Array must contain at least 1 element(s)")])
    assert await state(server) == before

    accepted(await ingest(server.http, {"events": too_many["events"][:1000]}), 1000)
    held = await state(server)
    assert len(trenchcoat_entries(held["log"])) == 1000
    assert (await activity(server))["event_count"] == 1000


# ------------------------------------------------------------ validation

# (events, the expected details): every offending field, in order.
INVALID_BATCHES: list[tuple[str, list[dict[str, Any]], list[tuple[str, str]]]] = [
    (
        "missing event_type",
        [{"session_id": SID, "timestamp": "2024-01-15T10:30:00Z"}],
        [("events[0].event_type", "Required")],
    ),
    ("empty event_type", [{**ev(), "event_type": ""}], [("events[0].event_type", "Required")]),
    (
        "missing session_id",
        [{"event_type": "tool_use", "timestamp": "2024-01-15T10:30:00Z"}],
        [("events[0].session_id", "Required")],
    ),
    (
        "missing timestamp",
        [{"event_type": "tool_use", "session_id": SID}],
        [("events[0].timestamp", "Required")],
    ),
    ("no offset", [ev(ts="2024-01-15T10:30:00")], [("events[0].timestamp", DATETIME_MESSAGE)]),
    ("date only", [ev(ts="2024-01-15")], [("events[0].timestamp", DATETIME_MESSAGE)]),
    ("not a date", [ev(ts="yesterday")], [("events[0].timestamp", DATETIME_MESSAGE)]),
    (
        "uuid without dashes",
        [ev(sid="550e8400e29b41d4a716446655440000")],
        [("events[0].session_id", "Invalid UUID format")],
    ),
    (
        "everything wrong in one item",
        [{"event_type": "nope", "session_id": "x", "timestamp": "later"}],
        [
            ("events[0].event_type", ENUM_MESSAGE),
            ("events[0].session_id", "Invalid UUID format"),
            ("events[0].timestamp", DATETIME_MESSAGE),
        ],
    ),
    (
        "bad items among good ones",
        [ev(), {"event_type": "tool_use"}, ev(), ev(kind="stop")],
        [
            ("events[1].session_id", "Required"),
            ("events[1].timestamp", "Required"),
            ("events[3].event_type", ENUM_MESSAGE),
        ],
    ),
    # the plugin's names are reported as the item used them
    (
        "plugin shape",
        [{"event": "stop", "session_id": "local-1", "ts": "2024-01-15 10:30:00", "seq": -1}],
        [
            ("events[0].event", ENUM_MESSAGE),
            ("events[0].ts", DATETIME_MESSAGE),
            ("events[0].seq", "Number must be greater than or equal to 0"),
        ],
    ),
    (
        "plugin shape, empty session",
        [{"event": "tool_use", "session_id": "", "ts": "2024-01-15T10:30:00Z"}],
        [("events[0].session_id", "Required")],
    ),
    (
        "U+0000 in data",
        [ev(), ev(tool_name="Re\x00ad")],
        [("events[1].data.tool_name", "must not contain the character U+0000")],
    ),
    (
        "U+0000 in a plugin session id",
        [{"event": "tool_use", "session_id": "a\x00b", "ts": "2024-01-15T10:30:00Z"}],
        [("events[0].session_id", "must not contain the character U+0000")],
    ),
]


@pytest.mark.parametrize(
    ("events", "details"), [(e, d) for _, e, d in INVALID_BATCHES], ids=[n for n, _, _ in INVALID_BATCHES]
)
async def test_an_invalid_event_refuses_the_whole_batch(
    server: Server, events: list[dict[str, Any]], details: list[tuple[str, str]]
) -> None:
    accepted(await ingest(server.http, {"events": [ev(ts="2024-01-15T09:00:00Z")]}), 1)
    before = await state(server)
    validation_error(await ingest(server.http, {"events": events}), details)
    assert await state(server) == before


# Bodies the JSON decoder refuses before validation: 400 VALIDATION_ERROR.
UNREADABLE = [
    ("malformed JSON", b'{"events": ['),
    ("a list, not an object", b"[]"),
    ("a string", b'"events"'),
    ("events not a list", b'{"events": {"event_type": "tool_use"}}'),
]


async def test_unreadable_bodies_are_400_and_write_nothing(server: Server, subtests: pytest.Subtests) -> None:
    before = await state(server)
    for name, raw in UNREADABLE:
        with subtests.test(name):
            error = validation_error(await ingest(server.http, raw, **{"Content-Type": "application/json"}))
            assert "details" not in error or error["details"]
            assert await state(server) == before


# Values of the wrong type: every one is named in `details`, as validation names the others.
TYPE_ERRORS = [
    ("data not an object", [ev() | {"data": 5}], [("events[0].data", "expected a JSON object, got 5")]),
    (
        "in several items",
        [ev(), ev() | {"session_id": 5, "data": []}, ev(), ev() | {"timestamp": True}],
        [
            ("events[1].session_id", "expected a string, got 5"),
            ("events[1].data", "expected a JSON object, got []"),
            ("events[3].timestamp", "expected a string, got True"),
        ],
    ),
    (
        "seq not an integer",
        [{"event": "tool_use", "session_id": "s", "ts": "2024-01-15T10:30:00Z", "seq": "x"}],
        [("events[0].seq", "expected an integer, got 'x'")],
    ),
    ("an item not an object", ["tool_use", ev()], [("events[0]", "expected a JSON object, got 'tool_use'")]),
    # with missing fields, a bad enum and a bad date beside them: one answer names all
    (
        "with the other kinds of errors",
        [
            ev() | {"data": 5, "event_type": "nope"},
            {"event_type": "tool_use", "timestamp": 7},
            ev(ts="yesterday"),
            "tool_use",
        ],
        [
            ("events[0].data", "expected a JSON object, got 5"),
            ("events[0].event_type", ENUM_MESSAGE),
            ("events[1].timestamp", "expected a string, got 7"),
            ("events[1].session_id", "Required"),
            ("events[2].timestamp", DATETIME_MESSAGE),
            ("events[3]", "expected a JSON object, got 'tool_use'"),
        ],
    ),
    (
        "events not a list",
        {"event_type": "tool_use"},
        [("events", "expected a JSON array, got {'event_type': 'tool_use'}")],
    ),
]


@pytest.mark.parametrize(
    ("events", "details"), [(e, d) for _, e, d in TYPE_ERRORS], ids=[n for n, _, _ in TYPE_ERRORS]
)
async def test_values_of_the_wrong_type_are_all_named(
    server: Server, events: Any, details: list[tuple[str, str]]
) -> None:
    before = await state(server)
    validation_error(await ingest(server.http, {"events": events}), details)
    assert await state(server) == before


async def test_a_body_over_the_limit_is_413(server: Server) -> None:
    limit = server.core.settings.max_body_bytes
    before = await state(server)
    raw = json.dumps({"events": [ev(pad="x" * limit)]}).encode()
    resp = await ingest(server.http, raw)
    assert resp.status_code == 413
    assert resp.json() == {
        "error": {"code": "PAYLOAD_TOO_LARGE", "message": f"request body is larger than {limit} bytes"}
    }
    assert await state(server) == before


async def test_wrong_method_is_405_in_the_family_format(server: Server) -> None:
    resp = await server.http.get("/api/v1/events")
    assert resp.status_code == 405
    assert resp.json() == {
        "error": {"code": "METHOD_NOT_ALLOWED", "message": "GET is not allowed on /api/v1/events"}
    }


# ------------------------------------------------------------ upstream input

PLUGIN_TYPES = ["prompt_submit", "pre_compact", "error", "subagent_start", "skill_use"]


async def test_plugin_shape_and_extra_types_are_accepted(server: Server) -> None:
    events = [
        {
            "event": kind,
            "session_id": "local-session",
            "ts": f"2024-01-15T10:30:0{i}+02:00",
            "seq": i,
            "data": {},
        }
        for i, kind in enumerate(PLUGIN_TYPES)
    ]
    # unknown keys are ignored, as upstream's zod strips them
    events.append({**ev(kind="skill_use", sid=OTHER_SID), "extra": {"x": 1}, "requestId": "r"})
    accepted(await ingest(server.http, {"events": events}), 6)
    held = await state(server)
    assert trenchcoat_entries(held["log"]) == [
        {
            "event_type": kind,
            "session_id": "local-session",
            "timestamp": f"2024-01-15T10:30:0{i}+02:00",
            "seq": i,
            "data": {},
        }
        for i, kind in enumerate(PLUGIN_TYPES)
    ] + [
        {
            "event_type": "skill_use",
            "session_id": OTHER_SID,
            "timestamp": "2024-01-15T10:30:00Z",
            "seq": 0,
            "data": {},
        }
    ]
    row = await activity(server, "local-session")
    assert (row["started_at"], row["ended_at"], row["duration_ms"]) == (
        "2024-01-15T08:30:00.000000Z",
        "2024-01-15T08:30:04.000000Z",
        4000,
    )


# ------------------------------------------------------------ sessions


async def test_batches_update_the_session_as_upstream(server: Server) -> None:
    first = [
        ev("session_start", "2024-01-15T10:30:00Z", model="claude-opus", cwd="/src/app"),
        ev("tool_use", "2024-01-15T10:30:05Z", tool_name="Read"),
        ev("tool_result", "2024-01-15T10:30:06Z", tool_name="Read", is_error=False),
        ev(
            "assistant_stop",
            "2024-01-15T10:30:09Z",
            input_tokens=100,
            output_tokens=20,
            model="claude-opus",
            reason="end_turn",
            cache_creation_tokens=7,
            cache_read_tokens=8,
        ),
        ev("assistant_stop", "2024-01-15T10:30:10Z", input_tokens=120, output_tokens=None, model=5),
    ]
    accepted(await ingest(server.http, {"events": first}), 5)
    after_first = {
        **session_view(SID, "2024-01-15T10:30:00Z", project_dir="/src/app"),
        "started_at": "2024-01-15T10:30:00.000000Z",
        "ended_at": "2024-01-15T10:30:10.000000Z",
        "duration_ms": 10000,
        "event_count": 5,
        "tool_count": 2,
        # the last assistant_stop wins, field by field; nulls and wrong types are skipped
        "input_tokens": 120,
        "output_tokens": 20,
        "cache_creation_tokens": 7,
        "cache_read_tokens": 8,
        "model": "claude-opus",
        "stop_reason": "end_turn",
    }
    assert await activity(server) == after_first

    second = [
        ev("tool_use", "2024-01-15T10:29:00Z"),  # earlier than anything seen: moves started_at
        ev(
            "assistant_stop",
            "2024-01-15T10:31:00Z",
            input_tokens=5,
            output_tokens=6,
            model="claude-haiku",
            reason="max_tokens",
        ),
        ev("session_end", "2024-01-15T10:32:00Z", duration_ms=1),
    ]
    accepted(await ingest(server.http, {"events": second}), 3)
    assert await activity(server) == {
        **after_first,
        "status": "finished",
        "started_at": "2024-01-15T10:29:00.000000Z",
        "ended_at": "2024-01-15T10:32:00.000000Z",
        "duration_ms": 180000,
        "event_count": 8,
        "tool_count": 3,
        "input_tokens": 5,
        "output_tokens": 6,
        "model": "claude-haiku",
        "stop_reason": "max_tokens",
    }
    # the runtime family sees the same session, finished
    assert (await server.http.get(f"/sessions/{SID}/status")).json() == {"status": "finished"}
    # a new session_start resumes it
    accepted(await ingest(server.http, {"events": [ev("session_start", "2024-01-15T11:00:00Z")]}), 1)
    assert (await server.http.get(f"/sessions/{SID}/status")).json() == {"status": "running"}


async def test_one_batch_many_sessions(server: Server) -> None:
    events = [
        ev(sid=SID),
        ev(sid=OTHER_SID, ts="2024-01-15T10:31:00Z"),
        ev("tool_result", sid=SID, ts="2024-01-15T10:30:01Z"),
    ]
    accepted(await ingest(server.http, {"events": events}), 3)
    listed = (await server.http.get("/sessions")).json()["sessions"]
    assert [s["session_id"] for s in listed] == [OTHER_SID, SID]  # newest created_at first
    assert (
        (await activity(server, SID))["event_count"],
        (await activity(server, OTHER_SID))["event_count"],
    ) == (2, 1)


async def test_events_update_a_session_another_family_created(server: Server) -> None:
    created = (await server.http.post("/sessions", json={"session_id": SID, "session_name": "Mine"})).json()
    accepted(
        await ingest(
            server.http,
            {"events": [ev("session_start", cwd="/w"), ev("session_end", "2024-01-15T10:40:00Z")]},
        ),
        2,
    )
    view = (await server.http.get(f"/sessions/{SID}")).json()["session"]
    # its name and creation time stay; the unset project_dir is filled; it is finished
    assert view == {**created["session"], "project_dir": "/w", "status": "finished"}
    row = await activity(server)
    assert (row["event_count"], row["started_at"], row["ended_at"]) == (
        2,
        "2024-01-15T10:30:00.000000Z",
        "2024-01-15T10:40:00.000000Z",
    )
    kinds = [kind for _, kind, _, _ in (await state(server))["log"]]
    assert kinds == ["session.created", "session.updated", "trenchcoat.event", "trenchcoat.event"]


async def test_the_log_stream_carries_the_events(server: Server) -> None:
    accepted(await ingest(server.http, SEED_BODY), 1)
    resp = await server.http.get(
        "/v1/log:watch", params={"after_seq": "0", "stop_at_end": "true", "types": "trenchcoat.event"}
    )
    lines = [json.loads(line)["result"]["entry"] for line in resp.text.splitlines()]
    assert [(e["type"], e["session_id"], e["occurred_at"], e["workspace"]) for e in lines] == [
        ("trenchcoat.event", SID, "2024-01-15T10:30:00Z", "default")
    ]
    assert lines[0]["data"] == {**SEED_BODY["events"][0], "seq": 0}


async def test_openapi_documents_the_route_in_the_family_format(server: Server) -> None:
    doc = (await server.http.get("/openapi.json")).json()
    post = doc["paths"]["/api/v1/events"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/agentplane.v1.IngestTrenchcoatEventsRequest"
    }
    assert post["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "object",
        "properties": {"data": {"$ref": "#/components/schemas/agentplane.v1.IngestTrenchcoatEventsResponse"}},
        "required": ["data"],
    }
    error = post["responses"]["default"]["content"]["application/json"]["schema"]
    assert error["required"] == ["error"]
    assert error["properties"]["error"]["properties"]["details"]["items"]["required"] == ["field", "message"]
