"""The agents API (seed 001) over its JSON routes, against the real app.

The seed's calls replayed as requests, with whole response bodies; then the
routes' errors in the native family's body (google.rpc.Status JSON, with
ErrorInfo and BadRequest details): unknown ids, finished resources, and
bad input, each checked to write nothing; then the log entries the calls
leave for the live feeds, and the OpenAPI document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from service.base.config import Settings
from tests.conftest import Server

CAP = 4096  # AGENTPLANE_MAX_TOOL_OUTPUT_BYTES for these tests
DOMAIN = "agentplane.dev"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.max_tool_output_bytes = CAP
    return settings


class Matches:
    """Equal to any string matching the pattern (ids and server times)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.pattern.fullmatch(other) is not None

    def __repr__(self) -> str:
        return f"Matches({self.pattern.pattern!r})"


TIME = Matches(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6})?Z")
UUID = Matches(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")

# The seed's examples.
SEED_PROMPT, SEED_MODEL, SEED_SYSTEM = "Implement the feature", "sonnet", "You are a senior engineer"
SEED_RESULT, SEED_STRUCTURED = "Feature implemented", {"success": True, "files": 3}
SEED_TOKENS = {"input": 1000, "output": 500}
SEED_TOOL_INPUT = {"file": "src/main.ts", "changes": "..."}
SEED_OUTPUT, SEED_SUMMARY = "File edited successfully", "Edited src/main.ts: added 15 lines"


def execution(**fields: Any) -> dict[str, Any]:
    return {
        "id": UUID,
        "name": None,
        "file_path": None,
        "status": "running",
        "config": {},
        "result": None,
        "error": None,
        "started_at": TIME,
        "completed_at": None,
        "created_at": TIME,
        "total_agents": 0,
        "total_tool_calls": 0,
        "total_tokens_used": 0,
        "current_agent_id": None,
        **fields,
    }


def agent(execution_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": UUID,
        "execution_id": execution_id,
        "phase_id": None,
        "prompt": "",
        "model": "sonnet",
        "system_prompt": None,
        "status": "running",
        "result": None,
        "result_structured": None,
        "error": None,
        "tokens_input": None,
        "tokens_output": None,
        "tool_calls_count": 0,
        "started_at": TIME,
        "completed_at": None,
        "created_at": TIME,
        "duration_ms": None,
        "log_path": None,
        "stream_summary": None,
        **fields,
    }


def tool_call(agent_id: str, execution_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": UUID,
        "agent_id": agent_id,
        "execution_id": execution_id,
        "tool_name": "Edit",
        "input": {},
        "output_inline": None,
        "output_summary": None,
        "output_size_bytes": None,
        "output_path": None,
        "output_git_hash": None,
        "error": None,
        "status": "running",
        "started_at": TIME,
        "completed_at": None,
        "created_at": TIME,
        "duration_ms": None,
        **fields,
    }


def ok(resp: httpx.Response) -> Any:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    return resp.json()


def status_error(code: int, message: str, reason: str, metadata: dict[str, str]) -> dict[str, Any]:
    """The google.rpc.Status JSON of the native family, with its ErrorInfo."""
    info = {"@type": ERROR_INFO, "reason": reason, "domain": DOMAIN, "metadata": metadata}
    return {"code": code, "message": message, "details": [info]}


def assert_bad_request(got: Any, reason: str, fields: Sequence[str]) -> None:
    """INVALID_ARGUMENT naming `fields`, in order, in its BadRequest and its message."""
    assert set(got) == {"code", "message", "details"} and got["code"] == 3
    info, bad = got["details"]
    assert (info["@type"], info["reason"], info["domain"]) == (ERROR_INFO, reason, DOMAIN)
    assert bad["@type"] == BAD_REQUEST
    assert [v["field"] for v in bad["field_violations"]] == list(fields)
    assert all(v["description"] for v in bad["field_violations"])
    assert all(f in got["message"] for f in fields)


async def start_execution(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    return dict(ok(await http.post("/api/v1/executions", json=body))["execution"])


async def start_agent(http: httpx.AsyncClient, execution_id: str, **body: Any) -> dict[str, Any]:
    return dict(ok(await http.post(f"/api/v1/executions/{execution_id}/agents", json=body))["agent"])


async def start_tool(http: httpx.AsyncClient, agent_id: str, **body: Any) -> dict[str, Any]:
    body.setdefault("tool_name", "Edit")
    return dict(ok(await http.post(f"/api/v1/agents/{agent_id}/tool-calls", json=body))["tool_call"])


async def log_entries(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    resp = await http.get("/v1/log:watch", params={"after_seq": "0", "stop_at_end": "true"})
    assert resp.status_code == 200, resp.text
    return [json.loads(line)["result"]["entry"] for line in resp.text.splitlines()]


async def snapshot(http: httpx.AsyncClient, execution_ids: list[str], agent_ids: list[str]) -> Any:
    """What the server holds: the log, the executions, and the given ones' agents and tool calls."""
    out: list[Any] = [await log_entries(http), ok(await http.get("/api/v1/executions"))]
    for eid in execution_ids:
        out.append(ok(await http.get(f"/api/v1/executions/{eid}/agents")))
    for aid in agent_ids:
        out.append(ok(await http.get(f"/api/v1/agents/{aid}/tool-calls")))
    return out


# ------------------------------------------------------------------ the seed


async def test_seed_examples(server: Server) -> None:
    http = server.http
    ex = await start_execution(http, name="Build the feature")
    assert ex == execution(name="Build the feature")
    assert ex["started_at"] == ex["created_at"]
    eid = ex["id"]

    # db.agents.start("Implement the feature", "sonnet", "You are a senior engineer")
    started = await start_agent(http, eid, prompt=SEED_PROMPT, model=SEED_MODEL, system_prompt=SEED_SYSTEM)
    assert started == agent(eid, prompt=SEED_PROMPT, system_prompt=SEED_SYSTEM)
    assert started["started_at"] == started["created_at"]
    aid = started["id"]
    assert ok(await http.get(f"/api/v1/executions/{eid}/agents/current")) == {"agent": started}

    # db.tools.start(agentId, "Edit", {file: "src/main.ts", changes: "..."})
    tool = await start_tool(http, aid, input=SEED_TOOL_INPUT)
    assert tool == tool_call(aid, eid, input=SEED_TOOL_INPUT)
    # db.tools.complete(toolId, "File edited successfully", "Edited src/main.ts: added 15 lines")
    body = {"output": SEED_OUTPUT, "summary": SEED_SUMMARY}
    completed = ok(await http.post(f"/api/v1/tool-calls/{tool['id']}/complete", json=body))["tool_call"]
    expected_tool = tool_call(
        aid,
        eid,
        id=tool["id"],
        input=SEED_TOOL_INPUT,
        status="completed",
        output_inline=SEED_OUTPUT,
        output_summary=SEED_SUMMARY,
        output_size_bytes=len(SEED_OUTPUT),
        started_at=tool["started_at"],
        created_at=tool["created_at"],
        completed_at=TIME,
        duration_ms=completed["duration_ms"],
    )
    assert completed == expected_tool and isinstance(completed["duration_ms"], int)
    # db.tools.list(agentId)
    assert ok(await http.get(f"/api/v1/agents/{aid}/tool-calls")) == {"tool_calls": [completed]}
    assert ok(await http.get(f"/api/v1/tool-calls/{tool['id']}")) == {"tool_call": completed}
    assert ok(await http.get(f"/api/v1/tool-calls/{tool['id']}/output")) == {"output": SEED_OUTPUT}

    # db.agents.complete(agentId, "Feature implemented", {success: true, files: 3}, {input: 1000, output: 500})
    completion = {"result": SEED_RESULT, "result_structured": SEED_STRUCTURED, "tokens": SEED_TOKENS}
    done = ok(await http.post(f"/api/v1/agents/{aid}/complete", json=completion))["agent"]
    assert done == agent(
        eid,
        id=aid,
        prompt=SEED_PROMPT,
        system_prompt=SEED_SYSTEM,
        status="completed",
        result=SEED_RESULT,
        result_structured=SEED_STRUCTURED,
        tokens_input=1000,
        tokens_output=500,
        tool_calls_count=1,
        started_at=started["started_at"],
        created_at=started["created_at"],
        completed_at=TIME,
        duration_ms=done["duration_ms"],
    )
    # db.agents.list(executionId); db.agents.current() is null again
    assert ok(await http.get(f"/api/v1/executions/{eid}/agents")) == {"agents": [done]}
    assert ok(await http.get(f"/api/v1/agents/{aid}")) == {"agent": done}
    assert ok(await http.get(f"/api/v1/executions/{eid}/agents/current")) == {"agent": None}
    counted = execution(
        id=eid,
        name="Build the feature",
        started_at=ex["started_at"],
        created_at=ex["created_at"],
        total_agents=1,
        total_tool_calls=1,
        total_tokens_used=1500,
    )
    assert ok(await http.get(f"/api/v1/executions/{eid}")) == {"execution": counted}

    # db.agents.fail(agentId, "Timeout exceeded")
    other = await start_agent(http, eid, prompt="Review it")
    failed = ok(await http.post(f"/api/v1/agents/{other['id']}/fail", json={"error": "Timeout exceeded"}))
    assert failed == {
        "agent": agent(
            eid,
            id=other["id"],
            prompt="Review it",
            status="failed",
            error="Timeout exceeded",
            started_at=other["started_at"],
            created_at=other["created_at"],
            completed_at=TIME,
        )
    }

    finished = ok(await http.post(f"/api/v1/executions/{eid}/complete", json={"result": {"merged": True}}))
    assert finished == {
        "execution": {
            **counted,
            "status": "completed",
            "result": {"merged": True},
            "completed_at": TIME,
            "total_agents": 2,
        }
    }
    assert ok(await http.get("/api/v1/executions")) == {"executions": [finished["execution"]]}


async def test_large_output_keeps_a_summary_and_the_full_text(server: Server) -> None:
    http = server.http
    eid = (await start_execution(http))["id"]
    aid = (await start_agent(http, eid))["id"]
    cases = [
        ("é" * 511 + "a", None, "é" * 511 + "a", None),  # 1,023 bytes: inline
        ("é" * 512, None, None, "é" * 200),  # 1,024 bytes: not inline, the first 200 characters
        ("😀" * 300, None, None, "😀" * 200),
        ("x" * 3000, "Read 3000 bytes", None, "Read 3000 bytes"),
    ]
    for output, summary, inline, expected_summary in cases:
        tid = (await start_tool(http, aid))["id"]
        body = {"output": output, **({"summary": summary} if summary is not None else {})}
        done = ok(await http.post(f"/api/v1/tool-calls/{tid}/complete", json=body))["tool_call"]
        assert (done["output_inline"], done["output_summary"], done["output_size_bytes"]) == (
            inline,
            expected_summary,
            len(output.encode()),
        )
        assert ok(await http.get(f"/api/v1/tool-calls/{tid}/output")) == {"output": output}


async def test_resume_list_limit_and_stream_summary(server: Server) -> None:
    http = server.http
    first = await start_execution(
        http, execution_id="nightly-2025-01-01", name="nightly", config={"retries": 2}
    )
    assert first == execution(id="nightly-2025-01-01", name="nightly", config={"retries": 2})
    cancelled = ok(await http.post("/api/v1/executions/nightly-2025-01-01/cancel"))["execution"]
    assert (cancelled["status"], cancelled["completed_at"]) == ("cancelled", TIME)
    resumed = await start_execution(http, execution_id="nightly-2025-01-01")
    assert resumed == {**first, "started_at": TIME}
    second = await start_execution(http, file_path="orchestrate.tsx")
    assert second == execution(file_path="orchestrate.tsx")
    listed = ok(await http.get("/api/v1/executions", params={"limit": "1"}))
    assert listed == {"executions": [second]}

    aid = (await start_agent(http, second["id"], phase_id="plan", log_path="/logs/plan.log"))["id"]
    # StreamSummary keeps the seed's camelCase keys (the rest of the agent is
    # snake_case) in the answer, on reads and in the log entry; snake_case
    # keys are accepted too
    summary = {"textBlocks": 4, "reasoningBlocks": 1, "toolCalls": 2, "toolResults": 2, "errors": 0}
    body = {"textBlocks": 4, "reasoningBlocks": 1, "tool_calls": 2, "tool_results": 2}
    got = ok(await http.put(f"/api/v1/agents/{aid}/stream-summary", json=body))["agent"]
    assert got["stream_summary"] == summary
    assert (got["phase_id"], got["log_path"]) == ("plan", "/logs/plan.log")
    assert ok(await http.get(f"/api/v1/agents/{aid}"))["agent"]["stream_summary"] == summary
    entry = (await log_entries(http))[-1]
    assert entry["type"] == "agent.stream_summary"
    assert entry["data"]["agent"]["stream_summary"] == summary


# ------------------------------------------------------------------ errors


async def test_unknown_ids_are_404_and_write_nothing(server: Server, subtests: pytest.Subtests) -> None:
    http = server.http
    eid = (await start_execution(http))["id"]
    before = await snapshot(http, [eid], [])
    exec_404 = status_error(5, "Execution not found", "EXECUTION_NOT_FOUND", {"execution_id": "nope"})
    agent_404 = status_error(5, "Agent not found", "AGENT_NOT_FOUND", {"agent_id": "nope"})
    tool_404 = status_error(5, "Tool call not found", "TOOL_CALL_NOT_FOUND", {"tool_call_id": "nope"})
    cases: list[tuple[str, str, dict[str, Any] | None, dict[str, Any]]] = [
        ("GET", "/api/v1/executions/nope", None, exec_404),
        ("POST", "/api/v1/executions/nope/complete", {}, exec_404),
        ("POST", "/api/v1/executions/nope/fail", {"error": "x"}, exec_404),
        ("POST", "/api/v1/executions/nope/cancel", {}, exec_404),
        ("POST", "/api/v1/executions/nope/agents", {"prompt": "p"}, exec_404),
        ("GET", "/api/v1/executions/nope/agents", None, exec_404),
        ("GET", "/api/v1/executions/nope/agents/current", None, exec_404),
        ("GET", "/api/v1/agents/nope", None, agent_404),
        ("POST", "/api/v1/agents/nope/complete", {"result": "r"}, agent_404),
        ("POST", "/api/v1/agents/nope/fail", {"error": "x"}, agent_404),
        ("PUT", "/api/v1/agents/nope/stream-summary", {"errors": 1}, agent_404),
        ("POST", "/api/v1/agents/nope/tool-calls", {"tool_name": "Edit"}, agent_404),
        ("GET", "/api/v1/agents/nope/tool-calls", None, agent_404),
        ("GET", "/api/v1/tool-calls/nope", None, tool_404),
        ("POST", "/api/v1/tool-calls/nope/complete", {"output": "x"}, tool_404),
        ("POST", "/api/v1/tool-calls/nope/fail", {"error": "x"}, tool_404),
        ("GET", "/api/v1/tool-calls/nope/output", None, tool_404),
    ]
    for method, path, body, expected in cases:
        with subtests.test(f"{method} {path}"):
            resp = await http.request(method, path, json=body)
            assert resp.status_code == 404, resp.text
            assert resp.json() == expected
            assert await snapshot(http, [eid], []) == before


async def test_finished_resources_are_failed_precondition(server: Server, subtests: pytest.Subtests) -> None:
    """FAILED_PRECONDITION renders as HTTP 400 (grpc-gateway's mapping), with the reason and status."""
    http = server.http
    done_eid = (await start_execution(http))["id"]
    orphan = (await start_agent(http, done_eid))["id"]
    ok(await http.post(f"/api/v1/executions/{done_eid}/complete", json={}))
    eid = (await start_execution(http))["id"]
    aid = (await start_agent(http, eid))["id"]
    tid = (await start_tool(http, aid))["id"]
    ok(await http.post(f"/api/v1/tool-calls/{tid}/fail", json={"error": "denied"}))
    ok(await http.post(f"/api/v1/agents/{aid}/complete", json={"result": "r", "tokens": {"input": 1}}))
    before = await snapshot(http, [done_eid, eid], [orphan, aid])

    def not_running(kind: str, key: str, value: str, status: str) -> dict[str, Any]:
        reason = f"{kind.upper().replace(' ', '_')}_NOT_RUNNING"
        message = f"{kind.capitalize()} is {status}, not running"
        return status_error(9, message, reason, {key: value, "status": status})

    cases: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
        ("POST", f"/api/v1/executions/{done_eid}/complete", {}, not_running("execution", "execution_id", done_eid, "completed")),
        ("POST", f"/api/v1/executions/{done_eid}/fail", {"error": "x"}, not_running("execution", "execution_id", done_eid, "completed")),
        ("POST", f"/api/v1/executions/{done_eid}/agents", {}, not_running("execution", "execution_id", done_eid, "completed")),
        ("POST", f"/api/v1/agents/{orphan}/tool-calls", {"tool_name": "Bash"}, not_running("execution", "execution_id", done_eid, "completed")),
        ("POST", f"/api/v1/agents/{aid}/complete", {"result": "again", "tokens": {"input": 9}}, not_running("agent", "agent_id", aid, "completed")),
        ("POST", f"/api/v1/agents/{aid}/fail", {"error": "late"}, not_running("agent", "agent_id", aid, "completed")),
        ("POST", f"/api/v1/agents/{aid}/tool-calls", {"tool_name": "Bash"}, not_running("agent", "agent_id", aid, "completed")),
        ("POST", f"/api/v1/tool-calls/{tid}/complete", {"output": "x"}, not_running("tool call", "tool_call_id", tid, "failed")),
        ("POST", f"/api/v1/tool-calls/{tid}/fail", {"error": "x"}, not_running("tool call", "tool_call_id", tid, "failed")),
    ]  # fmt: skip
    for method, path, body, expected in cases:
        with subtests.test(path):
            resp = await http.request(method, path, json=body)
            assert resp.status_code == 400, resp.text
            assert resp.json() == expected
            assert await snapshot(http, [done_eid, eid], [orphan, aid]) == before


# (case, method, path template, body, fields named by the BadRequest detail, reason)
BAD_INPUT: list[tuple[str, str, str, Any, list[str], str]] = [
    ("config is a list", "POST", "/api/v1/executions", {"config": [1]}, ["config"], "INVALID_ARGUMENT"),
    ("config is a string", "POST", "/api/v1/executions", {"config": "x"}, ["config"], "INVALID_ARGUMENT"),
    ("execution id with a slash", "POST", "/api/v1/executions", {"execution_id": "a/b"}, ["execution_id"], "INVALID_ARGUMENT"),
    ("empty execution id", "POST", "/api/v1/executions", {"execution_id": ""}, ["execution_id"], "INVALID_ARGUMENT"),
    ("nul in a name", "POST", "/api/v1/executions", {"name": "a\u0000"}, ["name"], "INVALID_ARGUMENT"),
    ("limit too large", "GET", "/api/v1/executions?limit=1001", None, ["limit"], "INVALID_ARGUMENT"),
    ("negative limit", "GET", "/api/v1/executions?limit=-1", None, ["limit"], "INVALID_ARGUMENT"),
    ("fail without an error", "POST", "/api/v1/executions/{eid}/fail", {}, ["error"], "MISSING_FIELD"),
    ("nul in a prompt", "POST", "/api/v1/executions/{eid}/agents", {"prompt": "\u0000"}, ["prompt"], "INVALID_ARGUMENT"),
    ("negative input tokens", "POST", "/api/v1/agents/{aid}/complete", {"tokens": {"input": -1, "output": 5}}, ["tokens.input"], "INVALID_ARGUMENT"),
    ("negative output tokens", "POST", "/api/v1/agents/{aid}/complete", {"tokens": {"output": -5}}, ["tokens.output"], "INVALID_ARGUMENT"),
    ("structured result a list", "POST", "/api/v1/agents/{aid}/complete", {"result_structured": [1, 2]}, ["result_structured"], "INVALID_ARGUMENT"),
    ("structured result a string", "POST", "/api/v1/agents/{aid}/complete", {"result_structured": "ok"}, ["result_structured"], "INVALID_ARGUMENT"),
    ("structured result a number, tokens negative", "POST", "/api/v1/agents/{aid}/complete", {"result_structured": 3, "tokens": {"input": -1, "output": -2}}, ["result_structured", "tokens.input", "tokens.output"], "INVALID_ARGUMENT"),
    ("agent fail without an error", "POST", "/api/v1/agents/{aid}/fail", {"error": ""}, ["error"], "MISSING_FIELD"),
    ("negative stream summary", "PUT", "/api/v1/agents/{aid}/stream-summary", {"text_blocks": -1}, ["stream_summary.text_blocks"], "INVALID_ARGUMENT"),
    ("tool without a name", "POST", "/api/v1/agents/{aid}/tool-calls", {"input": {}}, ["tool_name"], "MISSING_FIELD"),
    ("tool input a list", "POST", "/api/v1/agents/{aid}/tool-calls", {"tool_name": "Edit", "input": ["a"]}, ["input"], "INVALID_ARGUMENT"),
    ("tool input a number", "POST", "/api/v1/agents/{aid}/tool-calls", {"tool_name": "Edit", "input": 7}, ["input"], "INVALID_ARGUMENT"),
    ("output past the cap", "POST", "/api/v1/tool-calls/{tid}/complete", {"output": "a" * (CAP + 1)}, ["output"], "OUTPUT_TOO_LARGE"),
    ("output past the cap in bytes", "POST", "/api/v1/tool-calls/{tid}/complete", {"output": "😀" * (CAP // 4 + 1)}, ["output"], "OUTPUT_TOO_LARGE"),
    ("nul in a summary", "POST", "/api/v1/tool-calls/{tid}/complete", {"output": "x", "summary": "\u0000"}, ["summary"], "INVALID_ARGUMENT"),
]  # fmt: skip


async def test_bad_input_is_400_with_the_field_and_writes_nothing(
    server: Server, subtests: pytest.Subtests
) -> None:
    http = server.http
    eid = (await start_execution(http))["id"]
    aid = (await start_agent(http, eid))["id"]
    tid = (await start_tool(http, aid))["id"]
    before = await snapshot(http, [eid], [aid])
    for case, method, template, body, fields, reason in BAD_INPUT:
        with subtests.test(case):
            path = template.format(eid=eid, aid=aid, tid=tid)
            resp = await http.request(method, path, json=body)
            assert resp.status_code == 400, resp.text
            assert_bad_request(resp.json(), reason, fields)
            assert await snapshot(http, [eid], [aid]) == before


async def test_output_too_large_says_the_limit(server: Server) -> None:
    http = server.http
    aid = (await start_agent(http, (await start_execution(http))["id"]))["id"]
    tid = (await start_tool(http, aid))["id"]
    resp = await http.post(f"/api/v1/tool-calls/{tid}/complete", json={"output": "a" * (CAP + 10)})
    assert resp.status_code == 400
    assert resp.json() == {
        "code": 3,
        "message": f"output: {CAP + 10} bytes is more than the {CAP} this server accepts",
        "details": [
            {
                "@type": ERROR_INFO,
                "reason": "OUTPUT_TOO_LARGE",
                "domain": DOMAIN,
                "metadata": {"size_bytes": str(CAP + 10), "limit_bytes": str(CAP)},
            },
            {
                "@type": BAD_REQUEST,
                "field_violations": [
                    {"field": "output", "description": f"must be at most {CAP} bytes (UTF-8)"}
                ],
            },
        ],
    }
    # exactly at the cap is accepted
    ok(await http.post(f"/api/v1/tool-calls/{tid}/complete", json={"output": "a" * CAP}))


async def test_malformed_json_is_400(server: Server) -> None:
    resp = await server.http.post(
        "/api/v1/executions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 400
    body = resp.json()
    assert body["code"] == 3 and body["details"][0]["reason"] == "INVALID_JSON"
    assert ok(await server.http.get("/api/v1/executions")) == {"executions": []}


# ------------------------------------------------------------------ one log


async def test_every_call_is_a_log_entry_for_the_live_feeds(server: Server) -> None:
    http = server.http
    ex = await start_execution(http)
    ag = await start_agent(http, ex["id"], prompt="p")
    tool = await start_tool(http, ag["id"], input={"cmd": "ls"})
    done_tool = ok(await http.post(f"/api/v1/tool-calls/{tool['id']}/complete", json={"output": "a\nb"}))
    done_agent = ok(await http.post(f"/api/v1/agents/{ag['id']}/fail", json={"error": "boom"}))
    entries = await log_entries(http)
    assert [(e["type"], e["session_id"]) for e in entries] == [
        ("execution.started", ""),
        ("agent.started", ""),
        ("tool_call.started", ""),
        ("tool_call.completed", ""),
        ("agent.failed", ""),
    ]
    # each entry carries the record exactly as the routes return it
    assert [e["data"] for e in entries] == [
        {"execution": ex},
        {"agent": ag},
        {"tool_call": tool},
        done_tool,
        done_agent,
    ]
    assert entries[3]["occurred_at"] == done_tool["tool_call"]["completed_at"]


async def test_openapi_documents_the_routes(server: Server) -> None:
    doc = ok(await server.http.get("/openapi.json"))
    paths = doc["paths"]
    expected = {
        "/api/v1/executions": {"get", "post"},
        "/api/v1/executions/{execution_id}": {"get"},
        "/api/v1/executions/{execution_id}/complete": {"post"},
        "/api/v1/executions/{execution_id}/fail": {"post"},
        "/api/v1/executions/{execution_id}/cancel": {"post"},
        "/api/v1/executions/{execution_id}/agents": {"get", "post"},
        "/api/v1/executions/{execution_id}/agents/current": {"get"},
        "/api/v1/agents/{agent_id}": {"get"},
        "/api/v1/agents/{agent_id}/complete": {"post"},
        "/api/v1/agents/{agent_id}/fail": {"post"},
        "/api/v1/agents/{agent_id}/stream-summary": {"put"},
        "/api/v1/agents/{agent_id}/tool-calls": {"get", "post"},
        "/api/v1/tool-calls/{tool_call_id}": {"get"},
        "/api/v1/tool-calls/{tool_call_id}/complete": {"post"},
        "/api/v1/tool-calls/{tool_call_id}/fail": {"post"},
        "/api/v1/tool-calls/{tool_call_id}/output": {"get"},
    }
    for path, verbs in expected.items():
        assert set(paths[path]) >= verbs, path
        for verb in verbs:
            operation = paths[path][verb]
            assert operation["description"], (verb, path)
            error = operation["responses"]["default"]["content"]["application/json"]["schema"]
            assert error["description"] == "google.rpc.Status"
    complete = paths["/api/v1/tool-calls/{tool_call_id}/complete"]["post"]
    assert "1,024 UTF-8 bytes" in complete["description"]
    schema = doc["components"]["schemas"]["agentplane.v1.ToolCall"]
    assert "output_size_bytes" in schema["properties"] and "outputSizeBytes" not in schema["properties"]
