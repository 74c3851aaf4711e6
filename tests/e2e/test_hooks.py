"""The Claude Code and Codex hook adapter against a real `agentplane serve`:
recorded payloads of every hook (tests/fixtures/hooks) replayed as a session,
the server down (spooled, then delivered once, in order, with the original
timestamps), the spool's backlog on the server's /metrics, concurrent hooks
on one spool, a corrupt spool, bad input, a slow server, and the Stop hook's
block decision."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.e2e.hook_support import HOOK_COMMAND, Api, Hooks, live_agentplane, payloads, spooled

PROJECT = "/home/dev/shop"
PROMPT = "The checkout test fails when the cart is empty. Find out why and fix it."
ANSWER = "Fixed: total() now returns 0 for an empty cart, and a regression test covers it."

CLAUDE_TIMELINE = [
    ("task.start", "user", "shop"),
    ("context.saved", "planning", "Session started"),
    ("setup.triggered", "planning", "Setup: init"),
    ("instructions.loaded", "planning", "Instructions loaded: CLAUDE.md"),
    ("user.message", "user", PROMPT),
    ("user.prompt.expansion", "user", "Slash: /review checkout"),
    ("tool.used", "exploration", "Read: checkout.py (lines 1-80)"),
    ("tool.used", "exploration", "Grep: def total [content]"),
    ("tool.used", "exploration", "Glob: tests/**/*.py"),
    ("permission.request", "coordination", "Permission requested: Bash"),
    ("terminal.command", "implementation", "Run the checkout tests"),
    ("tool.used", "implementation", "Failed Bash"),
    ("rule.logged", "rule", "Permission denied: Bash"),
    ("tool.used", "implementation", "Edit: checkout.py"),
    ("file.changed", "implementation", "checkout.py"),
    ("tool.used", "implementation", "Write: .env.example"),
    ("file.changed", "implementation", ".env.example"),
    ("tool.used", "implementation", "NotebookEdit: sales.ipynb"),
    ("file.changed", "implementation", "sales.ipynb"),
    # TodoWrite sends its whole list each time: an item's state is recorded once
    ("todo.logged", "todos", "Reproduce the empty-cart failure"),
    ("todo.logged", "todos", "Fix total() for an empty cart"),
    ("todo.logged", "todos", "Fix total() for an empty cart"),
    ("todo.logged", "todos", "Add a regression test"),
    ("todo.logged", "todos", "Add a regression test"),
    ("tool.used", "exploration", "WebFetch: https://docs.python.org/3/library/functions.html#sum"),
    ("tool.used", "exploration", "WebSearch: python sum empty list"),
    ("tool.used", "exploration", "LSP findReferences: total"),
    ("tool.used", "exploration", "ToolSearch: notebook"),
    ("tool.used", "exploration", "BashOutput: bash_1"),
    ("tool.used", "implementation", "KillShell: bash_1"),
    ("monitor.observed", "background", "Watch the app log"),
    ("question.logged", "questions", "Ask: Should an empty cart total 0 or raise?"),
    ("context.saved", "planning", "Enter plan mode"),
    ("plan.logged", "planning", "Exit plan mode"),
    ("context.saved", "background", "Enter worktree: fix-empty-cart"),
    ("context.saved", "background", "Exit worktree"),
    ("agent.activity.logged", "coordination", "Cron schedule: 0 9 * * 1"),
    ("agent.activity.logged", "coordination", "Skill: pdf"),
    ("agent.activity.logged", "coordination", "MCP: github/create_issue"),
    ("agent.activity.logged", "coordination", "Agent: Find other callers"),
    ("action.logged", "background", "Subagent started: Explore"),
    ("action.logged", "background", "Subagent finished: Explore"),
    ("context.saved", "planning", "Parallel tool batch (2)"),
    ("context.saved", "planning", "Notification: Permission needed"),
    ("context.saved", "planning", "Working directory changed"),
    ("context.saved", "planning", "Config changed: project_settings"),
    ("file.changed", "background", "File changed: .env"),
    ("worktree.create", "background", "Worktree created: fix-empty-cart"),
    ("worktree.remove", "background", "Worktree removed: fix-empty-cart"),
    ("todo.logged", "todos", "Update the changelog"),
    ("todo.logged", "todos", "Update the changelog"),
    ("context.saved", "planning", "TeammateIdle"),
    ("context.saved", "planning", "Elicitation"),
    ("context.saved", "planning", "ElicitationResult"),
    ("context.saved", "planning", "Context compacting"),
    ("context.saved", "planning", "Context compacted"),
    ("assistant.response", "user", ANSWER),
    ("assistant.response", "user", "Turn failed (rate_limit)"),
    ("task.complete", "user", "Task completed"),
    ("session.ended", "user", "Session ended (user exit)"),
]

CODEX_TIMELINE = [
    ("task.start", "user", "shop"),
    ("context.saved", "planning", "Session started"),
    ("user.message", "user", "Add input validation to the signup form"),
    ("permission.request", "coordination", "Permission requested: Bash"),
    ("terminal.command", "implementation", "rg -n signup src"),
    ("tool.used", "implementation", "Edit: signup.ts, validate.ts"),
    ("file.changed", "implementation", "signup.ts"),
    ("file.changed", "implementation", "validate.ts"),
    ("agent.activity.logged", "coordination", "MCP: linear/create_issue"),
    ("action.logged", "background", "Subagent started: reviewer"),
    ("action.logged", "background", "Subagent finished: reviewer"),
    ("context.saved", "planning", "Context compacting"),
    ("context.saved", "planning", "Context compacted"),
    ("assistant.response", "user", "Added validate() and called it from signup()."),
    ("assistant.response", "user", "Turn failed (server_error)"),
]


@pytest.fixture
def agentplane(tmp_path: Path, migrated_database_url: str) -> Iterator[Api]:
    with live_agentplane(tmp_path, migrated_database_url) as api:
        yield api


@pytest.fixture
def hooks(agentplane: Api, tmp_path: Path) -> Hooks:
    return Hooks(agentplane.base, tmp_path / "state")


def replay(hooks: Hooks, runtime: str) -> None:
    for name, raw in payloads(runtime):
        result = hooks.run(runtime, raw)
        assert (result.stdout, result.delivered, result.spooled) == ("", True, False), name
    assert hooks.log() == ""  # nothing refused, nothing lost


def titles(api: Api, task_id: str) -> list[tuple[str, str, str]]:
    return [(e["kind"], e["lane"], e["title"]) for e in api.timeline(task_id)]


def metadata_of(api: Api, task_id: str, title: str) -> dict[str, Any]:
    [event] = [e for e in api.timeline(task_id) if e["title"] == title]
    metadata: dict[str, Any] = event["metadata"]
    return metadata


def test_a_claude_code_session(agentplane: Api, hooks: Hooks) -> None:
    replay(hooks, "claude-code")
    task = agentplane.task_by_title("shop")
    assert (task["status"], task["runtimeSource"], task["workspacePath"]) == (
        "completed",
        "claude-plugin",
        PROJECT,
    )
    assert titles(agentplane, task["id"]) == CLAUDE_TIMELINE

    detail = agentplane.task(task["id"])
    # the Stop ended the first monitor session; StopFailure resumed the runtime session
    assert [(s["status"], s.get("summary")) for s in detail["sessions"]] == [
        ("completed", "Assistant turn completed (end_turn)"),
        ("completed", "Claude Code session ended (prompt_input_exit)"),
    ]
    [turn, failed_turn] = detail["turns"]
    assert (turn["askedText"], turn["assistantText"], turn["status"]) == (PROMPT, ANSWER, "closed")
    assert (failed_turn.get("askedText"), failed_turn["assistantText"]) == (None, "429 Too Many Requests")

    # the subagent: a background child task with its own Grep
    child = agentplane.task_by_title("Subagent: Explore")
    assert (child["status"], child["taskKind"], child["parentTaskId"]) == (
        "completed",
        "background",
        task["id"],
    )
    assert titles(agentplane, child["id"]) == [
        ("task.start", "user", "Subagent: Explore"),
        ("tool.used", "exploration", "Grep: total\\("),
        ("task.complete", "user", "Task completed"),
    ]
    assert metadata_of(agentplane, task["id"], "Subagent started: Explore")["childTaskId"] == child["id"]

    # the hook's own fields, and its original timestamps
    bash = metadata_of(agentplane, task["id"], "Run the checkout tests")
    assert bash["command"] == "pytest -q tests/test_checkout.py"
    assert bash["toolUseId"] == "toolu_04"
    edit = metadata_of(agentplane, task["id"], "Edit: checkout.py")
    assert (edit["relPath"], edit["filePaths"]) == ("src/checkout.py", [f"{PROJECT}/src/checkout.py"])

    # secrets stayed home; what merely looks like one did not go
    assert "STRIPE_KEY=[REDACTED]" in bash["stdout"] and "sk_live" not in json.dumps(bash)
    mcp = metadata_of(agentplane, task["id"], "MCP: github/create_issue")
    assert mcp["toolInput"] == {
        "owner": "dev",
        "repo": "shop",
        "title": "Empty cart total",
        "token": "[REDACTED]",
    }
    written = metadata_of(agentplane, task["id"], "Write: .env.example")
    assert written["resultText"] == "DATABASE_URL=postgres://localhost/shop\nAPI_KEY=[REDACTED]\n"


def test_a_codex_session(agentplane: Api, hooks: Hooks) -> None:
    replay(hooks, "codex")
    task = agentplane.task_by_title("shop")
    assert (task["status"], task["runtimeSource"]) == ("running", "codex")  # StopFailure resumed it
    assert titles(agentplane, task["id"]) == CODEX_TIMELINE
    detail = agentplane.task(task["id"])
    assert [t["assistantText"] for t in detail["turns"]] == [
        "Added validate() and called it from signup().",
        "upstream 500",
    ]
    patch = metadata_of(agentplane, task["id"], "Edit: signup.ts, validate.ts")
    assert patch["filePaths"] == [f"{PROJECT}/src/signup.ts", f"{PROJECT}/src/validate.ts"]
    assert patch["crossCheck"] == {"source": "hook", "dedupeKey": "call_02"}
    bash = metadata_of(agentplane, task["id"], "rg -n signup src")
    assert bash["stdout"] == "src/signup.ts:12:export function signup(form) {\nAWS_ACCESS_KEY_ID=[REDACTED]"
    mcp = metadata_of(agentplane, task["id"], "MCP: linear/create_issue")
    assert mcp["toolInput"] == {"title": "Signup validation", "api_key": "[REDACTED]"}
    child = agentplane.task_by_title("Subagent: reviewer")
    assert (child["status"], child["parentTaskId"]) == ("completed", task["id"])


def test_redaction_can_be_turned_off(agentplane: Api, hooks: Hooks) -> None:
    """AGENTPLANE_HOOK_REDACT=off sends what the tool printed; the server,
    redacting at ingest for such clients, still keeps the secret out."""
    raw = dict(payloads("codex"))["05-PostToolUse-Bash"]
    result = hooks.command("codex", raw, env={"AGENTPLANE_HOOK_REDACT": "off"})
    assert (result.returncode, result.stdout) == (0, b"")
    [task] = agentplane.tasks()
    [event] = [e for e in agentplane.timeline(task["id"]) if e["kind"] == "terminal.command"]
    assert event["metadata"]["stdout"].endswith("AWS_ACCESS_KEY_ID=[REDACTED]")


def test_the_commands_run_a_hook_alike(agentplane: Api, hooks: Hooks) -> None:
    """`agentplane hook`, `agentplane-hook`: exit 0, nothing on stdout."""
    first, second = payloads("claude-code")[:2]
    one = hooks.command("claude-code", first[1])
    two = hooks.command(
        "claude-code", second[1], str(HOOK_COMMAND.with_name("agentplane")), "hook", "claude-code"
    )
    assert [(r.returncode, r.stdout, r.stderr) for r in (one, two)] == [(0, b"", b""), (0, b"", b"")]
    [task] = agentplane.tasks()
    assert titles(agentplane, task["id"])[1:] == [
        ("context.saved", "planning", "Session started"),
        ("setup.triggered", "planning", "Setup: init"),
    ]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b'{"session_id": "cc-1", "hook_event_name": "PostToolUse", "tool_na',
        b'{"session_id": "cc-1", "hook_event_name": "SomethingNew"}',
        b'["PostToolUse"]',
        b'{"hook_event_name": "Stop"}',
        b"\xff\xfe not json",
    ],
    ids=["empty", "truncated", "unknown-event", "not-an-object", "no-session", "not-utf8"],
)
def test_bad_input_is_logged_and_the_agent_unaffected(agentplane: Api, hooks: Hooks, raw: bytes) -> None:
    result = hooks.command("claude-code", raw)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    assert "input ignored" in hooks.log()
    assert agentplane.tasks() == [] and spooled(hooks) == []


def test_an_unknown_runtime_is_logged(hooks: Hooks) -> None:
    raw = payloads("codex")[0][1]
    result = hooks.command("cursor", raw, str(HOOK_COMMAND), "cursor")
    assert (result.returncode, result.stdout) == (0, b"")
    assert "unknown runtime 'cursor'" in hooks.log()


# ------------------------------------------------------------- the spool


def test_server_down_then_up_delivers_everything_once_in_order(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    hooks = Hooks(f"http://127.0.0.1:{port}", tmp_path / "state", timeout_ms=500)
    session = payloads("claude-code")
    down, up = session[:12], session[12:]
    for name, raw in down:  # nothing listens: each is spooled, fast, silently
        started = time.monotonic()
        result = hooks.run("claude-code", raw)
        assert (result.stdout, result.delivered, result.spooled) == ("", False, True), name
        assert time.monotonic() - started < 0.5
    plans = spooled(hooks)
    assert [p["hook"] for p in plans] == [json.loads(raw)["hook_event_name"] for _, raw in down]
    stamps = [p["at"] for p in plans]

    with live_agentplane(tmp_path, database_url, port) as api:
        hooks.timeout_ms = 10_000  # the whole backlog goes with the next hook
        for i, (_, raw) in enumerate(up):
            result = hooks.run("claude-code", raw)
            assert (result.stdout, result.delivered, result.spooled) == ("", True, False)
            if i == 0:
                # a flush cut short (the hook killed before it trimmed the spool)
                # sends again what was delivered: it records nothing twice
                assert spooled(hooks) == []
                hooks.spool.write_text("".join(json.dumps(p) + "\n" for p in plans))
        assert spooled(hooks) == []
        task = api.task_by_title("shop")
        assert titles(api, task["id"]) == CLAUDE_TIMELINE
        events = api.timeline(task["id"])
        by_title = {e["title"]: e["createdAt"] for e in events}
        assert by_title["Session started"] == stamps[0]  # the hook's time, not the delivery's
        assert by_title["Run the checkout tests"] == stamps[11]


def _spool_reports(api: Api) -> dict[str, tuple[float, float]]:
    """GET /metrics, parsed: runtime -> (plans waiting as last reported, when)."""
    page = httpx.get(f"{api.base}/metrics", timeout=30)
    assert page.status_code == 200, page.text
    families = {f.name: f.samples for f in text_string_to_metric_families(page.text)}
    at = {s.labels["runtime"]: s.value for s in families["agentplane_hook_spool_report_timestamp_seconds"]}
    return {
        s.labels["runtime"]: (s.value, at[s.labels["runtime"]])
        for s in families["agentplane_hook_spool_backlog"]
    }


def test_the_spool_backlog_is_reported_on_metrics(tmp_path: Path, database_url: str) -> None:
    """The real hook command spools while the server is down; once the server
    answers, each call says how many plans wait (Agentplane-Hook-Spool), and
    /metrics shows it per runtime: the backlog while a quota refuses every
    write (429: kept for later), then 0 once the hook delivered it all."""
    port = free_port()
    hooks = Hooks(f"http://127.0.0.1:{port}", tmp_path / "state", timeout_ms=500)
    session = payloads("claude-code")
    for _, raw in session[:3]:  # nothing listens
        assert hooks.command("claude-code", raw).returncode == 0
    assert len(spooled(hooks)) == 3

    hooks.timeout_ms = 10_000
    with live_agentplane(tmp_path, database_url, port, "--quota-stored-bytes", "1") as api:
        assert _spool_reports(api) == {}  # no hook has said anything yet
        started = time.time()
        assert hooks.command("claude-code", session[3][1]).returncode == 0
        assert len(spooled(hooks)) == 4  # the quota refused the first plan; the hook's own went behind
        reports = _spool_reports(api)
        assert list(reports) == ["claude-code"] and reports["claude-code"][0] == 3
        assert started <= reports["claude-code"][1] <= time.time()

        lifted = httpx.put(f"{api.base}/v1/retention", json={"quota_stored_bytes": 0}, timeout=30)
        assert lifted.status_code == 200, lifted.text
        assert hooks.command("claude-code", session[4][1]).returncode == 0
        assert spooled(hooks) == []
        backlog, at = _spool_reports(api)["claude-code"]
        assert backlog == 0 and at >= reports["claude-code"][1]  # its last call: its own plan, none waiting
        # all five hooks, in order
        assert titles(api, api.task_by_title("shop")["id"]) == CLAUDE_TIMELINE[:6]


def test_concurrent_hooks_share_the_spool(tmp_path: Path, database_url: str) -> None:
    """Hooks fired at once (as agents do) while the server is down: every
    plan is spooled whole; once it is up, each is delivered exactly once."""
    port = free_port()
    hooks = Hooks(f"http://127.0.0.1:{port}", tmp_path / "state", timeout_ms=300)
    start = payloads("codex")[0][1]
    hooks.command("codex", start)
    tools = [
        json.dumps(
            {
                **json.loads(payloads("codex")[4][1]),
                "tool_use_id": f"call_{i}",
                "tool_input": {"command": f"echo {i}"},
            }
        ).encode()
        for i in range(16)
    ]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda raw: hooks.command("codex", raw), tools))
    assert [(r.returncode, r.stdout) for r in results] == [(0, b"")] * 16
    plans = spooled(hooks)
    assert len(plans) == 17 and sorted(p["steps"][-1]["events"][0]["title"] for p in plans[1:]) == sorted(
        f"echo {i}" for i in range(16)
    )

    with live_agentplane(tmp_path, database_url, port) as api:
        hooks.timeout_ms = 10_000
        with ThreadPoolExecutor(4) as pool:  # several hooks flush at once: one delivers, the others queue
            list(pool.map(lambda raw: hooks.run("codex", raw), [start] * 4))
        hooks.run("codex", start)
        assert spooled(hooks) == []
        [task] = api.tasks()
        commands = [e["title"] for e in api.timeline(task["id"]) if e["kind"] == "terminal.command"]
        assert sorted(commands) == sorted(f"echo {i}" for i in range(16))


def test_a_corrupt_spool_keeps_the_good_records(agentplane: Api, hooks: Hooks, tmp_path: Path) -> None:
    down = Hooks(f"http://127.0.0.1:{free_port()}", hooks.state, timeout_ms=300)
    session = payloads("codex")
    for _, raw in session[:3]:
        down.run("codex", raw)
    good = hooks.spool.read_text().splitlines()
    lines = [good[0], '{"hook": "Stop", "steps": [', good[1], "not json at all", "[1, 2]", good[2]]
    torn = '{"hook": "PreToolUse", "ste'  # a writer that died mid-line
    hooks.spool.write_text("\n".join(lines) + "\n" + torn)
    down.run("codex", session[3][1])  # appended whole after the torn line
    assert hooks.run("codex", session[4][1]).delivered
    assert spooled(hooks) == []
    bad = (hooks.state / "spool" / "spool.bad").read_text().splitlines()
    assert bad == ['{"hook": "Stop", "steps": [', "not json at all", "[1, 2]", torn]
    assert "4 corrupt line(s)" in hooks.log()
    [task] = agentplane.tasks()
    assert titles(agentplane, task["id"])[1:] == [
        ("context.saved", "planning", "Session started"),
        ("user.message", "user", "Add input validation to the signup form"),
        ("permission.request", "coordination", "Permission requested: Bash"),
        ("terminal.command", "implementation", "rg -n signup src"),
    ]


def test_a_slow_server_costs_the_agent_only_the_budget(tmp_path: Path) -> None:
    """A server that accepts and never answers: the hook gives up after its
    budget (AGENTPLANE_HOOK_TIMEOUT_MS) and spools."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        accepted: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            listener.settimeout(0.1)
            while not stop.is_set():
                try:
                    accepted.append(listener.accept()[0])
                except TimeoutError:
                    continue

        thread = threading.Thread(target=accept)
        thread.start()
        try:
            hooks = Hooks(f"http://127.0.0.1:{listener.getsockname()[1]}", tmp_path / "state", timeout_ms=300)
            started = time.monotonic()
            result = hooks.run("claude-code", payloads("claude-code")[0][1])
            elapsed = time.monotonic() - started
        finally:
            stop.set()
            thread.join()
            for conn in accepted:
                conn.close()
    assert (result.stdout, result.spooled) == ("", True)
    assert 0.3 <= elapsed < 1.0
    assert "timed out" in hooks.log()


# ------------------------------------------------------------ Stop rules


def _prompt(api: Api, hooks: Hooks, text: str) -> None:
    base = json.loads(payloads("claude-code")[3][1])
    for payload in (
        {**base, "hook_event_name": "SessionStart", "source": "startup"},
        {**base, "prompt": text},
    ):
        assert hooks.run("claude-code", json.dumps(payload).encode()).delivered


def _stop(hooks: Hooks, active: bool = False) -> Any:
    payload = {**json.loads(payloads("claude-code")[54][1]), "stop_hook_active": active}
    assert payload["hook_event_name"] == "Stop"
    return hooks.command("claude-code", json.dumps(payload).encode())


def test_stop_is_blocked_while_a_block_rule_is_contradicted(agentplane: Api, hooks: Hooks) -> None:
    agentplane.post(
        "/api/v1/rules",
        {
            "name": "Tests before done",
            "trigger": {"phrases": ["run the tests"]},
            "expect": {"tool": "command", "commandMatches": ["pytest"]},
            "scope": "global",
            "severity": "block",
        },
    )
    _prompt(agentplane, hooks, "Fix the cart and run the tests.")
    blocked = _stop(hooks)
    assert blocked.returncode == 0
    decision = json.loads(blocked.stdout)
    assert decision["decision"] == "block" and "Tests before done" in decision["reason"]
    task = agentplane.task_by_title("shop")
    assert agentplane.task(task["id"])["task"]["status"] == "running"  # not ended: the agent goes on
    assert "assistant.response" not in [k for k, _, _ in titles(agentplane, task["id"])]

    # the agent went on once (stop_hook_active): it may stop now, and the turn closes
    allowed = _stop(hooks, active=True)
    assert (allowed.returncode, allowed.stdout) == (0, b"")
    assert agentplane.task(task["id"])["task"]["status"] == "waiting"
    assert titles(agentplane, task["id"])[-1] == ("assistant.response", "user", ANSWER)


def test_stop_is_allowed_when_the_rule_is_satisfied(agentplane: Api, hooks: Hooks) -> None:
    agentplane.post(
        "/api/v1/rules",
        {
            "name": "Tests before done",
            "trigger": {"phrases": ["run the tests"]},
            "expect": {"tool": "command", "commandMatches": ["pytest"]},
            "scope": "global",
            "severity": "block",
        },
    )
    _prompt(agentplane, hooks, "Fix the cart and run the tests.")
    assert hooks.run("claude-code", payloads("claude-code")[11][1]).delivered  # PostToolUse Bash: pytest
    result = _stop(hooks)
    assert (result.returncode, result.stdout) == (0, b"")
    task = agentplane.task_by_title("shop")
    assert agentplane.task(task["id"])["task"]["status"] == "waiting"
