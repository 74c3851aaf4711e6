"""The console's reads (ConsoleService) over HTTP against the real app, on
data written through every family's public routes: what each view shows,
pages that cover a list exactly once, the follow token of a live timeline,
bad input refused with the field named, and workspaces kept apart."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
import pytest

from service.base.config import Settings
from tests.auth_support import make_key, with_keys
from tests.conftest import Server
from tests.console_support import Seeded, ingest, runtime_session, seed_everything, tracer_event


def ok(resp: httpx.Response) -> Any:
    assert resp.status_code == 200, resp.text
    return resp.json()


async def log(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    resp = await http.get("/v1/log:watch", params={"after_seq": "0", "stop_at_end": "true"})
    return [json.loads(line)["result"]["entry"] for line in resp.text.splitlines()]


async def all_pages(http: httpx.AsyncClient, path: str, key: str, **params: Any) -> list[Any]:
    """Every item of a list, a page at a time."""
    items: list[Any] = []
    token = ""
    for _ in range(200):
        page = ok(await http.get(path, params={**params, "page_token": token}))
        items += page[key]
        token = page["next_page_token"]
        if not token:
            return items
    raise AssertionError("the pages never end")


@pytest.fixture
async def seeded(server: Server) -> Seeded:
    return await seed_everything(server.http)


async def test_the_overview_counts_what_runs_and_follows_the_log(server: Server, seeded: Seeded) -> None:
    http = server.http
    entries = await log(http)
    view = ok(await http.get("/v1/console/overview", params={"recent_limit": 5}))
    assert view["workspace"] == "default"
    assert view["head_seq"] == entries[-1]["seq"]
    assert view["running"] == {
        "runtime_sessions": 2,  # rs-1 and the AGH worker (monitor sessions are the tracer's)
        "tracer_tasks": 2,
        "executions": 1,
        "leased_runs": 1,
        "queued_runs": 0,
        "open_streams": 0,
    }
    minutes = view["events_per_minute"]
    assert len(minutes) == 60 and sum(b["count"] for b in minutes) == len(entries)
    assert minutes[-1]["start"] <= view["server_time"]
    today = view["today"]
    assert (today["rule_failures"], today["rule_passes"], today["rule_unverifiable"]) == (1, 1, 0)
    assert today["errors"] == 0 and today["usage_source"] == "tracer"
    assert [a["seq"] for a in view["recent"]] == [e["seq"] for e in entries[::-1][:5]]
    assert view["recent"][0] == {
        "seq": entries[-1]["seq"],
        "type": "channel.message",
        "kind": "channel",
        "id": seeded.channel,
        "name": "channel.message",
        "session_id": entries[-1]["session_id"],
        "time": entries[-1]["recorded_at"],
    }
    first = ok(await http.get("/v1/console/overview", params={"recent_limit": 100}))["recent"][-1]
    assert (first["type"], first["kind"], first["id"], first["name"]) == (
        "session.created",
        "runtime_session",
        seeded.runtime_session,
        "fix the build",
    )

    # A failed tool call is today's error.
    resp = await http.post(f"/api/v1/tool-calls/{seeded.tool_call}/fail", json={"error": "boom"})
    assert resp.status_code == 200, resp.text
    usage = tracer_event(
        "token.usage",
        seeded.tracer_task,
        seeded.tracer_session,
        "telemetry",
        "usage",
        metadata={"inputTokens": 1200, "outputTokens": 300, "costUsd": 0.25},
    )
    await ingest(http, "events", usage)
    today = ok(await http.get("/v1/console/overview"))["today"]
    assert today["errors"] == 1 and today["errors_by_kind"] == [{"name": "tool_call.failed", "count": 1}]
    assert (today["input_tokens"], today["output_tokens"], today["cost_usd"]) == (1200, 300, 0.25)


async def test_sessions_of_every_family_newest_first_and_filtered(server: Server, seeded: Seeded) -> None:
    http = server.http
    items = ok(await http.get("/v1/console/sessions"))["items"]
    assert {(i["kind"], i["id"]) for i in items} == {
        ("runtime_session", seeded.runtime_session),
        ("runtime_session", "worker"),
        ("tracer_task", seeded.tracer_task),
        ("tracer_task", seeded.child_task),
        ("tracer_session", seeded.tracer_session),
        (
            "tracer_session",
            ok(await http.get(f"/v1/console/timelines/tracer_task/{seeded.child_task}"))["tree"][-1]["id"],
        ),
        ("execution", seeded.execution),
        ("agh_task", seeded.agh_task),
    }
    # As times: RFC 3339 text leaves out a zero fraction, so "…:53Z" sorts after "…:53.139Z" as text.
    created = [datetime.fromisoformat(i["created_at"].replace("Z", "+00:00")) for i in items]
    assert created == sorted(created, reverse=True)
    child = next(i for i in items if i["id"] == seeded.child_task)
    assert (child["parent_kind"], child["parent_id"], child["runtime"]) == (
        "tracer_task",
        seeded.tracer_task,
        "claude-code",
    )

    def ids(page: dict[str, Any]) -> list[str]:
        return [i["id"] for i in page["items"]]

    assert ids(ok(await http.get("/v1/console/sessions", params={"kind": "execution"}))) == [seeded.execution]
    flaky = ok(await http.get("/v1/console/sessions", params={"query": "FLAKY"}))
    assert sorted(ids(flaky)) == sorted([seeded.tracer_session, seeded.tracer_task])
    by_runtime = ok(await http.get("/v1/console/sessions", params={"runtime": "claude", "status": "running"}))
    assert ids(by_runtime) == [seeded.runtime_session]


async def test_a_tracer_timeline_has_lanes_turns_verdicts_and_its_tree(
    server: Server, seeded: Seeded
) -> None:
    page = ok(await server.http.get(f"/v1/console/timelines/tracer_task/{seeded.tracer_task}"))
    assert page["item"]["title"] == "Fix the flaky test"
    events = page["events"]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    shell = next(e for e in events if e["kind"] == "terminal.command" and e["title"] == "pytest -x")
    assert shell["lane"] == "rule"  # it fulfilled the rule's expectation, as the tracer shows it
    assert shell["detail"]["metadata"]["command"] == "pytest -x"
    turns = page["turns"]
    assert [(t["index"], t["status"], t["verdict"]) for t in turns] == [
        (0, "closed", "verified"),
        (1, "closed", "contradicted"),
    ]
    why = turns[1]["verdicts"][0]
    assert (why["rule_id"], why["rule_name"], why["status"]) == (seeded.rule, "run tests", "contradicted")
    assert why["why"]["actualToolCalls"] == ["ls"]
    assert {e["turn_id"] for e in events if e["turn_id"]} == {t["id"] for t in turns}
    relations = [(n["relation"], n["kind"], n["id"]) for n in page["tree"]]
    assert relations == [
        ("self", "tracer_task", seeded.tracer_task),
        ("child", "tracer_session", seeded.tracer_session),
        ("child", "tracer_task", seeded.child_task),
    ]
    assert page["next_page_token"] == "" and page["follow_token"]

    child = ok(await server.http.get(f"/v1/console/timelines/tracer_task/{seeded.child_task}"))
    assert [(n["relation"], n["id"]) for n in child["tree"]][:2] == [
        ("ancestor", seeded.tracer_task),
        ("self", seeded.child_task),
    ]


async def test_timelines_of_the_other_kinds(server: Server, seeded: Seeded) -> None:
    http = server.http
    runtime = ok(await http.get(f"/v1/console/timelines/runtime_session/{seeded.runtime_session}"))["events"]
    assert [(e["kind"], e["lane"]) for e in runtime] == [
        ("session.created", "coordination"),
        ("user_prompt", "user"),
        ("tool_use", "implementation"),
        ("user_prompt", "user"),
    ]
    execution = ok(await http.get(f"/v1/console/timelines/execution/{seeded.execution}"))
    assert [(e["kind"], e["id"]) for e in execution["events"]] == [
        ("agent", seeded.agent),
        ("tool_call", seeded.tool_call),
    ]
    assert execution["events"][1]["detail"]["input"] == {"path": "a.py"}
    assert [(n["relation"], n["id"]) for n in execution["tree"]] == [
        ("self", seeded.execution),
        ("child", seeded.agent),
    ]
    task = ok(await http.get(f"/v1/console/timelines/agh_task/{seeded.agh_task}"))["events"]
    assert [e["kind"] for e in task] == ["task.created", "task_run.queued", "task_run.claimed"]


async def test_a_timeline_pages_and_follows_without_gap_or_repeat(server: Server, seeded: Seeded) -> None:
    http = server.http
    path = f"/v1/console/timelines/tracer_task/{seeded.tracer_task}"
    whole = [e["id"] for e in ok(await http.get(path))["events"]]
    paged = [e["id"] for e in await all_pages(http, path, "events", page_size=2)]
    assert paged == whole and len(set(paged)) == len(paged) > 4

    follow = ok(await http.get(path))["follow_token"]
    assert ok(await http.get(path, params={"page_token": follow}))["events"] == []
    note = tracer_event("thought.logged", seeded.tracer_task, seeded.tracer_session, "planning", "a note")
    await ingest(http, "events", note)
    fresh = ok(await http.get(path, params={"page_token": follow}))
    assert [e["title"] for e in fresh["events"]] == ["a note"]
    assert fresh["head_seq"] == fresh["events"][0]["seq"]


async def test_the_queue_channels_and_rules(server: Server, seeded: Seeded) -> None:
    http = server.http
    queue = ok(await http.get("/v1/console/queue"))
    assert queue["tasks_by_priority"] == [{"name": "medium", "count": 1}]
    (task,) = queue["tasks"]
    (lease,) = queue["leases"]
    assert (task["identifier"], task["attempts"], task["latest_run"]["id"]) == ("TASK-1", 1, seeded.agh_run)
    assert (lease["id"], lease["status"], lease["holder_ref"]) == (seeded.agh_run, "claimed", "worker")
    assert 0 < lease["lease_ms_left"] <= 300_000
    runs = ok(await http.get("/v1/console/queue/tasks/TASK-1/runs"))
    assert runs["task"]["id"] == seeded.agh_task and [r["id"] for r in runs["runs"]] == [seeded.agh_run]

    channels = ok(await http.get("/v1/console/channels"))["channels"]
    assert channels[0]["id"] == seeded.channel and channels[0]["message_count"] == 3
    one = ok(await http.get(f"/v1/console/channels/{seeded.channel}"))
    assert [(m["session_id"], m["read_seq"], m["unread"]) for m in one["members"]] == [("worker", 0, 3)]
    messages = ok(await http.get(f"/v1/console/channels/{seeded.channel}/messages", params={"page_size": 2}))
    assert [m["body"]["text"] for m in messages["messages"]] == ["hello 1", "hello 2"]
    older = ok(
        await http.get(
            f"/v1/console/channels/{seeded.channel}/messages",
            params={"page_token": messages["next_page_token"]},
        )
    )
    assert [m["body"]["text"] for m in older["messages"]] == ["hello 0"] and older["next_page_token"] == ""

    (rule,) = ok(await http.get("/v1/console/rules"))["rules"]
    assert (rule["verified"], rule["contradicted"], rule["unverifiable"]) == (1, 1, 0)
    assert rule["trigger_phrases"] == ["run the tests"] and rule["expected_pattern"] == "pytest"
    history = ok(await http.get(f"/v1/console/rules/{seeded.rule}/verdicts"))["verdicts"]
    assert [v["status"] for v in history] == ["contradicted", "verified"]
    failed = ok(
        await http.get(f"/v1/console/rules/{seeded.rule}/verdicts", params={"status": "contradicted"})
    )
    assert [v["turn_id"] for v in failed["verdicts"]] == [history[0]["turn_id"]]


async def test_pages_of_the_session_list_cover_it_exactly_once(server: Server) -> None:
    http = server.http
    await seed_everything(http, "a")
    for i in range(7):
        await runtime_session(http, f"extra-{i}", f"extra {i}", events=0)
    await seed_everything(http, "b")
    whole = [(i["kind"], i["id"]) for i in ok(await http.get("/v1/console/sessions"))["items"]]
    for size in (1, 3, 4):
        paged = [
            (i["kind"], i["id"])
            for i in await all_pages(http, "/v1/console/sessions", "items", page_size=size)
        ]
        assert paged == whole, size
    assert len(whole) == len(set(whole)) == 23
    running = await all_pages(
        http, "/v1/console/sessions", "items", page_size=2, status="running", kind="runtime_session"
    )
    assert len(running) == 11


BAD_TOKEN_ROUTES = [
    "/v1/console/sessions",
    "/v1/console/timelines/tracer_task/{task}",
    "/v1/console/queue",
    "/v1/console/queue/tasks/{agh}/runs",
    "/v1/console/channels",
    "/v1/console/channels/{channel}/messages",
    "/v1/console/rules",
    "/v1/console/rules/{rule}/verdicts",
]


def _path(route: str, s: Seeded) -> str:
    return route.format(task=s.tracer_task, agh=s.agh_task, channel=s.channel, rule=s.rule)


def violation(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["code"] == 3
    (bad,) = [d for d in body["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    return [v["field"] for v in bad["field_violations"]]


async def test_bad_page_tokens_and_arguments_are_400_naming_the_field(server: Server, seeded: Seeded) -> None:
    http = server.http
    # A token of another list (or another filter) is refused, as is garbage.
    foreign = ok(await http.get("/v1/console/sessions", params={"page_size": 1}))["next_page_token"]
    for route in BAD_TOKEN_ROUTES:
        for token in ("garbage!", "eyJ4IjoxfQ", foreign):
            resp = await http.get(_path(route, seeded), params={"page_token": token, "kind": "execution"})
            assert violation(resp) == ["page_token"], (route, token)
        assert violation(await http.get(_path(route, seeded), params={"page_size": -1})) == ["page_size"]
    assert violation(await http.get("/v1/console/sessions", params={"kind": "nope"})) == ["kind"]
    assert violation(await http.get("/v1/console/timelines/nope/x")) == ["kind"]
    assert violation(await http.get("/v1/console/overview", params={"recent_limit": -1})) == ["recent_limit"]
    for path in (
        "/v1/console/timelines/tracer_task/nope",
        "/v1/console/queue/tasks/TASK-99/runs",
        "/v1/console/channels/nope",
        "/v1/console/channels/nope/messages",
        "/v1/console/rules/nope/verdicts",
    ):
        resp = await http.get(path)
        assert resp.status_code == 404, resp.text
        assert resp.json()["details"][0]["reason"] == "CONSOLE_ITEM_NOT_FOUND"


class TestWithKeys:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return with_keys(settings)

    async def test_a_key_sees_only_its_workspace(self, server: Server) -> None:
        a = await make_key(server.core.store, workspace="team-a")
        b = await make_key(server.core.store, workspace="team-b")
        http = server.http
        assert (await http.get("/v1/console/overview")).status_code == 401
        server.http.headers.update(a.headers)
        seeded_a = await seed_everything(http, "a")
        server.http.headers.update(b.headers)
        await runtime_session(http, "only-b", "only b", events=1)

        items = ok(await http.get("/v1/console/sessions"))["items"]
        assert [(i["id"], i["workspace"]) for i in items] == [("only-b", "team-b")]
        view = ok(await http.get("/v1/console/overview"))
        assert view["workspace"] == "team-b"
        assert {r["type"] for r in view["recent"] if r["id"] == "only-b"} == {
            "session.created",
            "runtime.event",
        }
        assert {r["id"] for r in view["recent"]} <= {"only-b", ""}  # and the key's own entries
        assert view["running"]["tracer_tasks"] == 0
        for path in (
            f"/v1/console/timelines/tracer_task/{seeded_a.tracer_task}",
            f"/v1/console/channels/{seeded_a.channel}",
            f"/v1/console/rules/{seeded_a.rule}/verdicts",
            f"/v1/console/queue/tasks/{seeded_a.agh_task}/runs",
        ):
            assert (await http.get(path)).status_code == 404, path
        assert ok(await http.get("/v1/console/queue"))["tasks"] == []
        assert ok(await http.get("/v1/console/channels"))["channels"] == []
        assert ok(await http.get("/v1/console/rules"))["rules"] == []

        server.http.headers.update(a.headers)
        mine = await all_pages(http, "/v1/console/sessions", "items", page_size=2)
        assert len(mine) == 8 and {i["workspace"] for i in mine} == {"team-a"}
