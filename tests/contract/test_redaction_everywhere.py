"""Secrets never reach storage: every write RPC of the contract, found from
the descriptors, is sent through the real app with known secret shapes in
every free-text field (and in every free-form JSON value), and then every
text and JSON column of every table, the log included, is searched for them.

Each write RPC needs an example below: a new one without an example fails
the test, so that it cannot ship unchecked. The examples are valid requests;
`inject` adds the secrets, driven by the request's descriptor, to every
string field that is free text (service.rpc.redaction.is_free_text) except
the closed vocabularies named in CLOSED, which a secret would make invalid.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import agentplane.v1
import grpc
import pytest
import sqlalchemy as sa
from google.api import annotations_pb2
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor

from service.base.config import Settings
from service.rpc.dispatch import method_path
from service.rpc.limits import max_bytes
from service.rpc.redaction import is_free_text, is_write
from tests.agh_support import identity
from tests.conftest import Server
from tests.redaction_support import FOUND, NAMED, SECRETS, SHORT_SECRETS

# Closed vocabularies and validated formats (by field name, or
# `Message.field`): a secret there is refused, so nothing is put in them.
CLOSED = {
    "event_type", "event", "kind", "lane", "role", "status", "task_status", "scope", "scopes", "severity",
    "priority", "runtime_source", "completion_reason", "origin", "task_kind", "relation_type",
    "trigger_on", "tool", "action", "message_kind", "allowed_message_kinds", "spawn_role",
    "required_capabilities", "background_completions", "provider",
    "tools", "skills", "mcp_servers", "workspace_paths", "network_channels", "sandbox_profiles",
    "UpdateRuleRequest.trigger", "UpdateRuleRequest.expect", "UpdateRuleRequest.trigger_on",
}  # fmt: skip


def _closed(md: Descriptor, fd: FieldDescriptor) -> bool:
    return fd.name in CLOSED or f"{md.name}.{fd.name}" in CLOSED


_FREE_FORM = {f"google.protobuf.{name}" for name in ("Struct", "Value", "ListValue")}


def inject_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {**{k: inject_json(v) for k, v in value.items()}, "note": SECRETS.strip(), **NAMED}
    if isinstance(value, list):
        return [inject_json(v) for v in value] + [SECRETS.strip()]
    if isinstance(value, str):
        return value + SECRETS
    return value


def inject(md: Descriptor, data: dict[str, Any]) -> dict[str, Any]:
    """`data` (a request as JSON, proto names) with the secrets added to
    every free-text string and every free-form JSON value it sets."""
    out = dict(data)
    for key, value in data.items():
        fd = md.fields_by_name[key]
        sub = fd.message_type
        if _closed(md, fd):
            continue
        if fd.type == FieldDescriptor.TYPE_STRING and is_free_text(fd):
            # A bounded field (agentplane.v1.max_bytes) gets the shapes that fit.
            secrets = SHORT_SECRETS if max_bytes(fd) else SECRETS
            out[key] = [v + secrets for v in value] if fd.is_repeated else value + secrets
        elif sub is not None and sub.full_name in _FREE_FORM:
            out[key] = inject_json(value)
        elif sub is not None and not sub.full_name.startswith("google.protobuf."):
            out[key] = [inject(sub, v) for v in value] if fd.is_repeated else inject(sub, value)
    return out


def free_text_fields(md: Descriptor, prefix: str = "") -> set[str]:
    """The paths of the free-text and free-form fields of a message type
    (message fields followed, the closed vocabularies left out)."""
    found = set()
    for fd in md.fields:
        sub = fd.message_type
        if _closed(md, fd):
            continue
        text = fd.type == FieldDescriptor.TYPE_STRING and is_free_text(fd)
        if text or (sub is not None and sub.full_name in _FREE_FORM):
            found.add(prefix + fd.name)
        elif sub is not None and not sub.full_name.startswith("google.protobuf."):
            found |= free_text_fields(sub, f"{prefix}{fd.name}.")
    return found


def fields_set(md: Descriptor, data: dict[str, Any], prefix: str = "") -> set[str]:
    found = set()
    for key, value in data.items():
        fd = md.fields_by_name[key]
        sub = fd.message_type
        if sub is not None and not sub.full_name.startswith("google.protobuf."):
            for item in value if fd.is_repeated else [value]:
                found |= fields_set(sub, item, f"{prefix}{key}.")
        else:
            found.add(prefix + key)
    return found


def write_methods() -> dict[str, MethodDescriptor]:
    found = {}
    for mod in pkgutil.iter_modules(agentplane.v1.__path__):
        if mod.name.endswith("_pb2"):
            fd = importlib.import_module(f"agentplane.v1.{mod.name}").DESCRIPTOR
            for service in fd.services_by_name.values():
                for md in service.methods:
                    if is_write(md):
                        found[f"{service.name}.{md.name}"] = md
    return found


State = dict[str, Any]
# A valid request (proto names) and the headers to send it with; it may
# prepare what it needs with plain calls first.
Example = Callable[[Server, State], Awaitable[tuple[dict[str, Any], dict[str, str]]]]
EXAMPLES: dict[str, Example] = {}
# What to remember of an answer, by RPC.
CAPTURE: dict[str, Callable[[State, Any], None]] = {}


def example(name: str, capture: Callable[[State, Any], None] | None = None) -> Callable[[Example], Example]:
    def register(fn: Example) -> Example:
        EXAMPLES[name] = fn
        if capture is not None:
            CAPTURE[name] = capture
        return fn

    return register


NONE: dict[str, str] = {}


def naming(name: str, capture: Callable[[State, Any], None] | None = None, **fields: str) -> None:
    """An example that only names what earlier ones made (fields: state keys)."""

    async def make(s: Server, st: State) -> Any:
        return {field: st[key] for field, key in fields.items()}, NONE

    example(name, capture)(make)


AGENT_SESSION = "agh-1"
TRENCHCOAT_SESSION = str(uuid.uuid4())


async def _ok(resp: Any) -> Any:
    assert resp.status_code < 300, resp.text
    return resp.json()


# ---- Agent Runtime (seed 004)
@example("SessionService.CreateSession")
async def _create_session(s: Server, st: State) -> Any:
    for sid in ("alice", "bob"):  # channel members, with no secrets
        await _ok(
            await s.http.post(
                "/sessions", json={"session_id": sid, "session_name": sid, "agent_name": "coder"}
            )
        )
    body = {
        "session_id": AGENT_SESSION,
        "session_name": "Deploy",
        "project_dir": "/src/app",
        "agent_name": "coder",
    }
    return body, NONE


@example("SessionService.UpdateSessionMetadata")
async def _update_session(s: Server, st: State) -> Any:
    return {"session_id": AGENT_SESSION, "session_name": "Deploy again", "project_dir": "/src/other"}, NONE


def _event(session_id: str, **fields: Any) -> dict[str, Any]:
    return {"session_id": session_id, "session_name": "Deploy", "timestamp": "2026-01-01T00:00:00Z", **fields}


@example("EventService.AddSessionEvent")
async def _add_event(s: Server, st: State) -> Any:
    event = _event(
        AGENT_SESSION,
        event_type="post_tool",
        tool_name="Bash",
        tool_input={"command": "deploy"},
        tool_output="deployed",
        error="it failed",
        reason="because",
    )
    return {"session_id": AGENT_SESSION, "event": event}, NONE


@example("EventService.RecordEvent")
async def _record_event(s: Server, st: State) -> Any:
    content = [{"type": "text", "text": "Done."}]
    return {"event": _event("rt-2", event_type="message", role="assistant", content=content)}, NONE


# ---- Agent Tracer (seed 000)
def _ensured(st: State, body: Any) -> None:
    st["task"], st["session"] = body["taskId"], body["sessionId"]


@example("TracerSessionService.EnsureRuntimeSession", _ensured)
async def _ensure(s: Server, st: State) -> Any:
    body = {
        "runtime_source": "claude-plugin",
        "runtime_session_id": "cc-1",
        "title": "deploy with the key",
        "workspace_path": "/src/app",
    }
    return body, NONE


@example("TracerTaskService.StartTask", lambda st, body: st.update(subtask=body["task"]["id"]))
async def _start_task(s: Server, st: State) -> Any:
    body = {
        "title": "Background work",
        "workspace_path": "/src/app",
        "runtime_source": "claude-plugin",
        "summary": "what it does",
        "task_kind": "background",
        "parent_task_id": st["task"],
        "metadata": {"why": "because"},
    }
    return body, NONE


@example("TracerTaskService.LinkTask")
async def _link_task(s: Server, st: State) -> Any:
    return {"task_id": st["subtask"], "title": "Linked work", "parent_task_id": st["task"]}, NONE


def _tracer_events(st: State, kind: str, lane: str) -> Any:
    event = {
        "kind": kind,
        "task_id": st["task"],
        "session_id": st["session"],
        "lane": lane,
        "title": "A step",
        "body": "What happened",
        "file_paths": ["src/app.py"],
        "metadata": {"toolInput": {"command": "deploy"}, "exitCode": 0},
        "relation_label": "follows",
        "relation_explanation": "after the plan",
    }
    return {"events": [event]}, NONE


for _name, _kind, _lane in (
    ("IngestEvents", "action.logged", "implementation"),
    ("IngestConversation", "user.message", "user"),
    ("IngestWorkflow", "plan.logged", "planning"),
    ("IngestToolActivity", "terminal.command", "implementation"),
    ("IngestCoordination", "agent.activity.logged", "coordination"),
    ("IngestLifecycle", "instructions.loaded", "planning"),
):

    async def _ingest(s: Server, st: State, kind: str = _kind, lane: str = _lane) -> Any:
        return _tracer_events(st, kind, lane)

    example(f"TracerIngestService.{_name}")(_ingest)


@example("TracerIngestService.IngestTelemetry")
async def _telemetry(s: Server, st: State) -> Any:
    event = {
        "kind": "token.usage",
        "task_id": st["task"],
        "session_id": st["session"],
        "input_tokens": 10,
        "output_tokens": 5,
        "model": "claude-opus",
        "prompt_id": "p-1",
        "metadata": {"model": "claude-opus", "input_tokens": 10, "output_tokens": 5},
    }
    return {"events": [event]}, NONE


# ---- Verification rules
@example("RuleService.CreateRule", lambda st, body: st.update(rule=body["rule"]["id"]))
async def _create_rule(s: Server, st: State) -> Any:
    body = {
        "name": "run the tests",
        "trigger": {"phrases": ["run the tests"]},
        "expect": {"tool": "command", "command_matches": ["pytest"], "pattern": "tests? passed"},
        "scope": "task",
        "task_id": st["task"],
        "severity": "block",
        "rationale": "tests must run",
    }
    return body, NONE


@example("RuleService.UpdateRule")
async def _update_rule(s: Server, st: State) -> Any:
    return {"rule_id": st["rule"], "name": "run all the tests", "rationale": "they must"}, NONE


@example("RuleService.SuggestRule")
async def _suggest_rule(s: Server, st: State) -> Any:
    body = {
        "name": "read before edit",
        "trigger": {"phrases": ["edit"]},
        "expect": {"tool": "file-read", "pattern": "src/.*", "command_matches": ["cat"]},
        "scope": "global",
        "rationale": "know the file",
    }
    return body, NONE


naming("RuleService.PromoteRule", lambda st, body: st.update(global_rule=body["rule"]["id"]), rule_id="rule")


naming(
    "RuleService.DemoteRule",
    lambda st, body: st.update(rule=body["rule"]["id"]),
    rule_id="global_rule",
    task_id="task",
)


naming("RuleService.ReEvaluateRule", rule_id="rule")


naming("RuleService.CheckStop", session_id="session")


naming("RuleService.DeleteRule", rule_id="rule")


@example("TracerTaskService.CompleteTask")
async def _complete_task(s: Server, st: State) -> Any:
    return {"task_id": st["subtask"], "summary": "all done", "metadata": {"result": "ok"}}, NONE


@example("TracerTaskService.ErrorTask")
async def _error_task(s: Server, st: State) -> Any:
    body = {
        "task_id": st["task"],
        "summary": "it broke",
        "error_message": "boom",
        "metadata": {"at": "deploy"},
    }
    return body, NONE


@example("TracerSessionService.EndRuntimeSession")
async def _end(s: Server, st: State) -> Any:
    return {"runtime_source": "claude-plugin", "runtime_session_id": "cc-1", "summary": "ended"}, NONE


# ---- Trenchcoat (seed 002)
@example("TrenchcoatService.IngestTrenchcoatEvents")
async def _trenchcoat(s: Server, st: State) -> Any:
    data = {"tool_name": "Bash", "tool_input_preview": "deploy"}
    event = {
        "event_type": "tool_use",
        "session_id": TRENCHCOAT_SESSION,
        "timestamp": "2026-01-01T00:00:00Z",
        "data": data,
    }
    return {"events": [event]}, NONE


# ---- Agents API (seed 001)
async def _execution(s: Server) -> str:
    body = await _ok(await s.http.post("/api/v1/executions", json={"name": "plain"}))
    return str(body["execution"]["id"])


@example("ExecutionService.StartExecution", lambda st, body: st.update(execution=body["execution"]["id"]))
async def _start_execution(s: Server, st: State) -> Any:
    return {"name": "Build it", "file_path": "/src/plan.md", "config": {"mode": "fast"}}, NONE


@example("AgentService.StartAgent", lambda st, body: st.update(agent=body["agent"]["id"]))
async def _start_agent(s: Server, st: State) -> Any:
    body = {
        "execution_id": st["execution"],
        "prompt": "Implement it",
        "model": "sonnet",
        "system_prompt": "You are careful",
        "log_path": "/tmp/agent.log",
    }
    return body, NONE


@example("AgentService.SetAgentStreamSummary")
async def _stream_summary(s: Server, st: State) -> Any:
    return {"agent_id": st["agent"], "stream_summary": {"text_blocks": 2}}, NONE


@example("ToolCallService.StartToolCall", lambda st, body: st.update(tool_call=body["tool_call"]["id"]))
async def _start_tool(s: Server, st: State) -> Any:
    return {"agent_id": st["agent"], "tool_name": "Edit", "input": {"file": "src/main.ts"}}, NONE


@example("ToolCallService.CompleteToolCall")
async def _complete_tool(s: Server, st: State) -> Any:
    return {"tool_call_id": st["tool_call"], "output": "edited", "summary": "one edit"}, NONE


@example("ToolCallService.RecordToolCalls")
async def _record_tools(s: Server, st: State) -> Any:
    # gRPC only (see `_send_grpc`): a start, a complete and a fail in one message
    started = [
        await _ok(await s.http.post(f"/api/v1/agents/{st['agent']}/tool-calls", json={"tool_name": "Read"}))
        for _ in range(2)
    ]
    done, failed = (t["tool_call"]["id"] for t in started)
    changes = [
        {"start": {"agent_id": st["agent"], "tool_name": "Bash", "input": {"cmd": "ls"}}},
        {"complete": {"tool_call_id": done, "output": "read it", "summary": "one file"}},
        {"fail": {"tool_call_id": failed, "error": "no such file"}},
    ]
    return {"changes": changes}, NONE


@example("ToolCallService.FailToolCall")
async def _fail_tool(s: Server, st: State) -> Any:
    start = {"tool_name": "Read", "input": {}}
    tool = await _ok(await s.http.post(f"/api/v1/agents/{st['agent']}/tool-calls", json=start))
    return {"tool_call_id": tool["tool_call"]["id"], "error": "not found"}, NONE


@example("AgentService.CompleteAgent")
async def _complete_agent(s: Server, st: State) -> Any:
    body = {"agent_id": st["agent"], "result": "implemented", "result_structured": {"files": 3, "note": "ok"}}
    return body, NONE


@example("AgentService.FailAgent")
async def _fail_agent(s: Server, st: State) -> Any:
    agent = await _ok(
        await s.http.post(f"/api/v1/executions/{st['execution']}/agents", json={"prompt": "p", "model": "m"})
    )
    return {"agent_id": agent["agent"]["id"], "error": "gave up"}, NONE


@example("ExecutionService.CompleteExecution")
async def _complete_execution(s: Server, st: State) -> Any:
    return {"execution_id": st["execution"], "result": {"built": True, "note": "fine"}}, NONE


@example("ExecutionService.FailExecution")
async def _fail_execution(s: Server, st: State) -> Any:
    return {"execution_id": await _execution(s), "error": "it broke"}, NONE


@example("ExecutionService.CancelExecution")
async def _cancel_execution(s: Server, st: State) -> Any:
    return {"execution_id": await _execution(s)}, NONE


# ---- AGH (seed 003)
SOUL = "---\nversion: 1\nrole: reviewer\n---\n\nReview carefully."


@example("AghOperatorService.SetAgentSoul")
async def _set_soul(s: Server, st: State) -> Any:
    return {"agent_name": "coder", "body": SOUL}, NONE


@example("AghAgentService.ValidateAgentSoul")
async def _validate_soul(s: Server, st: State) -> Any:
    return {"agent_name": "coder", "body": SOUL}, identity(AGENT_SESSION)


@example("AghTaskService.CreateAghTask", lambda st, body: st.update(agh_task=body["task"]["id"]))
async def _create_agh_task(s: Server, st: State) -> Any:
    body = {
        "title": "Fix the build",
        "description": "It is red",
        "priority": "high",
        "metadata": {"ticket": "T-1"},
    }
    return body, NONE


def _claimed(st: State, body: Any) -> None:
    st["run"], st["token"] = body["claim"]["run"]["id"], body["claim"]["run"]["claim_token_hash"]


async def _claim(s: Server, st: State) -> None:
    _claimed(
        st,
        await _ok(await s.http.post("/api/agent/tasks/claim-next", json={}, headers=identity(AGENT_SESSION))),
    )


@example("AghAgentService.ClaimNextTaskRun", _claimed)
async def _claim_next(s: Server, st: State) -> Any:
    return {"idempotency_key": "claim-1"}, identity(AGENT_SESSION)


@example("AghAgentService.HeartbeatTaskRun")
async def _heartbeat(s: Server, st: State) -> Any:
    return {"run_id": st["run"], "claim_token_hash": st["token"]}, identity(AGENT_SESSION)


@example("AghAgentService.ReleaseTaskRun")
async def _release(s: Server, st: State) -> Any:
    return {"run_id": st["run"], "claim_token_hash": st["token"], "reason": "later"}, identity(AGENT_SESSION)


@example("AghAgentService.FailTaskRun")
async def _fail_run(s: Server, st: State) -> Any:
    await _claim(s, st)
    body = {"run_id": st["run"], "claim_token_hash": st["token"], "error": "tests fail", "metadata": {"n": 1}}
    return body, identity(AGENT_SESSION)


@example("AghAgentService.CompleteTaskRun")
async def _complete_run(s: Server, st: State) -> Any:
    await _claim(s, st)
    body = {"run_id": st["run"], "claim_token_hash": st["token"], "result": {"fixed": "the build"}}
    return body, identity(AGENT_SESSION)


naming("AghTaskService.QueueAghTaskRun", task_id="agh_task")


naming("AghTaskService.PauseAghTask", task_id="agh_task")


naming("AghTaskService.ResumeAghTask", task_id="agh_task")


@example("AghTaskService.CancelAghTask")
async def _cancel(s: Server, st: State) -> Any:
    return {"task_id": st["agh_task"], "reason": "not needed"}, NONE


@example("AghOperatorService.SetSessionSpawnPolicy")
async def _spawn_policy(s: Server, st: State) -> Any:
    return {"session_id": AGENT_SESSION, "permissions": {"tools": ["bash"]}}, NONE


@example("AghAgentService.SpawnAgentSession")
async def _spawn(s: Server, st: State) -> Any:
    body = {"agent_name": "helper", "name": "Helper", "prompt_overlay": "Be quick", "ttl_seconds": 600}
    body["model"] = "sonnet"
    return body, identity(AGENT_SESSION)


# ---- Channels
def _channel_metadata(kind: str = "status") -> dict[str, Any]:
    return {
        "task_id": "task-1",
        "run_id": "run-1",
        "coordination_channel_id": "ops",
        "correlation_id": "corr-1",
        "message_kind": kind,
        "ext": {"topic": "deploy"},
    }


@example("ChannelService.CreateChannel")
async def _create_channel(s: Server, st: State) -> Any:
    return {"id": "ops", "display_name": "Operations"}, NONE


def _sent(st: State, body: Any) -> None:
    st["message"], st["seq"] = body["message"]["message_id"], body["message"]["seq"]


@example("AghChannelService.SendChannelMessage", _sent)
async def _send(s: Server, st: State) -> Any:
    body = {"channel": "ops", "body": {"text": "deploying"}, "metadata": _channel_metadata()}
    return body, identity("alice")


@example("AghChannelService.ReplyChannelMessage")
async def _reply(s: Server, st: State) -> Any:
    body = {"reply_to_message_id": st["message"], "body": "on it", "metadata": _channel_metadata("reply")}
    return body, identity("bob")


@example("AghChannelService.AckChannelMessages")
async def _ack(s: Server, st: State) -> Any:
    return {"channel": "ops", "seq": st["seq"]}, identity("bob")


@example("ChannelService.PostChannelMessage")
async def _post(s: Server, st: State) -> Any:
    return {"channel": "ops", "body": "from the operator", "metadata": _channel_metadata()}, NONE


# ---- retention (no free text: numbers only)
@example("AdminService.SetRetention")
async def _set_retention(s: Server, st: State) -> Any:
    return {"policy": {"retention_seconds": 0, "quota_events_per_day": 0}}, NONE


# ---- API keys and deletions
@example("ApiKeyService.CreateApiKey", lambda st, body: st.update(key=body["api_key"]["key_id"]))
async def _create_key(s: Server, st: State) -> Any:
    return {"name": "ci key", "scopes": ["read:events"]}, NONE


naming("ApiKeyService.RevokeApiKey", key_id="key")


@example("SessionService.DeleteSession")
async def _delete_session(s: Server, st: State) -> Any:
    return {"session_id": "alice"}, NONE


# ---- sending


def _binding(md: MethodDescriptor) -> tuple[str, str, str] | None:
    rule = md.GetOptions().Extensions[annotations_pb2.http]
    verb = rule.WhichOneof("pattern")
    return None if verb is None else (verb, getattr(rule, verb), rule.body)


async def _send_http(
    s: Server, md: MethodDescriptor, request: dict[str, Any], headers: dict[str, str]
) -> Any:
    verb, template, body_field = _binding(md) or ("", "", "")
    rest = dict(request)
    path = re.sub(r"\{(\w+)\}", lambda m: str(rest.pop(m.group(1))), template)
    body = rest if body_field == "*" else rest.get(body_field) if body_field else None
    resp = await s.http.request(verb.upper(), path, json=body, headers=headers)
    assert resp.status_code < 300, f"{md.full_name}: {resp.status_code} {resp.text}"
    return resp.json() if resp.content else None


async def _send_grpc(s: Server, md: MethodDescriptor, request: dict[str, Any]) -> None:
    from google.protobuf import message_factory

    cls = message_factory.GetMessageClass(md.input_type)
    out = message_factory.GetMessageClass(md.output_type)
    async with s.channel() as channel:
        call = channel.stream_stream(
            method_path(md), request_serializer=cls.SerializeToString, response_deserializer=out.FromString
        )()
        await call.write(json_format.ParseDict(request, cls()))
        await call.done_writing()
        async for _ in call:
            pass
        assert await call.code() == grpc.StatusCode.OK


def _stored_text(settings: Settings) -> dict[str, str]:
    """Every table's rows as text, by table."""
    engine = sa.create_engine(settings.database_url)
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return {
                name: json.dumps([list(row) for row in conn.execute(sa.select(table))], default=str)
                for name, table in meta.tables.items()
            }
    finally:
        engine.dispose()


async def test_every_write_rpc_has_an_example() -> None:
    missing = sorted(set(write_methods()) - set(EXAMPLES))
    assert not missing, f"write RPCs without a redaction example: {missing}"


async def _every_write(server: Server, settings: Settings) -> dict[str, str]:
    """Send every example with the secrets in; then what the tables hold."""
    methods = write_methods()
    state: State = {}
    unset: dict[str, set[str]] = {}
    for name, make in EXAMPLES.items():
        md = methods[name]
        request, headers = await make(server, state)
        # every free-text field gets a secret: an example must set them all
        unset[name] = free_text_fields(md.input_type) - fields_set(md.input_type, request)
        request = inject(md.input_type, request)
        if _binding(md) is None:
            await _send_grpc(server, md, request)
            continue
        answer = await _send_http(server, md, request, headers)
        if name in CAPTURE:  # the Agent Tracer family's answers are {"ok", "data"}
            CAPTURE[name](state, answer["data"] if "ok" in answer else answer)
    assert {name: paths for name, paths in unset.items() if paths} == {}
    return _stored_text(settings)


def _leaks(stored: dict[str, str]) -> dict[str, list[str]]:
    found = {table: [s for s in FOUND + tuple(NAMED.values()) if s in text] for table, text in stored.items()}
    return {table: secrets for table, secrets in found.items() if secrets}


async def test_no_secret_of_any_write_reaches_storage(server: Server, settings: Settings) -> None:
    stored = await _every_write(server, settings)
    assert _leaks(stored) == {}
    assert "".join(stored.values()).count("[REDACTED]") > 100  # the secrets were there, and replaced
    assert "log_entries" in stored


class TestRedactionOff:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        settings.redact = False
        return settings

    async def test_secrets_are_stored_as_sent(self, server: Server, settings: Settings) -> None:
        leaks = _leaks(await _every_write(server, settings))
        assert {"log_entries", "tracer_tasks", "agh_tasks", "channel_messages"} <= set(leaks)
        # Every table holds the shapes every field got; together they hold them all.
        assert all({"hunter22", "AKIAIOSFODNN7EXAMPLE"} <= set(secrets) for secrets in leaks.values())
        assert set(FOUND) <= {secret for secrets in leaks.values() for secret in secrets}


async def test_tracer_title_and_slug(server: Server) -> None:
    """The first prompt becomes a task's title and slug: redacted, both."""
    prompt = "deploy with AWS key AKIAIOSFODNN7EXAMPLE and password=hunter2"
    body = {"runtimeSource": "claude-plugin", "runtimeSessionId": "cc-9", "title": prompt}
    ensured = await _ok(await server.http.post("/ingest/v1/sessions/ensure", json=body))
    task = (await _ok(await server.http.get(f"/api/v1/tasks/{ensured['data']['taskId']}")))["data"]["task"]
    assert task["title"] == "deploy with AWS key [REDACTED] and password=[REDACTED]"
    assert task["slug"] == "deploy-with-aws-key-redacted-and-password-redacted"


async def test_grpc_writes_are_redacted_too(server: Server, settings: Settings) -> None:
    """Over gRPC the free-form JSON arrives decoded (no kept JSON): a string
    Value, a Struct and plain strings are redacted alike."""
    from agentplane.v1 import runtime_pb2, runtime_pb2_grpc, tracer_pb2, tracer_pb2_grpc

    async with server.channel() as channel:
        ensure = tracer_pb2.EnsureRuntimeSessionRequest(
            runtime_source="claude-plugin", runtime_session_id="cc-g", title="Deploy" + SECRETS
        )
        await tracer_pb2_grpc.TracerSessionServiceStub(channel).EnsureRuntimeSession(ensure)
        sessions = runtime_pb2_grpc.SessionServiceStub(channel)
        await sessions.CreateSession(runtime_pb2.CreateSessionRequest(session_id="g-1", session_name="G"))
        event = json_format.ParseDict(
            {
                "event_type": "post_tool",
                "session_id": "g-1",
                "session_name": "G" + SECRETS,
                "timestamp": "2026-01-01T00:00:00Z",
                "tool_name": "Bash",
                "tool_input": {"command": "deploy" + SECRETS, **NAMED},
                "tool_output": "done" + SECRETS,
            },
            runtime_pb2.Event(),
        )
        add = runtime_pb2.AddSessionEventRequest(session_id="g-1", event=event)
        await runtime_pb2_grpc.EventServiceStub(channel).AddSessionEvent(add)
    stored = _stored_text(settings)
    assert _leaks(stored) == {}
    stored_event = (await server.http.get("/sessions/g-1/events")).json()["events"][0]
    assert stored_event["tool_input"]["api_token"] == "[REDACTED]"
    assert stored_event["tool_output"].startswith(
        "done AWS [REDACTED], GitHub [REDACTED], password=[REDACTED]"
    )
