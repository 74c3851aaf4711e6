"""Limits are explicit and the same on every backend (issue 14, item 3).

The walkers go through every route of the bindings, on SQLite and on
PostgreSQL, one server each: U+0000 in any path or query parameter, an
over-long id in any bounded field, a missing body, and values the database
could refuse (long unbounded text, extreme integers) are each a 4xx in the
route family's error body, never a 5xx, and write nothing. gRPC calls get
INVALID_ARGUMENT with the offending field named. The bounds are in the
protos, and so in OpenAPI.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

import grpc
import httpx
import pytest
from agentplane.v1 import (
    executions_pb2,
    executions_pb2_grpc,
    runtime_pb2,
    runtime_pb2_grpc,
    tracer_pb2,
    tracer_pb2_grpc,
)
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway.app import routes
from gateway.families import Family
from gateway.httprule import Binding, query_fields
from gateway.input_checks import needs_body, refuses_empty_body
from service.base.errors import FieldViolation, InvalidArgument
from service.rpc.limits import max_bytes, max_items
from service.rpc.status import from_domain
from service.store import log
from tests.conftest import Server
from tests.grpc.test_runtime_grpc import failure

ID_LIMIT = 256
# Every id and key field of a request is bounded (see the proto options).
BOUNDED_AT_LEAST = 100


async def agent_identity(server: Server) -> dict[str, str]:
    """A running session to name as the caller: AGH agent routes resolve the
    caller before they read anything else (401 without one), so the limits
    are reached only with a valid identity; other families ignore the headers."""
    await server.http.post(
        "/sessions", json={"session_id": "limits-w", "session_name": "w", "agent_name": "coder"}
    )
    return {"X-AGH-Session-ID": "limits-w", "X-AGH-Agent": "coder"}


def invalid_status(family: Family) -> int:
    """The HTTP status the family gives a request that failed validation."""
    err = InvalidArgument("x", violations=[FieldViolation("f", "bad")])
    return family.error(from_domain(err))[0]


def error_keys(family: Family) -> set[str]:
    """The top-level keys of the family's error body."""
    err = InvalidArgument("x", violations=[FieldViolation("f", "bad")])
    return set(family.error(from_domain(err))[1])


def assert_refused(resp: httpx.Response, family: Family, what: str) -> None:
    assert resp.status_code == invalid_status(family), f"{what}: {resp.status_code} {resp.text[:300]}"
    assert set(resp.json()) == error_keys(family), f"{what}: {resp.text[:300]}"


def fill(route_path: str, values: dict[str, str] | None = None) -> str:
    """The route path with each variable replaced (by `values`, else "x")."""
    out = route_path
    for name in _variables(route_path):
        value = quote((values or {}).get(name, "x"), safe="")
        out = out.replace(f"{{{name}:path}}", value).replace(f"{{{name}}}", value)
    return out


def _variables(route_path: str) -> list[str]:
    import re

    return [m.group(1) for m in re.finditer(r"\{([a-zA-Z0-9_]+)(?::path)?\}", route_path)]


async def head(server: Server) -> int:
    return await server.core.store.read(log.head)


def served(server: Server) -> list[tuple[Binding, Family]]:
    return [(b, f) for b, f in routes() if b.path in server.core.dispatcher.methods]


def bounded_fields(
    md: Descriptor, seen: frozenset[str] = frozenset()
) -> list[tuple[list[Any], FieldDescriptor]]:
    """(JSON path, field) of every bounded string in `md`, nested ones too (a
    repeated message is given one element)."""
    found: list[tuple[list[Any], FieldDescriptor]] = []
    for fd in md.fields:
        if fd.type == FieldDescriptor.TYPE_STRING and max_bytes(fd):
            found.append(([fd.name, 0] if fd.is_repeated else [fd.name], fd))
        elif fd.message_type is not None and not fd.message_type.GetOptions().map_entry:
            sub = fd.message_type
            if sub.full_name in seen or sub.full_name.startswith("google.protobuf."):
                continue
            for path, leaf in bounded_fields(sub, seen | {md.full_name}):
                found.append(([fd.name, 0, *path] if fd.is_repeated else [fd.name, *path], leaf))
    return found


def nested(path: list[Any], value: Any) -> Any:
    """The JSON holding `value` at `path` (names and list indexes)."""
    for step in reversed(path):
        value = [value] if isinstance(step, int) else {step: value}
    return value


def placed(b: Binding, path: list[Any], value: Any) -> tuple[str, dict[str, Any], Any] | None:
    """(URL path, query, body) of a request carrying `value` at the request
    field `path`; None if the binding cannot carry it (a list in a query)."""
    top = path[0]
    for param, field in b.path_fields:
        if field == top and len(path) == 1:
            return fill(b.route_path, {param: str(value)}), {}, ({} if b.body else None)
    if b.body == "*":
        return fill(b.route_path), {}, nested(path, value)
    if b.body and b.body == top:
        return fill(b.route_path), {}, nested(path[1:], value) if len(path) > 1 else value
    if any(isinstance(step, int) for step in path[:-1]):
        return None
    key = ".".join(step for step in path if isinstance(step, str))
    return fill(b.route_path), {key: str(value)}, ({} if b.body else None)


# ---------------------------------------------------------------- NUL


async def test_nul_in_any_path_or_query_parameter_is_refused_on_every_route(
    server: Server, subtests: pytest.Subtests
) -> None:
    headers = await agent_identity(server)
    before = await head(server)
    table = served(server)
    assert len(table) >= 60
    tried = 0
    for b, family in table:
        params = [(p, "") for p in _variables(b.route_path)]
        if b.body != "*":
            bound = {f.split(".")[0] for _, f in b.path_fields} | {b.body}
            params += [
                ("", key)
                for key, (path, _) in sorted(query_fields(b.input.DESCRIPTOR).items())
                if key == path and path.split(".")[0] not in bound
            ]
        for param, key in params:
            tried += 1
            what = f"{b.verb} {b.template} {param or '?' + key}"
            with subtests.test(what):
                url = fill(b.route_path, {param: "a\x00b"}) if param else fill(b.route_path)
                resp = await server.http.request(
                    b.verb,
                    url,
                    params={key: "a\x00b"} if key else None,
                    json={} if b.body else None,
                    headers=headers,
                )
                assert_refused(resp, family, what)
                assert "U+0000" in resp.text
    assert tried >= 80
    assert await head(server) == before


async def test_nul_in_a_body_string_is_refused_on_every_route_with_a_body(
    server: Server, subtests: pytest.Subtests
) -> None:
    headers = await agent_identity(server)
    before = await head(server)
    for b, family in served(server):
        if b.body != "*":
            continue
        bound = {f for _, f in b.path_fields}
        body = {
            fd.name: ["a\x00b"] if fd.is_repeated else "a\x00b"
            for fd in b.input.DESCRIPTOR.fields
            if fd.type == FieldDescriptor.TYPE_STRING and fd.name not in bound
        }
        if not body:
            continue
        with subtests.test(f"{b.verb} {b.template}"):
            resp = await server.http.request(b.verb, fill(b.route_path), json=body, headers=headers)
            assert_refused(resp, family, b.template)
    assert await head(server) == before


# ---------------------------------------------------------------- ids


def test_every_id_and_key_field_of_a_request_is_bounded() -> None:
    """The bounds live in the protos; a request id field without one would be
    unbounded on SQLite and 500 on PostgreSQL past the index-row limit."""
    bounded = {
        (md.full_name, fd.name)
        for b, _ in routes()
        for md in [b.input.DESCRIPTOR]
        for _, fd in bounded_fields(md)
    }
    assert len(bounded) >= BOUNDED_AT_LEAST
    unbounded = []
    for b, _ in routes():
        for fd in b.input.DESCRIPTOR.fields:
            if fd.type == FieldDescriptor.TYPE_STRING and (
                fd.name.endswith("_id") or fd.name.endswith("_key") or fd.name in ("id", "channel")
            ):
                if not max_bytes(fd):
                    unbounded.append(f"{b.input.DESCRIPTOR.full_name}.{fd.name}")
                else:
                    assert max_bytes(fd) == ID_LIMIT
    assert unbounded == []


async def test_an_over_long_id_is_refused_naming_the_field_on_every_route(
    server: Server, subtests: pytest.Subtests
) -> None:
    headers = await agent_identity(server)
    before = await head(server)
    tried = 0
    for b, family in served(server):
        for path, fd in bounded_fields(b.input.DESCRIPTOR):
            where = placed(b, path, "i" * (max_bytes(fd) + 1))
            assert where is not None, (b.template, path)
            url, query, body = where
            tried += 1
            what = f"{b.verb} {b.template} {'.'.join(map(str, path))}"
            with subtests.test(what):
                resp = await server.http.request(b.verb, url, params=query, json=body, headers=headers)
                assert_refused(resp, family, what)
                camel = "".join(p.title() if i else p for i, p in enumerate(fd.name.split("_")))
                assert fd.name in resp.text or camel in resp.text, what
                assert f"at most {max_bytes(fd)} bytes" in resp.text, what
    assert tried >= 150
    assert await head(server) == before


async def test_the_limit_counts_utf8_bytes(server: Server) -> None:
    ok = "s" * ID_LIMIT
    resp = await server.http.post("/sessions", json={"session_id": ok, "session_name": "n"})
    assert resp.status_code == 200, resp.text
    # 86 euro signs are 86 characters but 258 bytes.
    before = await head(server)
    resp = await server.http.post("/sessions", json={"session_id": "€" * 86, "session_name": "n"})
    assert resp.status_code == 400
    assert resp.json() == {"detail": "session_id: must be at most 256 bytes (UTF-8)"}
    resp = await server.http.get(f"/sessions/{'s' * 300}")
    assert resp.status_code == 400
    assert await head(server) == before
    listed = (await server.http.get("/sessions")).json()
    assert [s["session_id"] for s in listed["sessions"]] == [ok]


# ---------------------------------------------------------------- gRPC


async def test_grpc_refuses_long_ids_and_nul_with_field_violations(server: Server) -> None:
    before = await head(server)
    async with server.channel() as ch:
        sessions = runtime_pb2_grpc.SessionServiceStub(ch)
        f = await failure(
            sessions.CreateSession(runtime_pb2.CreateSessionRequest(session_id="x" * 257, session_name="n"))
        )
        assert f.code == grpc.StatusCode.INVALID_ARGUMENT
        assert f.info is not None and f.info.reason == "FIELD_TOO_LONG"
        assert f.violations == [("session_id", "must be at most 256 bytes (UTF-8)")]

        f = await failure(sessions.GetSession(runtime_pb2.GetSessionRequest(session_id="a\x00b")))
        assert f.code == grpc.StatusCode.INVALID_ARGUMENT
        assert f.info is not None and f.info.reason == "INVALID_ARGUMENT"
        assert f.violations == [("session_id", "must not contain the character U+0000")]

        ingest = tracer_pb2_grpc.TracerIngestServiceStub(ch)
        events = [
            tracer_pb2.TracerEventInput(kind="user.message", task_id="t", session_id="s") for _ in range(3)
        ]
        events[1].session_id = "s" * 300
        events[2].title = "a\x00b"
        f = await failure(ingest.IngestEvents(tracer_pb2.IngestEventsRequest(events=events)))
        assert f.code == grpc.StatusCode.INVALID_ARGUMENT
        assert f.violations == [
            ("events[1].session_id", "must be at most 256 bytes (UTF-8)"),
            ("events[2].title", "must not contain the character U+0000"),
        ]

        # A bidirectional stream: the change is refused, the stream goes on.
        tools = executions_pb2_grpc.ToolCallServiceStub(ch)
        change = executions_pb2.ToolCallChange(start=executions_pb2.StartToolCallRequest(agent_id="a" * 257))
        stream = tools.RecordToolCalls()
        await stream.write(executions_pb2.RecordToolCallsRequest(changes=[change]))
        reply = await stream.read()
        await stream.done_writing()
        outcome = reply.outcomes[0]
        assert outcome.WhichOneof("result") == "error", outcome
        assert outcome.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert "start.agent_id: must be at most 256 bytes" in outcome.error.message
    assert await head(server) == before


# ---------------------------------------------------------------- bodies


async def test_a_missing_body_is_refused_where_the_route_needs_one(
    server: Server, subtests: pytest.Subtests
) -> None:
    headers = await agent_identity(server)
    before = await head(server)
    needing = [(b, f) for b, f in served(server) if needs_body(b)]
    assert len(needing) >= 25
    for b, family in needing:
        with subtests.test(f"{b.verb} {b.template}"):
            resp = await server.http.request(b.verb, fill(b.route_path), headers=headers)
            if refuses_empty_body(b):
                # As the family answers a body that is not JSON (AGH: 400 invalid_json).
                err = from_domain(InvalidArgument("a request body is required", reason="INVALID_JSON"))
                status, body, _ = family.error(err)
                assert (resp.status_code, resp.json()) == (status, body), b.template
            else:  # the check of REQUIRED fields names what is missing
                assert_refused(resp, family, b.template)
    assert await head(server) == before


async def test_routes_that_need_no_body_still_take_none(server: Server) -> None:
    # curl -XPOST with no body: the queue answers 204, nothing to claim.
    await server.http.post("/sessions", json={"session_id": "w1", "session_name": "worker"})
    headers = {"X-AGH-Session-ID": "w1", "X-AGH-Agent": "coder"}
    resp = await server.http.post("/api/agent/tasks/claim-next", headers=headers)
    assert resp.status_code == 204, resp.text
    resp = (
        await server.http.post("/sessions/w1/stop") if _route("POST", "/sessions/{session_id}/stop") else None
    )
    assert resp is None or resp.status_code < 500


def _route(verb: str, template: str) -> bool:
    return any(b.verb == verb and b.template == template for b, _ in routes())


async def test_no_route_needs_a_body_it_does_not_declare(server: Server) -> None:
    """The POST routes without a body binding, and those whose body is all
    optional, answer a bare POST without a 5xx."""
    for b, _ in served(server):
        if b.verb != "GET" and not needs_body(b):
            resp = await server.http.request(b.verb, fill(b.route_path), headers={"X-AGH-Session-ID": "x"})
            assert resp.status_code < 500, (b.template, resp.text)


# ---------------------------------------------------------------- what the database could refuse


def scalar_fields(
    md: Descriptor, seen: frozenset[str] = frozenset()
) -> list[tuple[list[Any], FieldDescriptor]]:
    """(JSON path, field) of every string and integer in `md`, nested ones too
    (a repeated message is given one element)."""
    found: list[tuple[list[Any], FieldDescriptor]] = []
    for fd in md.fields:
        sub = fd.message_type
        if sub is None:
            if fd.type == FieldDescriptor.TYPE_STRING or fd.type in EXTREMES:
                found.append(([fd.name, 0] if fd.is_repeated else [fd.name], fd))
        elif not sub.GetOptions().map_entry and sub.full_name not in seen:
            if sub.full_name.startswith("google.protobuf."):
                continue
            for path, leaf in scalar_fields(sub, seen | {md.full_name}):
                found.append(([fd.name, 0, *path] if fd.is_repeated else [fd.name, *path], leaf))
    return found


EXTREMES: dict[int, list[int]] = {
    FieldDescriptor.TYPE_INT32: [-(2**31), 2**31 - 1],
    FieldDescriptor.TYPE_INT64: [-(2**63), 2**63 - 1],
    FieldDescriptor.TYPE_UINT32: [2**32 - 1],
    FieldDescriptor.TYPE_UINT64: [2**64 - 1],
}


async def test_values_the_database_could_refuse_are_never_a_5xx(
    server: Server, subtests: pytest.Subtests
) -> None:
    """Long incompressible text in every unbounded string, nested ones
    included (past PostgreSQL's index-row limit, were it indexed), and the
    extreme integers in every integer field: a 2xx or a 4xx, never a 5xx."""
    big = secrets.token_hex(2000)  # 4,000 bytes that do not compress
    headers = {"X-AGH-Session-ID": "x", "X-AGH-Agent": "a"}
    tried = 0
    for b, _family in served(server):
        if b.streaming:  # an open stream never ends here
            continue
        for path, fd in scalar_fields(b.input.DESCRIPTOR):
            if fd.type == FieldDescriptor.TYPE_STRING:
                values: list[Any] = [] if max_bytes(fd) else [big]
            else:
                values = EXTREMES[fd.type]
            for value in values:
                where = placed(b, path, value)
                if where is None:
                    continue
                url, query, body = where
                tried += 1
                what = f"{b.verb} {b.template} {'.'.join(map(str, path))}={str(value)[:20]}"
                with subtests.test(what):
                    resp = await server.http.request(b.verb, url, params=query, json=body, headers=headers)
                    assert resp.status_code < 500, f"{what}: {resp.text[:300]}"
    assert tried >= 250


# ---------------------------------------------------------------- OpenAPI


async def test_openapi_states_the_limits(server: Server) -> None:
    doc = (await server.http.get("/openapi.json")).json()
    op = doc["paths"]["/sessions/{session_id}"]["get"]
    (param,) = [p for p in op["parameters"] if p["name"] == "session_id"]
    assert param["schema"]["maxLength"] == ID_LIMIT
    schemas = doc["components"]["schemas"]
    assert schemas["agentplane.v1.CreateSessionRequest"]["properties"]["session_id"]["maxLength"] == ID_LIMIT
    batch = schemas["agentplane.v1.IngestTrenchcoatEventsRequest"]["properties"]["events"]
    assert batch["maxItems"] == 1000
    tracer = schemas["agentplane.v1.IngestEventsRequest.json"]["properties"]["events"]
    assert tracer["maxItems"] == 100
    limits = doc["info"]["x-agentplane-limits"]
    assert limits["max_body_bytes"] == server.core.settings.max_body_bytes
    assert limits["max_id_bytes"] == ID_LIMIT
    assert limits["max_tool_output_bytes"] == server.core.settings.max_tool_output_bytes
    assert limits["max_trenchcoat_batch"] == 1000


def test_batch_bounds_in_the_protos_are_the_ones_enforced() -> None:
    from service.domain.tracer import model
    from service.domain.trenchcoat import ingest as trenchcoat

    by_name = {b.input.DESCRIPTOR.full_name: b.input.DESCRIPTOR for b, _ in routes()}
    events = by_name["agentplane.v1.IngestTrenchcoatEventsRequest"].fields_by_name["events"]
    assert max_items(events) == trenchcoat.MAX_BATCH
    for name, md in by_name.items():
        if (
            name.startswith("agentplane.v1.Ingest")
            and "events" in md.fields_by_name
            and "Trenchcoat" not in name
        ):
            assert max_items(md.fields_by_name["events"]) == model.MAX_EVENTS, name


async def test_openapi_says_which_bodies_are_required(server: Server) -> None:
    paths = (await server.http.get("/openapi.json")).json()["paths"]
    assert paths["/api/v1/executions"]["post"]["requestBody"]["required"] is True
    assert paths["/sessions"]["post"]["requestBody"]["required"] is True
    assert paths["/api/agent/tasks/claim-next"]["post"]["requestBody"]["required"] is False
