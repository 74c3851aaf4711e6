"""`/v1/log:watch` served in process renders each NDJSON line from the stored
row (service.api.log_render); it must write what the generic path writes
(the WatchLog message through the native family's encoder) for the same
entry. Key order inside `data` is the one thing allowed to differ (a
Struct's map has none), so lines are compared with keys sorted, which still
tells `1` from `1.0`; entries whose objects have one key are compared as
raw bytes."""

from __future__ import annotations

import httpx
import orjson
from agentplane.v1 import log_pb2, log_pb2_grpc

from service.codec import encoder
from tests.conftest import Server

GENERIC = encoder(log_pb2.WatchLogResponse.DESCRIPTOR, True, False)

PAYLOADS = [
    {"n": 1},
    {"f": 2.0},
    {"x": 1.5},
    {"big": 2**60},
    {"edge": 2**53 - 1},
    {"neg": -(2**53) - 5},
    {"tiny": 1e-7},
    {"exp": 1e21},
    {"s": "time 10:30.5, [1.5] and :12345678901234567"},
    {"u": 'héllo \u2028 \U0001f600 "quoted" \\ back'},
    {"list": [1, 2.0, 2.5, [3.0, {"deep": 4.0}], None, True, "x"]},
    {"nested": {"a": {"b": {"c": 1.0}}}},
    {"a": 1, "b": 2.5, "c": {"z": 1, "y": [1.0, 2]}, "d": None, "e": False},
    {},
]


async def _write(server: Server) -> None:
    http = server.http
    resp = await http.post("/sessions", json={"session_id": "r", "session_name": "Render"})
    assert resp.status_code in (200, 201), resp.text
    for i, payload in enumerate(PAYLOADS):
        body = {
            "event_type": "post_tool",
            "session_id": "r",
            "session_name": "Render",
            "timestamp": f"2026-01-01T00:00:{i:02d}.5Z",
            "tool_name": "Read",
            "tool_input": payload,
        }
        resp = await http.post("/sessions/r/events", json=body)
        assert resp.status_code in (200, 201), resp.text
    # The same payloads as whole entries' data (how every family appends).
    for payload in PAYLOADS:
        await server.core.store.write(lambda tx, p=payload: tx.append("test.render", "default", p))


async def _fast_lines(http: httpx.AsyncClient) -> list[bytes]:
    resp = await http.get("/v1/log:watch", params={"after_seq": 0, "stop_at_end": "true"})
    assert resp.status_code == 200
    return resp.content.splitlines(keepends=True)


async def _generic_lines(server: Server) -> list[bytes]:
    async with server.channel() as channel:
        stub = log_pb2_grpc.LogServiceStub(channel)
        request = log_pb2.WatchLogRequest(after_seq=0, stop_at_end=True)
        return [
            orjson.dumps({"result": GENERIC(m)}, option=orjson.OPT_APPEND_NEWLINE)
            async for m in stub.WatchLog(request)
        ]


def _sorted(line: bytes) -> bytes:
    return orjson.dumps(orjson.loads(line), option=orjson.OPT_SORT_KEYS)


def _one_key_objects(value: object) -> bool:
    if isinstance(value, dict):
        return len(value) <= 1 and all(_one_key_objects(v) for v in value.values())
    if isinstance(value, list):
        return all(_one_key_objects(v) for v in value)
    return True


async def test_fast_lines_are_what_the_generic_path_writes(server: Server) -> None:
    await _write(server)
    fast, generic = await _fast_lines(server.http), await _generic_lines(server)
    # session.created, the events, then the appended entries
    assert len(fast) == len(generic) == 1 + 2 * len(PAYLOADS)
    raw_compared = 0
    for f, g in zip(fast, generic, strict=True):
        assert _sorted(f) == _sorted(g), (f, g)
        data = orjson.loads(g)["result"]["entry"]["data"]
        if _one_key_objects(data):
            assert f == g
            raw_compared += 1
    assert raw_compared >= 10
    # The Struct's number rules, visible on the wire.
    appended = [orjson.loads(line)["result"]["entry"]["data"] for line in fast[1 + len(PAYLOADS) :]]
    assert appended[1] == {"f": 2} and isinstance(appended[1]["f"], int)
    assert isinstance(appended[3]["big"], float) and isinstance(appended[4]["edge"], int)
    assert appended[-1] is None
