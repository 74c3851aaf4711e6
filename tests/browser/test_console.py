"""The web console in a real browser (headless Chromium through Playwright)
against a real `agentplane serve` with data written through the public
routes: each view's content, keyboard navigation, a live update arriving
without a reload, the stream resuming after the server restarts on the same
port with no gap and no duplicate, auth on (refused without a key, one
workspace per key), and /docs working offline. No request may leave the
server's origin: each page's context refuses and records any that tries."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DatabaseMaker, Tab, open_tab
from tests.browser.seed import Seeded, many_sessions, ok, runtime_session, seed_demo
from tests.browser.server import ServeProcess

# A loaded machine (CI shares 2 cores) can take seconds to answer.
expect.set_options(timeout=10_000)

# Every seq the page's log follower delivered, recorded before the console starts.
RECORD_SEQS = """
window.__seqs = [];
window.addEventListener("agentplane:log", (ev) => { for (const e of ev.detail) window.__seqs.push(Number(e.seq)); });
"""


@dataclass
class Demo:
    server: ServeProcess
    seeded: Seeded


@pytest.fixture(scope="module")
def demo(databases: DatabaseMaker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    workdir = tmp_path_factory.mktemp("demo")
    with (
        ServeProcess(databases.new(), workdir) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as http,
    ):
        seeded = seed_demo(http)
        many_sessions(http, 120)  # more than a page of the sessions list
        yield Demo(server, seeded)


@pytest.fixture
def tab(browser: Browser, demo: Demo) -> Iterator[Tab]:
    t = open_tab(browser, demo.server.base_url)
    yield t
    assert t.foreign() == [], "requests left the server's origin"
    t.context.close()


def rows(page: Page, table: str) -> list[str]:
    return page.locator(f"#{table} tbody tr").all_inner_texts()


def test_overview_shows_what_runs_today_and_the_newest_activity(tab: Tab, demo: Demo) -> None:
    page = tab.page
    page.goto(f"{demo.server.base_url}/")
    expect(page.locator("#live")).to_have_text("live")
    cards = page.locator("#running .card")
    expect(cards.filter(has_text="leased runs").locator(".value")).to_have_text("1")
    expect(cards.filter(has_text="queued runs").locator(".value")).to_have_text("2")
    expect(cards.filter(has_text="executions running")).to_be_visible()
    # today: the failed tool call and run, the rules' verdicts, tokens and cost
    today = page.locator("#today")
    expect(today).to_contain_text("rule failures")
    expect(today).to_contain_text("tool_call.failed")
    expect(today).to_contain_text("$0.13")  # 0.087 + 0.041 reported by token.usage events
    expect(page.locator("#epm div")).to_have_count(60)
    feed = page.locator("#activity li")
    expect(feed.first).to_be_visible()
    assert feed.count() <= 50
    # times in the viewer's zone (the context's is Europe/Paris)
    assert "CET" in (feed.first.locator("time").get_attribute("title") or "")
    expect(page.locator("#workspace")).to_have_text("workspace: default")


def test_sessions_lists_every_family_filters_and_pages(tab: Tab, demo: Demo) -> None:
    page = tab.page
    page.goto(f"{demo.server.base_url}/#/sessions")
    table = page.locator("#sessions tbody tr")
    expect(table.first).to_be_visible()
    expect(table).to_have_count(50)  # the first page
    page.locator("button", has_text="Load more").scroll_into_view_if_needed()
    expect(table).to_have_count(100)
    # text search, from the keyboard: "/" focuses the box
    page.keyboard.press("/")
    page.keyboard.type("parser")
    expect(table).to_have_count(4)  # two tasks and their monitor sessions
    expect(table.filter(has_text="tracer task").filter(has_text="Fix the parser")).to_have_count(1)
    expect(table.filter(has_text="Add fuzz tests for the parser")).to_have_count(2)
    assert "q=parser" in page.url  # the filters are part of the link
    page.keyboard.press("Escape")
    # kind and status filters
    page.fill("input[name=q]", "")
    page.select_option("select[name=kind]", "runtime_session")
    page.fill("input[name=status]", "finished")
    expect(table).to_have_count(1)
    expect(table.first).to_contain_text("Write the docs")
    page.select_option("select[name=kind]", "execution")
    page.fill("input[name=status]", "")
    expect(table).to_have_count(1)
    expect(table.first).to_contain_text("Build the feature")
    page.fill("input[name=runtime]", "nobody")
    expect(page.locator(".empty")).to_contain_text("Nothing matches these filters")
    # a linked view opens with its filters
    page.goto(f"{demo.server.base_url}/#/sessions?kind=tracer_task&q=review")
    expect(table).to_have_count(1)
    expect(table.first).to_contain_text("Review the release notes")


def test_keyboard_goes_to_views_and_opens_rows(tab: Tab, demo: Demo) -> None:
    page = tab.page
    page.goto(f"{demo.server.base_url}/")
    expect(page.locator("#running .card").first).to_be_visible()
    page.keyboard.press("g")
    page.keyboard.press("s")
    expect(page).to_have_url(re.compile(r"#/sessions$"))
    expect(page.locator("#sessions tbody tr").first).to_be_visible()
    page.keyboard.press("j")
    page.keyboard.press("j")
    selected = page.locator("#sessions tbody tr.sel")
    expect(selected).to_have_count(1)
    href = selected.get_attribute("data-href")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(href or "?")))
    page.keyboard.press("g")
    page.keyboard.press("q")
    expect(page.locator("h1")).to_have_text("Task queue")
    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_visible()


def test_a_task_timeline_shows_turns_verdicts_tools_tokens_and_its_tree(tab: Tab, demo: Demo) -> None:
    page = tab.page
    s = demo.seeded
    page.goto(f"{demo.server.base_url}/#/timeline/tracer_task/{s.task_id}")
    expect(page.locator("h1")).to_have_text("Fix the parser")
    turns = page.locator(".turn")
    expect(turns).to_have_count(2)
    first = turns.nth(0)
    expect(first).to_contain_text(re.compile(r"Turn \d"))
    expect(first).to_contain_text("Fix the parser and run the tests")
    expect(first.locator(".verdict", has_text="run the tests")).to_contain_text("verified")
    expect(first.locator(".verdict", has_text="update the changelog")).to_contain_text("contradicted")
    events = page.locator("#events .ev")
    edit = events.filter(has_text="Edit src/parser.py")
    expect(edit).to_have_attribute("data-lane", "implementation")
    expect(edit.locator(".lanes i.on")).to_have_count(1)
    # the command that fulfilled the rule is drawn in the rule lane, as the tracer shows enforcements
    command = events.filter(has_text="pytest -x tests/test_parser.py")
    expect(command).to_have_attribute("data-lane", "rule")
    expect(command.locator(".tool")).to_have_text("Bash")
    usage = events.filter(has_text="claude-sonnet usage").first
    expect(usage).to_contain_text("18.2k / 2,140")  # tokens in / out (compact from 10,000)
    expect(usage).to_contain_text("$0.09")
    command.click()  # the event's detail: its body and the whole event as stored
    expect(command.locator(".detail")).to_contain_text("12 passed")
    expect(command.locator(".detail pre")).to_contain_text("exitCode")
    tree = page.locator("#tree")
    expect(tree).to_contain_text("Add fuzz tests for the parser")
    info = page.locator("#item-info")
    expect(info).to_contain_text("claude-code")
    # the child is one click away
    tree.locator("a", has_text="Add fuzz tests").click()
    expect(page.locator("h1")).to_have_text("Add fuzz tests for the parser")


def test_an_execution_timeline_shows_tool_calls_with_inputs_and_failures(tab: Tab, demo: Demo) -> None:
    page = tab.page
    page.goto(f"{demo.server.base_url}/#/timeline/execution/{demo.seeded.execution_id}")
    expect(page.locator("h1")).to_have_text("Build the feature")
    failed = page.locator("#events .ev", has_text="Bash")
    expect(failed).to_have_class(re.compile("failed"))
    failed.first.click()
    expect(failed.first.locator(".detail")).to_contain_text("npm test")
    expect(page.locator("#tree")).to_contain_text("Implement the feature")


def test_the_queue_shows_states_leases_counting_down_and_runs(tab: Tab, demo: Demo) -> None:
    page = tab.page
    page.goto(f"{demo.server.base_url}/#/queue")
    leases = page.locator("#leases tbody tr")
    expect(leases).to_have_count(1)
    left = leases.first.locator(".left")
    expect(left).to_have_text(re.compile(r"^1[45]m \d+s$"))  # a 900 s lease
    before = left.inner_text()
    expect(left).not_to_have_text(before, timeout=3000)  # it counts down
    tasks = page.locator("#queue-tasks tbody tr")
    expect(tasks).to_have_count(4)
    expect(tasks.filter(has_text="Port the tokenizer")).to_contain_text("urgent")
    page.locator("#by-state .chip", has_text="completed").click()
    expect(tasks).to_have_count(1)
    expect(tasks.first).to_contain_text("Port the tokenizer")
    assert "state=completed" in page.url
    # a task's runs: the failed attempt and the held retry
    page.goto(f"{demo.server.base_url}/#/queue")
    page.locator("#queue-tasks tbody tr", has_text="Fix the flaky login test").locator("a").click()
    runs = page.locator("#runs tbody tr")
    expect(runs).to_have_count(2)
    expect(runs.nth(0)).to_contain_text("w1")
    expect(runs.nth(1)).to_contain_text("failed")


def test_channels_show_members_read_positions_and_messages(tab: Tab, demo: Demo) -> None:
    page = tab.page
    page.goto(f"{demo.server.base_url}/#/channels")
    row = page.locator("#channels tbody tr", has_text="#ops")
    expect(row).to_contain_text("3")  # messages
    row.click()
    expect(page).to_have_url(re.compile(r"#/channels/ops$"))
    messages = page.locator("#messages li")
    expect(messages).to_have_count(3)
    expect(messages.nth(0)).to_contain_text("tokenizer port started")
    expect(messages.nth(2)).to_contain_text("48 tests pass")
    members = page.locator("#members tbody tr")
    expect(members.filter(has_text="w2")).to_contain_text("#")  # w2 read up to the newest
    expect(members.filter(has_text="w2").locator("td").nth(3)).to_have_text("0")
    expect(members.filter(has_text="w1").locator("td").nth(3)).not_to_have_text("0")


def test_rules_show_counts_and_a_rules_verdict_history(tab: Tab, demo: Demo) -> None:
    page = tab.page
    page.goto(f"{demo.server.base_url}/#/rules")
    rule = page.locator("#rules tbody tr", has_text="update the changelog")
    expect(rule.locator("td").nth(6)).to_have_text("2")  # failed on both turns
    rule.locator("a").first.click()
    verdicts = page.locator("#verdicts tbody tr")
    expect(verdicts).to_have_count(2)
    expect(verdicts.first).to_contain_text("contradicted")
    page.goto(f"{demo.server.base_url}/#/rules/{demo.seeded.rules['run the tests']}?status=verified")
    expect(verdicts).to_have_count(1)
    expect(verdicts.first).to_contain_text("verified")


def test_docs_work_offline(tab: Tab, demo: Demo) -> None:
    page = tab.page
    page.goto(f"{demo.server.base_url}/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/v1/console/overview")).to_be_visible()
    assert any(u.endswith("swagger-ui-bundle.js") for u in tab.requests)


# ------------------------------------------------------------------ writing while watching


def seqs_in_log(base_url: str, after: int) -> list[int]:
    lines = httpx.get(
        f"{base_url}/v1/log:watch", params={"after_seq": after, "stop_at_end": "true"}, timeout=30
    )
    import json

    return [
        int(json.loads(line)["result"]["entry"]["seq"])
        for line in lines.text.splitlines()
        if '"entry"' in line
    ]


def post_events(http: httpx.Client, sid: str, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        event = {
            "event_type": "message",
            "session_id": sid,
            "session_name": "Live",
            "timestamp": "2026-12-05T10:00:00Z",
            "role": "assistant",
            "content": [{"type": "text", "text": f"reply {i}"}],
        }
        ok(http.post(f"/sessions/{sid}/events", json=event))


# ------------------------------------------------------------------ auth


def test_with_api_keys_on_the_console_asks_for_one_and_shows_only_its_workspace(
    browser: Browser, databases: DatabaseMaker, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = ServeProcess(databases.new(), tmp_path_factory.mktemp("auth"), auth="keys").start()
    tab = open_tab(browser, server.base_url)
    page = tab.page
    try:
        keys = {ws: server.create_key(ws) for ws in ("alpha", "beta")}
        for ws, key in keys.items():
            with httpx.Client(base_url=server.base_url, headers={"X-API-Key": key}, timeout=30) as http:
                runtime_session(http, f"{ws}-session", f"Session of {ws}", "coder", events=1)

        # No key: the console says what to do, and shows no data.
        page.goto(f"{server.base_url}/#/sessions")
        notice = page.locator("#key-notice")
        expect(notice).to_contain_text("This server needs an API key")
        expect(notice).to_contain_text("agentplane keys create")
        expect(page.locator("#live")).to_have_text("key needed")
        expect(page.locator("#sessions")).to_have_count(0)

        # A wrong key is refused, and said so.
        page.fill("#key-notice input", "ap_wrong")
        page.click("#key-notice button[type=submit]")
        expect(page.locator("#key-notice")).to_contain_text("refused")

        # Alpha's key: alpha's data only, live too.
        page.fill("#key-notice input", keys["alpha"])
        page.click("#key-notice button[type=submit]")
        table = page.locator("#sessions tbody tr")
        expect(table.filter(has_text="Session of alpha")).to_have_count(1)
        expect(table.filter(has_text="Session of beta")).to_have_count(0)
        expect(page.locator("#live")).to_have_text("live")
        expect(page.locator("#workspace")).to_have_text("workspace: alpha")
        page.goto(f"{server.base_url}/#/")
        expect(page.locator("#live")).to_have_text("live")
        for ws in ("beta", "alpha"):
            with httpx.Client(base_url=server.base_url, headers={"X-API-Key": keys[ws]}, timeout=30) as http:
                ok(http.post("/sessions", json={"session_id": f"{ws}-late", "session_name": f"Late {ws}"}))
        expect(page.locator("#activity li", has_text="Late alpha")).to_be_visible()
        expect(page.locator("#activity li", has_text="Late beta")).to_have_count(0)
        # Another workspace's item is not found with this key.
        page.goto(f"{server.base_url}/#/timeline/runtime_session/beta-session")
        expect(page.locator(".notice")).to_contain_text("HTTP 404")

        # The key is kept for the tab's session: a reload needs no new paste.
        page.reload()
        expect(page.locator("#live")).to_have_text("live")
        assert tab.foreign() == []
    finally:
        tab.context.close()
        server.stop()


def test_unknown_addresses_and_ids_say_so(tab: Tab, demo: Demo) -> None:
    page = tab.page
    page.goto(f"{demo.server.base_url}/#/nowhere")
    expect(page.locator(".notice")).to_contain_text("not a view of the console")
    page.goto(f"{demo.server.base_url}/#/timeline/tracer_task/{uuid.uuid4()}")
    expect(page.locator(".notice")).to_contain_text("could not be loaded")


# ------------------------------------------------------------------ live (restarts the demo server)


def test_live_updates_and_a_restart_lose_and_repeat_nothing(browser: Browser, demo: Demo) -> None:
    """Last of the module: it restarts the demo server."""
    server = demo.server
    tab = open_tab(browser, server.base_url)
    page = tab.page
    page.add_init_script(RECORD_SEQS)
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            runtime_session(http, "live-1", "Live", "coder", events=1)
            page.goto(f"{server.base_url}/")
            expect(page.locator("#live")).to_have_text("live")
            start = page.evaluate("window.agentplaneConsole.live.cursor")
            # A session that starts shows up in the overview by name and id, without a reload.
            began = time.monotonic()
            ok(http.post("/sessions", json={"session_id": "fresh-1", "session_name": "Brand new session"}))
            expect(page.locator("#activity li", has_text="Brand new session")).to_be_visible(timeout=5000)
            seen_after = time.monotonic() - began
            expect(page.locator("#activity li", has_text="Brand new session")).to_contain_text("fresh-1")
            # A timeline follows its session.
            page.goto(f"{server.base_url}/#/timeline/runtime_session/live-1")
            events = page.locator("#events .ev")
            expect(events).to_have_count(2)  # the tool use and the message
            post_events(http, "live-1", 3)
            expect(events).to_have_count(5)
            events.last.click()
            expect(events.last.locator(".detail")).to_contain_text("reply 2")

            # The server restarts on the same port; the page says so, then resumes.
            server.stop()
            expect(page.locator("#live")).to_have_text("reconnecting…")
            server.start()
            post_events(http, "live-1", 20, start=3)  # before the page is back: it must catch up
            expect(page.locator("#live")).to_have_text("live", timeout=15_000)
            expect(events).to_have_count(25, timeout=10_000)
            post_events(http, "live-1", 2, start=23)
            expect(events).to_have_count(27)

            delivered = page.evaluate("window.__seqs")
            assert delivered == seqs_in_log(server.base_url, start), "a gap or a duplicate"
            assert len(set(delivered)) == len(delivered)
        assert seen_after < 3, f"the new session took {seen_after:.1f} s to show"
        assert tab.foreign() == []
    finally:
        tab.context.close()
