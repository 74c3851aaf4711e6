"""The OpenAPI document says how each family writes an unset field: the
families that leave it out (Agent Tracer, AGH) describe it as optional and
never null; the others (agent-runtime, …) write null and say so. Requests
take null as absent in every family, and their schemas keep it."""

from __future__ import annotations

from typing import Any

from tests.conftest import Server
from tests.contract.tracer_contract import Tracer

NULL = {"type": "null"}


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    resolved: dict[str, Any] = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return resolved


def _reachable_nulls(doc: dict[str, Any], schema: Any, seen: set[str]) -> list[str]:
    """Where a schema (followed through its $refs) allows null."""
    found: list[str] = []
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if ref is not None:
            if ref not in seen:
                seen.add(ref)
                found += [f"{ref} {w}" for w in _reachable_nulls(doc, _resolve(doc, schema), seen)]
            return found
        if schema == NULL:
            return ["null"]
        for key, value in schema.items():
            found += [f"{key}.{w}" for w in _reachable_nulls(doc, value, seen)]
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            found += [f"{i}.{w}" for w in _reachable_nulls(doc, value, seen)]
    return found


def _success(doc: dict[str, Any], path: str, verb: str) -> dict[str, Any]:
    responses = doc["paths"][path][verb]["responses"]
    ok = responses.get("200") or responses.get("201")
    schema: dict[str, Any] = ok["content"]["application/json"]["schema"]
    return schema


async def test_families_that_omit_unset_fields_document_them_as_optional_not_nullable(
    server: Server,
) -> None:
    resp = await server.http.get("/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    # Every success body of the Agent Tracer and AGH routes: nothing in it is ever null.
    for path, verbs in doc["paths"].items():
        if path.startswith(("/ingest/v1/", "/api/v1/tasks", "/api/agent/")):
            for verb, op in verbs.items():
                for status, response in op["responses"].items():
                    for media in response.get("content", {}).values() if status != "default" else ():
                        nulls = _reachable_nulls(doc, media["schema"], set())
                        assert nulls == [], (verb, path, status, nulls)

    task = doc["components"]["schemas"]["agentplane.v1.TracerTask.json.out"]
    assert task["properties"]["workspacePath"]["type"] == "string"
    assert "workspacePath" not in task.get("required", [])

    # What the route writes agrees: the unset optional fields are left out.
    tracer = Tracer(server.http)
    task_id = (await tracer.ensure("rs"))["taskId"]
    written = (await tracer.task(task_id))["task"]
    assert "workspacePath" not in written and "parentTaskId" not in written
    assert set(written) <= set(task["properties"])

    # Requests still take null for an optional field, and say so.
    event_in = doc["components"]["schemas"]["agentplane.v1.TracerEventInput.json"]
    assert event_in["properties"]["title"]["anyOf"][1] == NULL
    body = {"events": [{"kind": "thought.logged", "taskId": task_id, "lane": "planning", "title": None}]}
    assert (await server.http.post("/ingest/v1/events", json=body)).status_code == 200

    # The agent-runtime family writes null for an unset optional field.
    reply = _resolve(doc, _success(doc, "/sessions/{session_id}", "get"))
    assert reply["properties"]["session"]["anyOf"][1] == NULL
    session = _resolve(doc, reply["properties"]["session"]["anyOf"][0])
    assert session["properties"]["project_dir"]["anyOf"][1] == NULL
    created = await server.http.post("/sessions", json={"session_id": "s-1", "session_name": "n"})
    assert created.status_code in (200, 201), created.text
    got = (await server.http.get("/sessions/s-1")).json()["session"]
    assert got["project_dir"] is None
