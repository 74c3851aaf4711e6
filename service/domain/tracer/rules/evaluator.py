"""Matching rules against a turn's events, exactly as upstream (reference
§8.2 to §8.4). Pure functions over plain values: no storage, no I/O.

A rule applies to a turn when one of its trigger phrases occurs (as a
case-insensitive substring, not preceded by a negation within 20
characters) in the user's request or the assistant's answer, or always when
it has no trigger. Its verdict then depends on the turn's tool calls,
inferred from the events' metadata: `verified` when a call of the expected
kind matches, `contradicted` when none does, `unverifiable` when a regular
expression does not compile.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

VERIFIED, CONTRADICTED, UNVERIFIABLE = "verified", "contradicted", "unverifiable"
STATUSES = (VERIFIED, UNVERIFIABLE, CONTRADICTED)
# Worse verdicts rank higher: a turn's aggregate is its worst verdict.
_RANK = {VERIFIED: 0, UNVERIFIABLE: 1, CONTRADICTED: 2}
ACTIONS = ("command", "file-read", "file-write", "web")
TRIGGER, EXPECT_FULFILLED = "trigger", "expect-fulfilled"
USER, ASSISTANT = "user", "assistant"
USER_MESSAGE, ASSISTANT_RESPONSE = "user.message", "assistant.response"

# A phrase preceded by one of these within NEGATION_WINDOW characters does
# not trigger ("I did not run the tests").
NEGATION_WINDOW = 20
NEGATIONS = (
    "did not ",
    "didn't ",
    "not ",
    "haven't ",
    "have not ",
    "never ",
    "no ",
    "couldn't ",
    "could not ",
)
# How much of a command or path a per-event `pattern` is matched against.
ENFORCEMENT_TEXT_LIMIT = 4096
# Verdict details keep at most this many distinct tool calls.
DETAIL_CALLS = 20

# canonicalizeToolName (reference §8.4), by lower-cased name.
_CANONICAL: dict[str, str] = {}
for _canonical, _names in {
    "Bash": (
        "bash shell terminal terminal.command command command-run run-command run_command"
        " run-test run_test run-build run_build run-lint run_lint"
    ),
    "Read": "file file-read read-file view-file open-file read",
    "Edit": "edit file-write write-file modify-file edit-file applypatch apply_patch apply-patch patch",
    "MultiEdit": "multiedit multi_edit multi-edit",
    "Write": "write",
    "Grep": "grep",
    "Glob": "glob",
    "LS": "ls list",
    "Task": "task",
    "TodoWrite": "todowrite todo_write",
    "WebSearch": "web websearch web_search search-web",
    "WebFetch": "webfetch web_fetch web-fetch",
}.items():
    _CANONICAL.update(dict.fromkeys(_names.split(), _canonical))
_ACTION_OF_TOOL = {
    "Bash": "command",
    "Read": "file-read",
    "Grep": "file-read",
    "Glob": "file-read",
    "LS": "file-read",
    "Edit": "file-write",
    "MultiEdit": "file-write",
    "Write": "file-write",
    "WebFetch": "web",
    "WebSearch": "web",
}
# metadata.subtypeKey (lower-cased, without spaces, ".", "_", "-") -> action.
_SUBTYPE_ACTIONS = {
    **dict.fromkeys(("runcommand", "runtest", "runbuild", "runlint", "verify", "shellprobe"), "command"),
    "readfile": "file-read",
    **dict.fromkeys(("modifyfile", "createfile", "deletefile", "renamefile", "applypatch"), "file-write"),
    **dict.fromkeys(("websearch", "webfetch"), "web"),
}
_SUBTYPE_NOISE = re.compile(r"[\s._-]+")


def canonicalize_tool_name(name: str) -> str:
    """`bash`, `run_test`, … -> `Bash`; unknown names come back trimmed, case kept."""
    trimmed = name.strip()
    return _CANONICAL.get(trimmed.lower(), trimmed)


def normalize_action(value: str | None) -> str | None:
    """An action (`command`, `file-read`, `file-write`, `web`) for an action
    or a tool name; None for a tool that is none of them (`TodoWrite`, `mcp__*`)."""
    if value is None:
        return None
    trimmed = value.strip()
    if trimmed in ACTIONS:
        return trimmed
    return _ACTION_OF_TOOL.get(canonicalize_tool_name(trimmed))


@lru_cache(maxsize=4096)
def compile_regex(source: str) -> re.Pattern[str] | None:
    """The regular expression (no flags), or None when it does not compile."""
    try:
        return re.compile(source)
    except (re.error, RecursionError, OverflowError):
        return None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """What an event did, as far as rules are concerned."""

    tool: str
    command: str | None = None
    file_path: str | None = None
    # The tool's action, None when it has none.
    action: str | None = None

    @property
    def target(self) -> str:
        """What a `pattern` is matched against."""
        return self.file_path or self.command or ""


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _semantic_action(metadata: dict[str, Any]) -> str | None:
    subtype = metadata.get("subtypeKey")
    if isinstance(subtype, str):
        found = _SUBTYPE_ACTIONS.get(_SUBTYPE_NOISE.sub("", subtype.lower()))
        if found is not None:
            return found
    family = metadata.get("toolFamily")
    if family == "terminal":
        return "command"
    if family == "file":
        return "file-read" if metadata.get("operation") in ("observe", "read") else "file-write"
    if family == "web":
        return "web"
    return None


def infer_tool_call(view: dict[str, Any]) -> ToolCall | None:
    """inferToolCall: the tool call a timeline event records, if any."""
    metadata = view.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
    tool: str | None = None
    for key in ("toolName", "sourceTool"):
        value = metadata.get(key)
        if isinstance(value, str) and value.strip():
            tool = value
            break
    if tool is None:
        tool = _semantic_action(metadata)
    if tool is None:
        if view.get("kind") != "terminal.command":
            return None
        tool = "Bash"
    paths = metadata.get("filePaths")
    first = paths[0] if isinstance(paths, list) and paths and isinstance(paths[0], str) else None
    canonical, action = _tool(tool)
    return ToolCall(
        canonical,
        command=_text(metadata.get("command")),
        file_path=first if first is not None else _text(metadata.get("filePath")),
        action=action,
    )


@lru_cache(maxsize=1024)
def _tool(name: str) -> tuple[str, str | None]:
    """(canonical name, action) of a tool name (a turn repeats a few names many times)."""
    canonical = canonicalize_tool_name(name)
    return canonical, normalize_action(canonical)


class RuleLike(Protocol):
    """What evaluation reads of a rule (service.store.tracer.rules.RuleRecord)."""

    @property
    def id(self) -> str: ...
    @property
    def phrases(self) -> Sequence[str] | None: ...
    @property
    def trigger_on(self) -> str | None: ...
    @property
    def action(self) -> str | None: ...
    @property
    def command_matches(self) -> Sequence[str] | None: ...
    @property
    def pattern(self) -> str | None: ...


@dataclass(slots=True)
class Verdict:
    rule_id: str
    status: str
    matched_phrase: str | None = None
    expected_pattern: str | None = None
    # The candidates' distinct commands or targets (TurnCalls.texts).
    actual_tool_calls: list[str] = field(default_factory=list)
    matched_tool_calls: list[str] | None = None

    def detail(self) -> dict[str, Any]:
        """The stored detail (reference §8.2 step 4; at most DETAIL_CALLS distinct calls)."""
        out: dict[str, Any] = {"actualToolCalls": self.actual_tool_calls[:DETAIL_CALLS]}
        if self.matched_phrase is not None:
            out["matchedPhrase"] = self.matched_phrase
        if self.expected_pattern is not None:
            out["expectedPattern"] = self.expected_pattern
        if self.matched_tool_calls is not None:
            out["matchedToolCalls"] = self.matched_tool_calls[:DETAIL_CALLS]
        return out


def _phrase_in(phrases: Sequence[str], text: str) -> str | None:
    """The first phrase (in list order) found in `text`, unless a negation
    precedes its first occurrence; then None, and no other phrase is tried."""
    lower = text.lower()
    for phrase in phrases:
        index = lower.find(phrase.lower())
        if index < 0:
            continue
        window = lower[max(0, index - NEGATION_WINDOW) : index]
        return None if any(marker in window for marker in NEGATIONS) else phrase
    return None


def matched_trigger(rule: RuleLike, user_text: str | None, assistant_text: str | None) -> str | None:
    """The phrase that triggers the rule in this turn (None: the rule does
    not apply). Only called for rules that have phrases."""
    phrases = rule.phrases or ()
    if rule.trigger_on == USER:
        sources: tuple[str | None, ...] = (user_text,)
    elif rule.trigger_on == ASSISTANT:
        sources = (assistant_text,)
    else:
        sources = (user_text, assistant_text)
    for source in sources:
        found = _phrase_in(phrases, source or "")
        if found is not None:
            return found
    return None


class TurnCalls:
    """A turn's tool calls, with the distinct texts rules match them by,
    worked out once per turn for all the rules."""

    def __init__(self, calls: Iterable[ToolCall]) -> None:
        self.all = list(calls)
        self._by_action: dict[str, list[ToolCall]] = {}
        for call in self.all:
            if call.action is not None:
                self._by_action.setdefault(call.action, []).append(call)
        self._texts: dict[tuple[str | None, bool], list[str]] = {}

    def candidates(self, action: str | None) -> list[ToolCall]:
        """The calls of that action (every call when None)."""
        return self.all if action is None else self._by_action.get(action, [])

    def texts(self, action: str | None, commands: bool) -> list[str]:
        """The distinct commands (`commands`) or targets of the candidates, in order."""
        key = (action, commands)
        found = self._texts.get(key)
        if found is None:
            calls = self.candidates(action)
            found = list(dict.fromkeys((c.command or "") if commands else c.target for c in calls))
            self._texts[key] = found
        return found


@lru_cache(maxsize=4096)
def compile_all(sources: tuple[str, ...]) -> tuple[re.Pattern[str], ...] | None:
    """The regular expressions, or None when one of them does not compile."""
    regexes = tuple(compile_regex(source) for source in sources)
    return None if any(r is None for r in regexes) else tuple(r for r in regexes if r is not None)


def matching(regexes: Sequence[re.Pattern[str]], texts: list[str]) -> list[str]:
    """The texts (in order) one of the regexes finds a match in. One pass per
    regex keeps each search on its fast path (a literal prefix is searched
    for directly, which a joined alternation would prevent)."""
    if len(regexes) == 1:
        search = regexes[0].search
        return [t for t in texts if search(t)]
    hits: set[str] = set()
    for regex in regexes:
        search = regex.search
        hits.update([t for t in texts if t not in hits and search(t)])
    return [t for t in texts if t in hits]


def evaluate_rule(
    rule: RuleLike, user_text: str | None, assistant_text: str | None, calls: TurnCalls
) -> Verdict | None:
    """evaluateTurn for one rule: its verdict on the turn, or None when its
    trigger did not match."""
    phrase = matched_trigger(rule, user_text, assistant_text) if rule.phrases else None
    if rule.phrases and phrase is None:
        return None
    verdict = Verdict(rule.id, UNVERIFIABLE, matched_phrase=phrase)
    if rule.command_matches and rule.action in (None, "command"):
        verdict.expected_pattern = " | ".join(rule.command_matches)
        verdict.actual_tool_calls = calls.texts(rule.action, True)
        _decide(verdict, compile_all(tuple(rule.command_matches)))
    elif rule.pattern:
        verdict.expected_pattern = rule.pattern
        verdict.actual_tool_calls = calls.texts(rule.action, False)
        _decide(verdict, compile_all((rule.pattern,)))
    else:
        verdict.actual_tool_calls = calls.texts(rule.action, False)
        if rule.action is not None:
            verdict.status = VERIFIED if calls.candidates(rule.action) else CONTRADICTED
            if verdict.status == VERIFIED:
                verdict.matched_tool_calls = verdict.actual_tool_calls
    return verdict


def _decide(verdict: Verdict, regexes: tuple[re.Pattern[str], ...] | None) -> None:
    """Verified when a regex matches one of the texts; unverifiable when one does not compile."""
    if regexes is None:
        verdict.status = UNVERIFIABLE
        return
    matched = matching(regexes, verdict.actual_tool_calls)
    verdict.status = VERIFIED if matched else CONTRADICTED
    if matched:
        verdict.matched_tool_calls = matched


def evaluate_turn(
    rules: Iterable[RuleLike],
    user_text: str | None,
    assistant_text: str | None,
    events: Iterable[dict[str, Any]],
) -> list[Verdict]:
    """The verdicts of every rule whose trigger matched (events: timeline views)."""
    calls = TurnCalls(c for c in map(infer_tool_call, events) if c is not None)
    return evaluate_calls(rules, user_text, assistant_text, calls)


def evaluate_calls(
    rules: Iterable[RuleLike], user_text: str | None, assistant_text: str | None, calls: TurnCalls
) -> list[Verdict]:
    """evaluate_turn once the turn's tool calls are known."""
    return [v for rule in rules if (v := evaluate_rule(rule, user_text, assistant_text, calls)) is not None]


def aggregate(statuses: Iterable[str]) -> str | None:
    """The worst status (contradicted > unverifiable > verified); None for none."""
    worst: str | None = None
    for status in statuses:
        if worst is None or _RANK[status] > _RANK[worst]:
            worst = status
    return worst


def turn_texts(events: Sequence[dict[str, Any]], assistant_text: str | None) -> tuple[str | None, str]:
    """(the user's request: body or title of the turn's first user message,
    the answer: `assistant_text`, else the last answer among the events, else "")."""
    user = next((e for e in events if e.get("kind") == USER_MESSAGE), None)
    user_text = None if user is None else body_or_title(user)
    if assistant_text is None:
        answer = next((e for e in reversed(events) if e.get("kind") == ASSISTANT_RESPONSE), None)
        assistant_text = "" if answer is None else body_or_title(answer)
    return user_text, assistant_text


def body_or_title(view: dict[str, Any]) -> str:
    body = view.get("body")
    return body if isinstance(body, str) else str(view.get("title") or "")


@dataclass(frozen=True, slots=True)
class _Expectation:
    rule_id: str
    # Lower-cased command entries and a searcher for those that compile.
    commands: tuple[str, ...]
    command_regexes: tuple[re.Pattern[str], ...]
    has_pattern: bool
    pattern: re.Pattern[str] | None

    def fulfilled_by(self, call: ToolCall) -> bool:
        if self.commands:
            command = call.command or ""
            if not command:
                return False
            lower = command.lower()
            if not any(entry in lower for entry in self.commands) and not any(
                r.search(command) for r in self.command_regexes
            ):
                return False
        if self.has_pattern:
            return self.pattern is not None and bool(
                self.pattern.search(call.target[:ENFORCEMENT_TEXT_LIMIT])
            )
        return True


class Enforcer:
    """Per-event enforcement (reference §8.3) against a set of rules, with
    what each rule needs worked out once: an event earns `trigger` for a rule
    when one of its phrases occurs in the event's title or body (no negation
    check; user messages and answers only, as `triggerOn` allows), and
    `expect-fulfilled` when its tool call meets every condition of the
    expectation. Command entries match as case-insensitive substrings, as
    upstream, or as regular expressions (what evaluation uses)."""

    def __init__(self, rules: Iterable[RuleLike]) -> None:
        # (rule id, lower-cased phrases, the event kinds it looks at)
        self._triggers: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []
        # By expected action (None: any call).
        self._expects: dict[str | None, list[_Expectation]] = {}
        for rule in rules:
            if rule.phrases:
                kinds = {USER: (USER_MESSAGE,), ASSISTANT: (ASSISTANT_RESPONSE,)}.get(
                    rule.trigger_on or "", (USER_MESSAGE, ASSISTANT_RESPONSE)
                )
                self._triggers.append((rule.id, tuple(p.lower() for p in rule.phrases), kinds))
            if rule.action or rule.command_matches or rule.pattern:
                entries = tuple(rule.command_matches or ())
                self._expects.setdefault(rule.action, []).append(
                    _Expectation(
                        rule.id,
                        tuple(e.lower() for e in entries),
                        tuple(r for e in entries if (r := compile_regex(e)) is not None),
                        bool(rule.pattern),
                        compile_regex(rule.pattern) if rule.pattern else None,
                    )
                )
        self._any = self._expects.get(None, [])

    def __bool__(self) -> bool:
        return bool(self._triggers or self._expects)

    def matches(self, view: dict[str, Any], call: ToolCall | None) -> list[tuple[str, str]]:
        """(rule id, match kind) of every match of a newly stored event."""
        out: list[tuple[str, str]] = []
        kind = view.get("kind")
        if kind in (USER_MESSAGE, ASSISTANT_RESPONSE) and self._triggers:
            text = f"{view.get('title') or ''}\n{view.get('body') or ''}".lower()
            for rule_id, phrases, kinds in self._triggers:
                if kind in kinds and any(p in text for p in phrases):
                    out.append((rule_id, TRIGGER))
        if call is not None:
            expectations = self._any
            if call.action is not None and call.action in self._expects:
                expectations = [*self._expects[call.action], *self._any]
            for expectation in expectations:
                if expectation.fulfilled_by(call):
                    out.append((expectation.rule_id, EXPECT_FULFILLED))
        return out


def enforcement_matches(rule: RuleLike, view: dict[str, Any], call: ToolCall | None) -> list[str]:
    """The match kinds a newly stored event earns for one rule (see Enforcer)."""
    return [kind for _, kind in Enforcer([rule]).matches(view, call)]
