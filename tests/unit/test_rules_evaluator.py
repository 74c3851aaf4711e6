"""The rule evaluator (service.domain.tracer.rules.evaluator), table-tested on
every case of the reference (§8.2 to §8.4): trigger phrases and the
negation window, `triggerOn`, each tool-name alias, the inference of tool
calls from events, regular expressions (invalid ones are unverifiable), and
the per-event enforcement matches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from service.domain.tracer.rules.evaluator import (
    CONTRADICTED,
    EXPECT_FULFILLED,
    TRIGGER,
    UNVERIFIABLE,
    VERIFIED,
    ToolCall,
    TurnCalls,
    aggregate,
    canonicalize_tool_name,
    enforcement_matches,
    evaluate_rule,
    evaluate_turn,
    infer_tool_call,
    normalize_action,
    turn_texts,
)


@dataclass
class Rule:
    id: str = "r1"
    phrases: list[str] | None = None
    trigger_on: str | None = None
    action: str | None = None
    command_matches: list[str] | None = None
    pattern: str | None = None


def bash(command: str) -> ToolCall:
    return ToolCall("Bash", command=command, action="command")


def edit(path: str) -> ToolCall:
    return ToolCall("Edit", file_path=path, action="file-write")


def read(path: str) -> ToolCall:
    return ToolCall("Read", file_path=path, action="file-read")


# (rule, user text, assistant text, calls, expected status or None for no verdict)
CASES: list[tuple[str, Rule, str | None, str, list[ToolCall], str | None]] = [
    (
        "phrase in the request",
        Rule(phrases=["run the tests"], action="command"),
        "Please RUN the Tests",
        "",
        [bash("pytest")],
        VERIFIED,
    ),
    (
        "no phrase: no verdict",
        Rule(phrases=["run the tests"], action="command"),
        "Fix the bug",
        "done",
        [],
        None,
    ),
    ("no trigger: always evaluated", Rule(action="command"), None, "", [], CONTRADICTED),
    (
        "negated: did not",
        Rule(phrases=["run the tests"], action="command"),
        "I did not run the tests",
        "",
        [],
        None,
    ),
    (
        "negated: didn't",
        Rule(phrases=["run the tests"], action="command"),
        "you didn't run the tests",
        "",
        [],
        None,
    ),
    ("negated: never", Rule(phrases=["deploy"], action="command"), "never deploy on fridays", "", [], None),
    ("negated: no", Rule(phrases=["tests"], action="command"), "no tests today", "", [], None),
    ("negated: could not", Rule(phrases=["build"], action="command"), "we could not build", "", [], None),
    ("negated: have not", Rule(phrases=["pushed"], action="command"), "I have not pushed", "", [], None),
    (
        "negation farther than 20 characters back does not count",
        Rule(phrases=["run the tests"], action="command"),
        "not now, but later today please run the tests",
        "",
        [],
        CONTRADICTED,
    ),
    (
        "negation within 20 characters",
        Rule(phrases=["run the tests"], action="command"),
        "not now but please run the tests",
        "",
        [],
        None,
    ),
    (
        "'note ' is not 'not '",
        Rule(phrases=["tests"], action="command"),
        "a note: tests",
        "",
        [],
        CONTRADICTED,
    ),
    (
        "a negated source skips to the next source",
        Rule(phrases=["run the tests"], action="command"),
        "don't bother, I did not run the tests",
        "I will run the tests",
        [],
        CONTRADICTED,
    ),
    (
        "only the first occurrence counts",
        Rule(phrases=["tests"], action="command"),
        "no tests... ok fine, run tests",
        "",
        [],
        None,
    ),
    (
        "the first listed phrase that occurs is the one checked",
        Rule(phrases=["deploy", "tests"], action="command"),
        "run tests, never deploy",
        "",
        [],
        None,
    ),
    (
        "triggerOn user ignores the answer",
        Rule(phrases=["tests"], trigger_on="user", action="command"),
        "hello",
        "I ran the tests",
        [],
        None,
    ),
    (
        "triggerOn assistant ignores the request",
        Rule(phrases=["tests"], trigger_on="assistant", action="command"),
        "run the tests",
        "Done",
        [],
        None,
    ),
    (
        "triggerOn assistant",
        Rule(phrases=["all tests pass"], trigger_on="assistant", action="command"),
        "go",
        "All tests pass!",
        [bash("pytest")],
        VERIFIED,
    ),
    (
        "commandMatches: any regex",
        Rule(command_matches=["^npm (run )?test", "pytest"]),
        None,
        "",
        [edit("a.py"), bash("npm run test")],
        VERIFIED,
    ),
    (
        "commandMatches is case-sensitive",
        Rule(command_matches=["pytest"]),
        None,
        "",
        [bash("PYTEST")],
        CONTRADICTED,
    ),
    (
        "commandMatches without candidates",
        Rule(command_matches=["pytest"]),
        None,
        "",
        [read("a.py")],
        CONTRADICTED,
    ),
    (
        "commandMatches with tool command",
        Rule(action="command", command_matches=["make"]),
        None,
        "",
        [bash("make check")],
        VERIFIED,
    ),
    (
        "invalid commandMatches regex: unverifiable",
        Rule(command_matches=["pytest", "npm (test"]),
        None,
        "",
        [bash("pytest")],
        UNVERIFIABLE,
    ),
    ("invalid regex, no calls: still unverifiable", Rule(command_matches=["("]), None, "", [], UNVERIFIABLE),
    (
        "commandMatches with another tool falls to the pattern",
        Rule(action="file-write", command_matches=["x"], pattern=r"\.md$"),
        None,
        "",
        [edit("README.md")],
        VERIFIED,
    ),
    (
        "commandMatches with another tool and no pattern: the tool alone",
        Rule(action="file-write", command_matches=["x"]),
        None,
        "",
        [edit("a.py")],
        VERIFIED,
    ),
    (
        "pattern on the file path",
        Rule(action="file-write", pattern=r"^docs/"),
        None,
        "",
        [edit("src/a.py"), edit("docs/x.md")],
        VERIFIED,
    ),
    ("pattern falls back to the command", Rule(pattern="deploy"), None, "", [bash("make deploy")], VERIFIED),
    (
        "pattern with no match",
        Rule(action="file-write", pattern=r"^docs/"),
        None,
        "",
        [edit("src/a.py")],
        CONTRADICTED,
    ),
    (
        "pattern with no candidate",
        Rule(action="file-write", pattern="x"),
        None,
        "",
        [read("x")],
        CONTRADICTED,
    ),
    ("invalid pattern: unverifiable", Rule(pattern="[a-"), None, "", [bash("ls")], UNVERIFIABLE),
    (
        "tool only: a call of that kind",
        Rule(action="web"),
        None,
        "",
        [ToolCall("WebFetch", action="web")],
        VERIFIED,
    ),
    (
        "no tool call at all: contradicted",
        Rule(phrases=["fix"], action="file-write"),
        "fix it",
        "",
        [],
        CONTRADICTED,
    ),
]


@pytest.mark.parametrize(
    ("rule", "user", "answer", "calls", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_verdicts(
    rule: Rule, user: str | None, answer: str, calls: list[ToolCall], expected: str | None
) -> None:
    verdict = evaluate_rule(rule, user, answer, TurnCalls(calls))
    assert (verdict.status if verdict else None) == expected


def test_verdict_detail() -> None:
    rule = Rule(phrases=["run the tests"], command_matches=["pytest", "tox"])
    calls = TurnCalls([bash("ls"), bash("pytest -q"), bash("pytest -q")])
    verdict = evaluate_rule(rule, "run the tests", "", calls)
    assert verdict is not None and verdict.detail() == {
        "actualToolCalls": ["ls", "pytest -q"],
        "matchedPhrase": "run the tests",
        "expectedPattern": "pytest | tox",
        "matchedToolCalls": ["pytest -q"],
    }
    contradicted = evaluate_rule(Rule(action="file-read"), None, "", calls)
    assert contradicted is not None and contradicted.detail() == {"actualToolCalls": []}


ALIASES = {
    "Bash": "bash shell terminal terminal.command command command-run run-command run_command run-test run_test "
    "run-build run_build run-lint run_lint",
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
}


@pytest.mark.parametrize(
    ("alias", "canonical"), [(a, c) for c, names in ALIASES.items() for a in names.split()]
)
def test_every_tool_name_alias(alias: str, canonical: str) -> None:
    assert canonicalize_tool_name(alias) == canonical
    assert canonicalize_tool_name(f"  {alias.upper()} ") == canonical


@pytest.mark.parametrize(
    ("value", "action"),
    [
        ("command", "command"),
        (" file-read ", "file-read"),
        ("Bash", "command"),
        ("run_test", "command"),
        ("Read", "file-read"),
        ("Grep", "file-read"),
        ("Glob", "file-read"),
        ("LS", "file-read"),
        ("Edit", "file-write"),
        ("MultiEdit", "file-write"),
        ("Write", "file-write"),
        ("apply_patch", "file-write"),
        ("WebFetch", "web"),
        ("web_search", "web"),
        ("TodoWrite", None),
        ("Task", None),
        ("PowerShell", None),
        ("mcp__github__create_issue", None),
    ],
)
def test_actions(value: str, action: str | None) -> None:
    assert normalize_action(value) == action


def test_unknown_tool_names_keep_their_case() -> None:
    assert canonicalize_tool_name("  NotebookEdit ") == "NotebookEdit"


def view(kind: str = "tool.used", **metadata: Any) -> dict[str, Any]:
    return {"id": "e1", "kind": kind, "title": kind, "metadata": metadata}


@pytest.mark.parametrize(
    ("event", "call"),
    [
        (view(toolName="Bash", command="npm test"), ToolCall("Bash", "npm test", None, "command")),
        (
            view(toolName="  ", sourceTool="read_file", filePath="a.py"),
            ToolCall("read_file", None, "a.py", None),
        ),
        (
            view(sourceTool="view-file", filePaths=["b.py", "c.py"], filePath="a.py"),
            ToolCall("Read", None, "b.py", "file-read"),
        ),
        (view(subtypeKey="run_test", command="pytest"), ToolCall("Bash", "pytest", None, "command")),
        (view(subtypeKey="Shell Probe"), ToolCall("Bash", None, None, "command")),
        (view(subtypeKey="read-file"), ToolCall("Read", None, None, "file-read")),
        (view(subtypeKey="apply.patch"), ToolCall("Edit", None, None, "file-write")),
        (view(subtypeKey="web_fetch"), ToolCall("WebSearch", None, None, "web")),
        (view(toolFamily="terminal"), ToolCall("Bash", None, None, "command")),
        (view(toolFamily="file", operation="observe"), ToolCall("Read", None, None, "file-read")),
        (view(toolFamily="file", operation="modify"), ToolCall("Edit", None, None, "file-write")),
        (view(toolFamily="web"), ToolCall("WebSearch", None, None, "web")),
        (view("terminal.command", command="ls"), ToolCall("Bash", "ls", None, "command")),
        (view("tool.used"), None),
        (view("user.message"), None),
    ],
)
def test_tool_calls_inferred_from_events(event: dict[str, Any], call: ToolCall | None) -> None:
    assert infer_tool_call(event) == call


def test_a_turn_evaluated_from_its_events() -> None:
    events = [
        {"id": "1", "kind": "user.message", "title": "t", "body": "please run the tests", "metadata": {}},
        view("terminal.command", command="pytest"),
        view(toolName="Edit", filePath="docs/a.md"),
    ]
    user, answer = turn_texts(events, None)
    assert (user, answer) == ("please run the tests", "")
    rules = [
        Rule("tests", phrases=["run the tests"], command_matches=["pytest"]),
        Rule("docs", action="file-write", pattern="^src/"),
        Rule("deploy", phrases=["deploy"], action="command"),
    ]
    verdicts = evaluate_turn(rules, user, answer, events)
    assert [(v.rule_id, v.status) for v in verdicts] == [("tests", VERIFIED), ("docs", CONTRADICTED)]
    assert aggregate(v.status for v in verdicts) == CONTRADICTED


def test_turn_texts_use_the_last_answer_when_closed_by_the_next_message() -> None:
    events = [
        {"kind": "user.message", "title": "Title only"},
        {"kind": "assistant.response", "title": "first", "body": "First answer"},
        {"kind": "assistant.response", "title": "Second"},
    ]
    assert turn_texts(events, None) == ("Title only", "Second")
    assert turn_texts(events, "given") == ("Title only", "given")


@pytest.mark.parametrize(
    ("statuses", "worst"),
    [
        ([], None),
        ([VERIFIED], VERIFIED),
        ([VERIFIED, UNVERIFIABLE], UNVERIFIABLE),
        ([UNVERIFIABLE, CONTRADICTED, VERIFIED], CONTRADICTED),
    ],
)
def test_aggregate_is_the_worst(statuses: list[str], worst: str | None) -> None:
    assert aggregate(statuses) == worst


@pytest.mark.parametrize(
    ("rule", "event", "kinds"),
    [
        (
            Rule(phrases=["Run The Tests"]),
            {"kind": "user.message", "title": "x", "body": "please run the tests"},
            [TRIGGER],
        ),
        # No negation check per event (upstream).
        (
            Rule(phrases=["run the tests"]),
            {"kind": "assistant.response", "title": "I did not run the tests"},
            [TRIGGER],
        ),
        (Rule(phrases=["tests"], trigger_on="user"), {"kind": "assistant.response", "title": "tests"}, []),
        (Rule(phrases=["tests"], trigger_on="assistant"), {"kind": "user.message", "title": "tests"}, []),
        (Rule(phrases=["tests"]), {"kind": "tool.used", "title": "tests"}, []),
        (Rule(action="command"), view("terminal.command", command="ls"), [EXPECT_FULFILLED]),
        (Rule(action="file-read"), view("terminal.command", command="ls"), []),
        (
            Rule(command_matches=["NPM TEST"]),
            view("terminal.command", command="npm test --ci"),
            [EXPECT_FULFILLED],
        ),
        (
            Rule(command_matches=["npm (run )?test"]),
            view("terminal.command", command="npm run test"),
            [EXPECT_FULFILLED],
        ),
        (Rule(command_matches=["npm"]), view(toolName="Bash"), []),
        (Rule(pattern=r"\.py$"), view(toolName="Edit", filePath="a.py"), [EXPECT_FULFILLED]),
        (Rule(pattern="[a-"), view(toolName="Edit", filePath="a.py"), []),
        (Rule(action="command", pattern="x"), view(toolName="Edit", filePath="x"), []),
        (
            Rule(phrases=["deploy"], action="command"),
            view(toolName="Bash", command="deploy"),
            [EXPECT_FULFILLED],
        ),
    ],
)
def test_enforcement_matches(rule: Rule, event: dict[str, Any], kinds: list[str]) -> None:
    assert enforcement_matches(rule, event, infer_tool_call(event)) == kinds
