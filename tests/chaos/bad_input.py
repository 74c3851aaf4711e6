"""The bad-input matrix: for every route of the running server's OpenAPI
document, NUL in each path and query parameter and body string, over-long
ids (4 KiB: above any documented limit and above PostgreSQL's index-row
limit), malformed JSON, each body field of the wrong type, and a missing
body. Every one must be refused with a 4xx, never a 5xx nor accepted, and a
refused request must write nothing (the log's head unchanged)."""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from tests.chaos.context import Context, Outcome
from tests.chaos.writes import AGENT_HEADERS

LONG_ID = "x" * 4096
NUL = "chaos\x00x"
PLAIN = "chaos-x"
SHOWN = 6  # examples listed per kind of failure


@dataclass
class Case:
    method: str
    route: str  # the OpenAPI path, for the report
    what: str
    path: str
    query: dict[str, str]
    body: bytes | None


def _id_like(name: str) -> bool:
    return name in ("id", "channel", "agent_name") or name.endswith(("_id", "Id"))


class Schemas:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.components = doc.get("components", {}).get("schemas", {})

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[1]]
        if "anyOf" in schema:
            schema = next((s for s in schema["anyOf"] if s.get("type") != "null"), {})
            return self.resolve(schema)
        return schema

    def sample(self, schema: dict[str, Any]) -> Any:
        """A plausible value of the schema's type."""
        schema = self.resolve(schema)
        kind = schema.get("type")
        if kind == "string":
            return "1" if schema.get("format") in ("int64", "uint64") else PLAIN
        return {"integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}.get(str(kind), PLAIN)

    def wrong(self, schema: dict[str, Any]) -> list[Any]:
        """A value of the wrong JSON type for the schema (none for any JSON value)."""
        schema = self.resolve(schema)
        kind = schema.get("type")
        if kind == "string":
            return ["not-a-number" if schema.get("format") in ("int64", "uint64") else {"not": "a string"}]
        wrong = {
            "integer": "not-a-number",
            "number": "not-a-number",
            "boolean": "maybe",
            "array": 7,
            "object": 7,
        }
        return [wrong[kind]] if kind in wrong else []


def _case(
    method: str,
    route: str,
    path_params: list[str],
    base_body: bytes | None,
    what: str,
    path_values: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Case:
    """One request: plain values in the path but where path_values say, the
    route's minimal body unless body says."""
    path = route
    for name, value in ({p: PLAIN for p in path_params} | (path_values or {})).items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    return Case(method, route, what, path, query or {}, base_body if body is None else body)


def _cases(doc: dict[str, Any]) -> Iterator[Case]:
    schemas = Schemas(doc)
    for route, ops in doc["paths"].items():
        for method, op in ops.items():
            params = op.get("parameters", [])
            path_params = [p["name"] for p in params if p["in"] == "path"]
            query_params = [p for p in params if p["in"] == "query"]
            body_schema = (
                op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            )
            props: dict[str, Any] = {}
            base: dict[str, Any] = {}
            if body_schema is not None:
                resolved = schemas.resolve(body_schema)
                props = resolved.get("properties", {})
                base = {k: schemas.sample(props[k]) for k in resolved.get("required", []) if k in props}
            base_body = json.dumps(base).encode() if body_schema is not None else None

            make = functools.partial(_case, method.upper(), route, path_params, base_body)
            for name in path_params:
                yield make(f"NUL in path {name}", {name: NUL})
                yield make(f"long path {name}", {name: LONG_ID})
            for p in query_params:
                yield make(f"NUL in query {p['name']}", query={p["name"]: NUL})
                if _id_like(p["name"]):
                    yield make(f"long query {p['name']}", query={p["name"]: LONG_ID})
            if body_schema is None:
                continue
            yield make("malformed JSON", body=b'{"events": [')
            if op.get("requestBody", {}).get("required"):
                # Only where the contract says the body is required: a route whose
                # every body field is optional (claim-next, soul/validate) takes none.
                yield make("missing body", body=b"")
            for name, schema in props.items():
                if name in path_params:
                    continue  # the path's value wins
                for value in schemas.wrong(schema):
                    yield make(f"wrong type {name}", body=json.dumps(base | {name: value}).encode())
                if schemas.resolve(schema).get("type") == "string":
                    yield make(f"NUL in body {name}", body=json.dumps(base | {name: NUL}).encode())
                    if _id_like(name):
                        yield make(f"long body {name}", body=json.dumps(base | {name: LONG_ID}).encode())


def run(ctx: Context) -> Outcome:
    failures: Counter[str] = Counter()
    details: list[str] = []
    statuses: Counter[int] = Counter()
    routes = 0
    with (
        ctx.server() as srv,
        httpx.Client(
            base_url=f"http://127.0.0.1:{srv.http_port}", timeout=10, headers=AGENT_HEADERS
        ) as client,
    ):
        agent = {"session_id": "chaos-agent", "session_name": "chaos", "agent_name": "chaos"}
        client.post("/sessions", json=agent).raise_for_status()
        doc = client.get("/openapi.json").json()
        routes = sum(len(ops) for ops in doc["paths"].values())
        for case in _cases(doc):
            head = ctx.db.head()
            headers = {"Content-Type": "application/json"} if case.body is not None else {}
            try:
                with client.stream(
                    case.method, case.path, params=case.query, content=case.body, headers=headers
                ) as answer:
                    status = answer.status_code
                    text = answer.read()[:160].decode(errors="replace") if status >= 500 else ""
            except httpx.HTTPError as exc:
                status, text = 0, repr(exc)
            statuses[status] += 1
            problem = ""
            if status >= 500 or status == 0:
                problem = "5xx" if status else "no answer"
            elif status < 400:
                problem = "accepted"
            elif ctx.db.head() != head:
                problem = "wrote while refusing"
            if problem:
                failures[problem] += 1
                if failures[problem] <= SHOWN:
                    details.append(
                        f"{problem}: {case.method} {case.route} {case.what} -> {status} {text}".rstrip()
                    )
    total = sum(statuses.values())
    refused = sum(n for s, n in statuses.items() if 400 <= s < 500)
    figures = (
        f"{total:,} bad requests over {routes} routes: {refused:,} refused with a 4xx, "
        f"{failures['5xx']} 5xx, {failures['accepted']} accepted, "
        f"{failures['wrote while refusing']} wrote while refusing, {failures['no answer']} unanswered"
    )
    return Outcome(not failures, figures, details)
