"""What a rule is made of: input validation (worded as upstream's zod
schemas, with JSON paths), the signature, and the JSON view.

A rule is invalid, and nothing is written, when: its name is empty; a
trigger has no phrase or a blank one; `triggerOn`, `scope`, `severity` or
the expected tool is not one of its values; a task rule has no `taskId` or
a global rule has one; the expectation has none of tool, commandMatches and
pattern; a regular expression does not compile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from service.base.errors import InvalidArgument
from service.domain.tracer.model import (
    MIN_ONE_CHAR,
    MIN_ONE_ITEM,
    REQUIRED,
    Violations,
    enum_error,
    reject_nul,
)
from service.domain.tracer.reasons import TracerReason
from service.domain.tracer.rules.evaluator import ACTIONS, ASSISTANT, USER, compile_regex, normalize_action
from service.store.tracer.rules import RuleRecord

GLOBAL, TASK = "global", "task"
SCOPES = (GLOBAL, TASK)
HUMAN, AGENT = "human", "agent"
SOURCES = (HUMAN, AGENT)
SEVERITIES = ("info", "warn", "block")
BLOCK = "block"
TRIGGER_ON = (USER, ASSISTANT)
EXPECT_REQUIRED = "Expect must include at least one of tool, commandMatches or pattern"
EXPECT_AFTER_UPDATE = (
    "Rule expect must include at least one of action, pattern, or commandMatches after update"
)
TASK_ID_REQUIRED = "taskId is required for task-scoped rules"
TASK_ID_FORBIDDEN = "taskId must be omitted for global rules"
EMPTY_PATCH = "At least one field must be provided"


class _Keep:
    """A PATCH field left out (as opposed to null, which removes it)."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()


@dataclass
class RuleInput:
    """A rule as sent to create or suggest (None: absent)."""

    name: str
    scope: str
    # None: no trigger; a list (maybe empty, which is refused): the phrases.
    phrases: list[str] | None = None
    trigger_on: str | None = None
    # None: no `expect` at all (refused).
    expect: ExpectInput | None = None
    task_id: str | None = None
    severity: str | None = None
    rationale: str | None = None


@dataclass
class ExpectInput:
    # `tool`, or `action` (the suggestions endpoint's name), as sent.
    tool: str | None = None
    tool_key: str = "tool"
    command_matches: list[str] = field(default_factory=list)
    pattern: str | None = None


@dataclass
class RulePatch:
    """A PATCH body: each field KEEP when left out, None when null."""

    name: Any = KEEP
    trigger: Any = KEEP
    trigger_on: Any = KEEP
    # None when left out; else {json key: value or None}.
    expect: dict[str, Any] | None = None
    severity: Any = KEEP
    rationale: Any = KEEP

    def empty(self) -> bool:
        return self.expect is None and all(
            v is KEEP for v in (self.name, self.trigger, self.trigger_on, self.severity, self.rationale)
        )


def _trimmed(v: Violations, path: str, value: str | None) -> str | None:
    """A string that must keep at least one character once trimmed."""
    if value is None:
        return None
    reject_nul(v, path, value)
    trimmed = value.strip()
    if not trimmed:
        v.add(path, MIN_ONE_CHAR)
    return trimmed


def _phrases(v: Violations, phrases: Any) -> list[str]:
    if not isinstance(phrases, list):
        v.add("trigger.phrases", REQUIRED if phrases is None else "Expected array")
        return []
    if not phrases:
        v.add("trigger.phrases", MIN_ONE_ITEM)
    out = []
    for i, phrase in enumerate(phrases):
        if not isinstance(phrase, str):
            v.add(f"trigger.phrases.{i}", "Expected string")
            continue
        out.append(_trimmed(v, f"trigger.phrases.{i}", phrase) or "")
    return out


def _regex(v: Violations, path: str, source: str) -> None:
    if source and compile_regex(source) is None:
        v.add(path, f"Invalid regular expression: {source}")


def _action(v: Violations, path: str, tool: str | None) -> str | None:
    """The expected action for a tool or action name (None when absent)."""
    if tool is None:
        return None
    action = normalize_action(tool)
    if action is None:
        v.add(path, enum_error(ACTIONS, tool))
    return action


def _command_matches(v: Violations, entries: Any) -> list[str] | None:
    if entries is None:
        return None
    if not isinstance(entries, list):
        v.add("expect.commandMatches", "Expected array")
        return None
    out = []
    for i, entry in enumerate(entries):
        path = f"expect.commandMatches.{i}"
        if not isinstance(entry, str):
            v.add(path, "Expected string")
            continue
        trimmed = _trimmed(v, path, entry) or ""
        _regex(v, path, trimmed)
        out.append(trimmed)
    return out or None


def _pattern(v: Violations, pattern: Any) -> str | None:
    if pattern is None:
        return None
    if not isinstance(pattern, str):
        v.add("expect.pattern", "Expected string")
        return None
    trimmed = _trimmed(v, "expect.pattern", pattern)
    _regex(v, "expect.pattern", trimmed or "")
    return trimmed or None


def signature(
    phrases: list[str] | None, action: str | None, command_matches: list[str] | None, pattern: str | None
) -> str:
    """Upstream's signature: deterministic JSON (not a hash) of the contract."""
    return orjson.dumps(
        {
            "phrases": sorted(phrases) if phrases else None,
            "tool": action,
            "commandMatches": sorted(command_matches) if command_matches else None,
            "pattern": pattern,
        }
    ).decode()


def new_rule(data: RuleInput, *, rule_id: str, source: str, now: str) -> RuleRecord:
    """The rule to store, or InvalidArgument (`validation_error`) naming every bad field."""
    v = Violations()
    name = _trimmed(v, "name", data.name) if data.name else None
    if not data.name:
        v.add("name", REQUIRED)
    phrases = _phrases(v, data.phrases) if data.phrases is not None else None
    v.optional_enum("triggerOn", data.trigger_on, TRIGGER_ON)
    action = command_matches = pattern = None
    if data.expect is None:
        v.add("expect", REQUIRED)
    else:
        e = data.expect
        action = _action(v, f"expect.{e.tool_key}", e.tool)
        command_matches = _command_matches(v, e.command_matches)
        pattern = _pattern(v, e.pattern)
        if e.tool is None and not e.command_matches and e.pattern is None:
            v.add("expect", EXPECT_REQUIRED)
    v.enum("scope", data.scope, SCOPES)
    task_id = _trimmed(v, "taskId", data.task_id)
    if data.scope == TASK and not data.task_id:
        v.add("taskId", TASK_ID_REQUIRED)
    elif data.scope == GLOBAL and data.task_id is not None:
        v.add("taskId", TASK_ID_FORBIDDEN)
    v.optional_enum("severity", data.severity, SEVERITIES)
    rationale = _trimmed(v, "rationale", data.rationale)
    v.check()
    return RuleRecord(
        id=rule_id,
        name=name or "",
        phrases=phrases,
        trigger_on=data.trigger_on,
        action=action,
        command_matches=command_matches,
        pattern=pattern,
        scope=data.scope,
        task_id=task_id if data.scope == TASK else None,
        source=source,
        severity=data.severity or "info",
        rationale=rationale,
        signature=signature(phrases, action, command_matches, pattern),
        created_at=now,
    )


def patched(rule: RuleRecord, patch: RulePatch) -> RuleRecord:
    """The rule with the patch applied (validated as on create; scope and task stay)."""
    v = Violations()
    if patch.empty():
        v.add("", EMPTY_PATCH)
        v.check()
    out = RuleRecord(**rule.__dict__)
    if patch.name is not KEEP:
        if not isinstance(patch.name, str):
            v.add("name", "Expected string")
        else:
            out.name = _trimmed(v, "name", patch.name) or ""
    if patch.trigger is not KEEP:
        if patch.trigger is None:
            out.phrases = None
        elif isinstance(patch.trigger, dict):
            out.phrases = _phrases(v, patch.trigger.get("phrases"))
        else:
            v.add("trigger", "Expected object, received " + type(patch.trigger).__name__)
    if patch.trigger_on is not KEEP:
        if patch.trigger_on is not None and patch.trigger_on not in TRIGGER_ON:
            v.add("triggerOn", enum_error(TRIGGER_ON, patch.trigger_on))
        else:
            out.trigger_on = patch.trigger_on
    if patch.expect is not None:
        _patch_expect(v, out, patch.expect)
    if patch.severity is not KEEP:
        if patch.severity not in SEVERITIES:
            v.add("severity", enum_error(SEVERITIES, patch.severity))
        else:
            out.severity = patch.severity
    if patch.rationale is not KEEP:
        if patch.rationale is None:
            out.rationale = None
        elif not isinstance(patch.rationale, str):
            v.add("rationale", "Expected string")
        else:
            out.rationale = _trimmed(v, "rationale", patch.rationale)
    v.check()
    if not (out.action or out.command_matches or out.pattern):
        raise InvalidArgument(EXPECT_AFTER_UPDATE, reason=TracerReason.BAD_REQUEST)
    out.signature = signature(out.phrases, out.action, out.command_matches, out.pattern)
    return out


def _patch_expect(v: Violations, out: RuleRecord, expect: dict[str, Any]) -> None:
    for key in ("tool", "action"):
        if key in expect:
            tool = expect[key]
            if tool is None:
                out.action = None
            elif not isinstance(tool, str):
                v.add(f"expect.{key}", "Expected string")
            else:
                out.action = _action(v, f"expect.{key}", tool)
    if "commandMatches" in expect:
        entries = expect["commandMatches"]
        if entries is not None and not entries:
            v.add("expect.commandMatches", MIN_ONE_ITEM)
        out.command_matches = _command_matches(v, entries)
    if "pattern" in expect:
        out.pattern = _pattern(v, expect["pattern"])


def rule_view(rule: RuleRecord) -> dict[str, Any]:
    """The rule as the API shows it (optional fields only when set)."""
    expect: dict[str, Any] = {}
    if rule.action is not None:
        expect["tool"] = rule.action
    if rule.command_matches:
        expect["commandMatches"] = list(rule.command_matches)
    if rule.pattern is not None:
        expect["pattern"] = rule.pattern
    view: dict[str, Any] = {"id": rule.id, "name": rule.name}
    if rule.phrases is not None:
        view["trigger"] = {"phrases": list(rule.phrases)}
    if rule.trigger_on is not None:
        view["triggerOn"] = rule.trigger_on
    view["expect"] = expect
    view["scope"] = rule.scope
    if rule.task_id is not None:
        view["taskId"] = rule.task_id
    view["source"] = rule.source
    view["severity"] = rule.severity
    if rule.rationale is not None:
        view["rationale"] = rule.rationale
    view["signature"] = rule.signature
    view["createdAt"] = rule.created_at
    return view
