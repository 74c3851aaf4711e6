"""RuleService through the generated gRPC stubs: the same operations as the
JSON routes, typed, with google.rpc error details."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from agentplane.v1 import rules_pb2 as pb
from agentplane.v1 import rules_pb2_grpc, tracer_pb2, tracer_pb2_grpc
from google.protobuf import struct_pb2

from tests.conftest import Server
from tests.grpc.test_runtime_grpc import assert_reason, failure


@pytest.fixture
async def channel(server: Server) -> AsyncIterator[grpc.aio.Channel]:
    channel = server.channel()
    try:
        yield channel
    finally:
        await channel.close()


async def test_rules_over_grpc(channel: grpc.aio.Channel) -> None:
    rules = rules_pb2_grpc.RuleServiceStub(channel)
    sessions = tracer_pb2_grpc.TracerSessionServiceStub(channel)
    ingest = tracer_pb2_grpc.TracerIngestServiceStub(channel)
    ensured = await sessions.EnsureRuntimeSession(
        tracer_pb2.EnsureRuntimeSessionRequest(runtime_source="codex", runtime_session_id="rs", title="T")
    )
    created = await rules.CreateRule(
        pb.CreateRuleRequest(
            name="run tests",
            trigger=pb.RuleTrigger(phrases=["run the tests"]),
            expect=pb.RuleExpect(tool="Bash", command_matches=["pytest"]),
            scope="task",
            task_id=ensured.task_id,
            severity="block",
        )
    )
    rule = created.rule
    assert (rule.scope, rule.task_id, rule.source, rule.expect.tool) == (
        "task",
        ensured.task_id,
        "human",
        "command",
    )
    listed = await rules.ListRules(pb.ListRulesRequest(scope="task"))
    assert list(listed.rules) == [rule]

    def say(kind: str, text: str) -> tracer_pb2.TracerEventInput:
        return tracer_pb2.TracerEventInput(
            kind=kind, task_id=ensured.task_id, lane="user", session_id=ensured.session_id, body=text
        )

    await ingest.IngestConversation(
        tracer_pb2.IngestConversationRequest(events=[say("user.message", "run the tests")])
    )
    check = await rules.CheckStop(pb.CheckStopRequest(runtime_source="codex", runtime_session_id="rs"))
    assert not check.may_stop and [b.rule_id for b in check.blocking_rules] == [rule.id]
    await ingest.IngestConversation(
        tracer_pb2.IngestConversationRequest(events=[say("assistant.response", "ok")])
    )
    counts = await rules.GetVerdictCounts(pb.GetVerdictCountsRequest(task_id=ensured.task_id))
    assert counts.counts == pb.VerdictCounts(contradicted=1)

    patch = struct_pb2.Struct()
    patch.update({"commandMatches": None})
    updated = await rules.UpdateRule(
        pb.UpdateRuleRequest(rule_id=rule.id, expect=patch, rationale=struct_pb2.Value(string_value="CI"))
    )
    assert updated.signature_changed and list(updated.rule.expect.command_matches) == []
    assert updated.rule.rationale == "CI"
    replayed = await rules.ReEvaluateRule(pb.ReEvaluateRuleRequest(rule_id=rule.id))
    assert (replayed.turns_considered, replayed.verdicts_created) == (1, 1)

    f = await failure(
        rules.CreateRule(pb.CreateRuleRequest(name="x", expect=pb.RuleExpect(pattern="("), scope="task"))
    )
    assert f.code == grpc.StatusCode.INVALID_ARGUMENT
    assert f.violations == [
        ("expect.pattern", "Invalid regular expression: ("),
        ("taskId", "taskId is required for task-scoped rules"),
    ]
    f = await failure(rules.DeleteRule(pb.DeleteRuleRequest(rule_id="nope")))
    assert_reason(f, grpc.StatusCode.NOT_FOUND, "RULE_NOT_FOUND", "Rule nope not found")
    promoted = await rules.PromoteRule(pb.PromoteRuleRequest(rule_id=rule.id))
    f = await failure(rules.PromoteRule(pb.PromoteRuleRequest(rule_id=promoted.rule.id)))
    assert_reason(
        f, grpc.StatusCode.FAILED_PRECONDITION, "BAD_REQUEST", "Only task-scoped rules can be promoted"
    )
