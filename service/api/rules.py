"""RuleService (seed 000's verification rules): proto <-> domain.

The domain speaks upstream's JSON views (camelCase dicts); responses are
built from them with `from_dict`. PATCH fields that `null` removes arrive as
google.protobuf.Value / Struct, so that "left out" and "null" differ.
"""

from __future__ import annotations

from typing import Any

from agentplane.v1 import rules_pb2 as pb
from google.protobuf.message import Message

from service.codec import from_dict, struct_to_python, value_to_python
from service.domain.tracer.rules import catalog, live, reads, replay, stop
from service.domain.tracer.rules.spec import KEEP, ExpectInput, RuleInput, RulePatch
from service.rpc.context import CallContext
from service.store.store import Store


def _opt(msg: Message, name: str) -> Any:
    """A proto3 `optional` field's value, or None when absent."""
    return getattr(msg, name) if msg.HasField(name) else None


def _value(msg: Message, name: str) -> Any:
    """A google.protobuf.Value field: KEEP when absent, else its value (None for null)."""
    return value_to_python(getattr(msg, name)) if msg.HasField(name) else KEEP


def rule_input(req: pb.CreateRuleRequest | pb.SuggestRuleRequest) -> RuleInput:
    expect = None
    if req.HasField("expect"):
        e = req.expect
        tool_key = "action" if e.HasField("action") and not e.HasField("tool") else "tool"
        expect = ExpectInput(
            tool=_opt(e, tool_key),
            tool_key=tool_key,
            command_matches=list(e.command_matches),
            pattern=_opt(e, "pattern"),
        )
    return RuleInput(
        name=req.name,
        scope=req.scope,
        phrases=list(req.trigger.phrases) if req.HasField("trigger") else None,
        trigger_on=_opt(req, "trigger_on"),
        expect=expect,
        task_id=_opt(req, "task_id"),
        severity=_opt(req, "severity"),
        rationale=_opt(req, "rationale"),
    )


class RuleServicer:
    service = pb.DESCRIPTOR.services_by_name["RuleService"]

    def __init__(self, store: Store) -> None:
        self.store = store
        live.install()

    async def ListRules(self, req: pb.ListRulesRequest, ctx: CallContext) -> pb.ListRulesResponse:
        rules = await catalog.list_rules(
            self.store,
            ctx.workspace,
            scope=_opt(req, "scope"),
            task_id=_opt(req, "task_id"),
            source=_opt(req, "source"),
        )
        return from_dict({"rules": rules}, pb.ListRulesResponse)

    async def CreateRule(self, req: pb.CreateRuleRequest, ctx: CallContext) -> pb.CreateRuleResponse:
        rule = await catalog.create_rule(self.store, ctx.workspace, rule_input(req))
        return from_dict({"rule": rule}, pb.CreateRuleResponse)

    async def SuggestRule(self, req: pb.SuggestRuleRequest, ctx: CallContext) -> pb.SuggestRuleResponse:
        rule, created = await catalog.suggest_rule(self.store, ctx.workspace, rule_input(req))
        return from_dict({"rule": rule, "created": created}, pb.SuggestRuleResponse)

    async def UpdateRule(self, req: pb.UpdateRuleRequest, ctx: CallContext) -> pb.UpdateRuleResponse:
        patch = RulePatch(
            name=req.name if req.HasField("name") else KEEP,
            trigger=_value(req, "trigger"),
            trigger_on=_value(req, "trigger_on"),
            expect=struct_to_python(req.expect) if req.HasField("expect") else None,
            severity=req.severity if req.HasField("severity") else KEEP,
            rationale=_value(req, "rationale"),
        )
        updated = await catalog.update_rule(self.store, ctx.workspace, req.rule_id, patch)
        return from_dict(
            {"rule": updated.rule, "signatureChanged": updated.signature_changed}, pb.UpdateRuleResponse
        )

    async def DeleteRule(self, req: pb.DeleteRuleRequest, ctx: CallContext) -> pb.DeleteRuleResponse:
        await catalog.delete_rule(self.store, ctx.workspace, req.rule_id)
        return pb.DeleteRuleResponse(deleted=True)

    async def PromoteRule(self, req: pb.PromoteRuleRequest, ctx: CallContext) -> pb.PromoteRuleResponse:
        rule = await catalog.promote_rule(self.store, ctx.workspace, req.rule_id)
        return from_dict({"rule": rule}, pb.PromoteRuleResponse)

    async def DemoteRule(self, req: pb.DemoteRuleRequest, ctx: CallContext) -> pb.DemoteRuleResponse:
        rule = await catalog.demote_rule(self.store, ctx.workspace, req.rule_id, _opt(req, "task_id"))
        return from_dict({"rule": rule}, pb.DemoteRuleResponse)

    async def ReEvaluateRule(
        self, req: pb.ReEvaluateRuleRequest, ctx: CallContext
    ) -> pb.ReEvaluateRuleResponse:
        result = await replay.replay(self.store, ctx.workspace, req.rule_id)
        return pb.ReEvaluateRuleResponse(
            turns_considered=result.turns_considered,
            turns_evaluated=result.turns_evaluated,
            verdicts_created=result.verdicts_created,
        )

    async def ListTaskRules(self, req: pb.ListTaskRulesRequest, ctx: CallContext) -> pb.ListTaskRulesResponse:
        return from_dict(
            await catalog.task_rules(self.store, ctx.workspace, req.task_id), pb.ListTaskRulesResponse
        )

    async def GetVerdictCounts(
        self, req: pb.GetVerdictCountsRequest, ctx: CallContext
    ) -> pb.GetVerdictCountsResponse:
        counts = await reads.verdict_counts(self.store, ctx.workspace, req.task_id)
        return from_dict({"counts": counts}, pb.GetVerdictCountsResponse)

    async def GetRuleEvidence(
        self, req: pb.GetRuleEvidenceRequest, ctx: CallContext
    ) -> pb.GetRuleEvidenceResponse:
        found = await reads.evidence(self.store, ctx.workspace, req.task_id, req.rule_id)
        return from_dict(found, pb.GetRuleEvidenceResponse)

    async def CheckStop(self, req: pb.CheckStopRequest, ctx: CallContext) -> pb.CheckStopResponse:
        check = await stop.check_stop(
            self.store,
            ctx.workspace,
            session_id=_opt(req, "session_id"),
            runtime_source=_opt(req, "runtime_source"),
            runtime_session_id=_opt(req, "runtime_session_id"),
        )
        return pb.CheckStopResponse(
            may_stop=check.may_stop,
            reason=check.reason,
            blocking_rules=[pb.BlockingRule(rule_id=i, name=n, verdict=v) for i, n, v in check.blocking],
        )
