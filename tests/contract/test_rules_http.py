"""Verification rules (seed 000, reference §8) over HTTP, against the real
app: the rules API, evaluation when a turn closes, enforcements in the
timeline's `rule` lane, re-evaluation and promotion replaying stored turns,
the Stop check, and bad input, which is refused whole and writes nothing.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.contract.tracer_contract import NOW, UUID, Tracer, data, error, event, zod

RUN_TESTS = {
    "name": "run tests",
    "trigger": {"phrases": ["run the tests"]},
    "expect": {"tool": "command", "commandMatches": ["npm (run )?test", "pytest"]},
}
ZERO = {"verified": 0, "unverifiable": 0, "contradicted": 0}


@pytest.fixture
def tracer(server: Server) -> Tracer:
    return Tracer(server.http)


def created(resp: httpx.Response) -> Any:
    """The payload of a 201 envelope."""
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert set(body) == {"ok", "data"} and body["ok"] is True, body
    return body["data"]


async def create(tracer: Tracer, **fields: Any) -> dict[str, Any]:
    body = {**RUN_TESTS, "scope": "global", **fields}
    rule: dict[str, Any] = created(await tracer.http.post("/api/v1/rules", json=body))["rule"]
    return rule


async def new_task(tracer: Tracer, rsid: str = "rs") -> tuple[str, str]:
    ensured = await tracer.ensure(rsid)
    return ensured["taskId"], ensured["sessionId"]


def say(kind: str, task_id: str, session_id: str, text: str) -> dict[str, Any]:
    lane = "user" if kind == "user.message" else "planning"
    return event(kind, task_id, lane, session_id, title=text[:20], body=text)


def shell(task_id: str, session_id: str, command: str) -> dict[str, Any]:
    return event(
        "terminal.command",
        task_id,
        "implementation",
        session_id,
        title=command,
        metadata={"command": command},
    )


def read_file(task_id: str, session_id: str, path: str) -> dict[str, Any]:
    return event(
        "tool.used",
        task_id,
        "exploration",
        session_id,
        title="Read",
        metadata={"toolName": "Read", "filePath": path},
    )


async def turn(tracer: Tracer, task_id: str, session_id: str, ask: str, *work: dict[str, Any]) -> list[str]:
    """One closed turn: the request, the work, the answer; returns the event ids."""
    ids = await tracer.accepted_ids("conversation", say("user.message", task_id, session_id, ask))
    if work:
        ids += await tracer.accepted_ids("events", *work)
    ids += await tracer.accepted_ids("conversation", say("assistant.response", task_id, session_id, "Done."))
    return ids


async def counts(tracer: Tracer, task_id: str) -> dict[str, int]:
    out = data(await tracer.http.get(f"/api/v1/tasks/{task_id}/verdict-counts"))
    assert set(out) == {"counts"}
    return dict(out["counts"])


async def turns(tracer: Tracer, task_id: str) -> list[tuple[str | None, int]]:
    return [
        (t.get("aggregateVerdict"), t["rulesEvaluatedCount"]) for t in (await tracer.task(task_id))["turns"]
    ]


# ------------------------------------------------------------- the API


async def test_create_list_update_delete(tracer: Tracer) -> None:
    task_id, _ = await new_task(tracer)
    rule = await create(tracer, scope="task", taskId=task_id, severity="block", rationale="CI is slow")
    assert rule == {
        "id": UUID,
        "name": "run tests",
        "trigger": {"phrases": ["run the tests"]},
        "expect": {"tool": "command", "commandMatches": ["npm (run )?test", "pytest"]},
        "scope": "task",
        "taskId": task_id,
        "source": "human",
        "severity": "block",
        "rationale": "CI is slow",
        "signature": '{"phrases":["run the tests"],"tool":"command","commandMatches":["npm (run )?test","pytest"],'
        '"pattern":null}',
        "createdAt": NOW,
    }
    other = await create(tracer, name="  docs  ", trigger=None, expect={"tool": "Edit", "pattern": r"\.md$"})
    # commandMatches is a repeated field: an empty list when the rule has none.
    assert other["name"] == "docs"
    assert other["expect"] == {"tool": "file-write", "commandMatches": [], "pattern": r"\.md$"}
    assert "trigger" not in other and "taskId" not in other and other["severity"] == "info"

    listed = data(await tracer.http.get("/api/v1/rules"))["rules"]
    assert [r["id"] for r in listed] == [other["id"], rule["id"]]  # newest first
    assert data(await tracer.http.get("/ingest/v1/rules")) == {"rules": listed}
    assert data(await tracer.http.get("/api/v1/rules", params={"scope": "task"}))["rules"] == [rule]
    assert data(await tracer.http.get("/api/v1/rules", params={"taskId": task_id}))["rules"] == [rule]
    assert data(await tracer.http.get("/api/v1/rules", params={"source": "agent"}))["rules"] == []
    assert data(await tracer.http.get(f"/api/v1/tasks/{task_id}/rules")) == {
        "task": [rule],
        "global": [other],
    }
    assert data(await tracer.http.get("/api/v1/tasks/nope/rules")) == {"task": [], "global": [other]}

    resp = await tracer.http.patch(f"/api/v1/rules/{rule['id']}", json={"name": "tests", "rationale": None})
    updated = data(resp)
    expected = {k: v for k, v in rule.items() if k != "rationale"} | {"name": "tests"}
    assert updated == {"rule": expected, "signatureChanged": False}
    resp = await tracer.http.patch(f"/api/v1/rules/{rule['id']}", json={"expect": {"commandMatches": None}})
    changed = data(resp)
    assert changed["signatureChanged"] is True
    assert changed["rule"]["expect"] == {"tool": "command", "commandMatches": []}
    assert (
        changed["rule"]["signature"]
        == '{"phrases":["run the tests"],"tool":"command","commandMatches":null,"pattern":null}'
    )

    assert data(await tracer.http.delete(f"/api/v1/rules/{rule['id']}")) == {"deleted": True}
    error(
        await tracer.http.delete(f"/api/v1/rules/{rule['id']}"),
        404,
        "not_found",
        f"Rule {rule['id']} not found",
    )
    error(await tracer.http.patch(f"/api/v1/rules/{rule['id']}", json={"name": "x"}), 404, "not_found")
    assert [r["id"] for r in data(await tracer.http.get("/api/v1/rules"))["rules"]] == [other["id"]]


async def test_suggestions_are_idempotent_by_signature(tracer: Tracer) -> None:
    body = {
        "name": "lint",
        "trigger": {"phrases": ["lint"]},
        "expect": {"action": "command", "commandMatches": ["ruff"]},
        "scope": "global",
    }
    first = data(await tracer.http.post("/ingest/v1/rules/suggestions", json=body))
    assert first["created"] is True and first["rule"]["source"] == "agent"
    assert first["rule"]["expect"] == {"tool": "command", "commandMatches": ["ruff"]}
    again = data(await tracer.http.post("/ingest/v1/rules/suggestions", json={**body, "name": "other"}))
    assert again == {"rule": first["rule"], "created": False}


async def test_promote_and_demote(tracer: Tracer) -> None:
    task_id, _ = await new_task(tracer)
    rule = await create(tracer, scope="task", taskId=task_id)
    error(
        await tracer.http.post(f"/api/v1/rules/{rule['id']}/demote", json={"taskId": task_id}),
        400,
        "bad_request",
        "Only global rules can be demoted",
    )
    promoted = data(await tracer.http.post(f"/api/v1/rules/{rule['id']}/promote"))["rule"]
    assert promoted["id"] != rule["id"]
    assert {k: v for k, v in promoted.items() if k not in ("id", "createdAt")} == {
        k: v for k, v in rule.items() if k not in ("id", "createdAt", "taskId")
    } | {"scope": "global"}
    error(await tracer.http.post(f"/api/v1/rules/{rule['id']}/promote"), 404, "not_found")
    error(
        await tracer.http.post(f"/api/v1/rules/{promoted['id']}/promote"),
        400,
        "bad_request",
        "Only task-scoped rules can be promoted",
    )
    error(
        await tracer.http.post(f"/api/v1/rules/{promoted['id']}/demote", json={}),
        400,
        "bad_request",
        "Demote requires a non-empty taskId in the body",
    )
    demoted = data(await tracer.http.post(f"/api/v1/rules/{promoted['id']}/demote", json={"taskId": "t-9"}))[
        "rule"
    ]
    assert (demoted["scope"], demoted["taskId"]) == ("task", "t-9")
    assert [r["id"] for r in data(await tracer.http.get("/api/v1/rules"))["rules"]] == [demoted["id"]]


BAD_RULES = [
    ({"scope": "task"}, "taskId", "taskId is required for task-scoped rules"),
    ({"scope": "global", "taskId": "t1"}, "taskId", "taskId must be omitted for global rules"),
    ({"expect": {}}, "expect", "Expect must include at least one of tool, commandMatches or pattern"),
    (
        {"expect": {"commandMatches": ["npm (test"]}},
        "expect.commandMatches.0",
        "Invalid regular expression: npm (test",
    ),
    ({"expect": {"pattern": "[a-"}}, "expect.pattern", "Invalid regular expression: [a-"),
    (
        {"expect": {"tool": "teleport"}},
        "expect.tool",
        "Invalid enum value. Expected 'command' | 'file-read' | 'file-write' | 'web', received 'teleport'",
    ),
    ({"trigger": {"phrases": []}}, "trigger.phrases", "Array must contain at least 1 element(s)"),
    ({"trigger": {"phrases": ["  "]}}, "trigger.phrases.0", "String must contain at least 1 character(s)"),
    (
        {"triggerOn": "robot"},
        "triggerOn",
        "Invalid enum value. Expected 'user' | 'assistant', received 'robot'",
    ),
    (
        {"severity": "fatal"},
        "severity",
        "Invalid enum value. Expected 'info' | 'warn' | 'block', received 'fatal'",
    ),
    ({"scope": "team"}, "scope", "Invalid enum value. Expected 'global' | 'task', received 'team'"),
    ({"name": "   "}, "name", "String must contain at least 1 character(s)"),
]


@pytest.mark.parametrize(("fields", "path", "message"), BAD_RULES)
async def test_bad_rules_are_refused_and_write_nothing(
    tracer: Tracer, fields: dict[str, Any], path: str, message: str
) -> None:
    before = await tracer.log()
    body = {**RUN_TESTS, "scope": "global", **fields}
    for route in ("/api/v1/rules", "/ingest/v1/rules/suggestions"):
        err = error(await tracer.http.post(route, json=body), 400, "validation_error", "Invalid request")
        assert err["details"] == zod((path, message))
    assert await tracer.log() == before


async def test_bad_patches_are_refused_and_write_nothing(tracer: Tracer) -> None:
    rule = await create(tracer)
    before = await tracer.log()
    path = f"/api/v1/rules/{rule['id']}"
    err = error(await tracer.http.patch(path, json={}), 400, "validation_error")
    assert err["details"] == {"_errors": ["At least one field must be provided"]}
    err = error(await tracer.http.patch(path, json={"expect": {"pattern": "(x"}}), 400, "validation_error")
    assert err["details"] == zod(("expect.pattern", "Invalid regular expression: (x"))
    err = error(await tracer.http.patch(path, json={"severity": "loud"}), 400, "validation_error")
    assert err["details"] == zod(
        ("severity", "Invalid enum value. Expected 'info' | 'warn' | 'block', received 'loud'")
    )
    error(
        await tracer.http.patch(path, json={"expect": {"tool": None, "commandMatches": None}}),
        400,
        "bad_request",
        "Rule expect must include at least one of action, pattern, or commandMatches after update",
    )
    err = error(await tracer.http.get("/api/v1/rules", params={"scope": "team"}), 400, "validation_error")
    assert err["details"] == zod(("scope", "Invalid enum value. Expected 'global' | 'task', received 'team'"))
    assert await tracer.log() == before


# ------------------------------------------------------- evaluation (§8.2)


async def test_two_turns_one_verified_one_contradicted(tracer: Tracer) -> None:
    task_id, session_id = await new_task(tracer)
    rule = await create(tracer, scope="task", taskId=task_id)
    first = await turn(
        tracer,
        task_id,
        session_id,
        "Please run the tests",
        shell(task_id, session_id, "npm run test -- --watch=false"),
    )
    second = await turn(
        tracer,
        task_id,
        session_id,
        "Now RUN THE TESTS for the parser",
        read_file(task_id, session_id, "/src/parser.py"),
    )
    await turn(tracer, task_id, session_id, "I did not ask you to run the tests")  # negated: no verdict

    assert await counts(tracer, task_id) == {"verified": 1, "unverifiable": 0, "contradicted": 1}
    assert await turns(tracer, task_id) == [("verified", 1), ("contradicted", 1), (None, 1)]

    evidence = data(await tracer.http.get(f"/api/v1/tasks/{task_id}/rules/{rule['id']}/evidence"))
    trigger = {"matchKind": "trigger", "matchedBy": ["trigger-phrase"], "decidedAt": NOW, "createdAt": NOW}
    assert evidence == {
        "taskId": task_id,
        "ruleId": rule["id"],
        "triggers": [
            {
                "eventId": first[0],
                "kind": "user.message",
                "title": "Please run the tests",
                "body": "Please run the tests",
                **trigger,
            },
            {
                "eventId": second[0],
                "kind": "user.message",
                "title": "Now RUN THE TESTS fo",
                "body": "Now RUN THE TESTS for the parser",
                **trigger,
            },
            # No negation check per event (upstream): the phrase occurs.
            {
                "eventId": (await tracer.timeline(task_id))[-2]["id"],
                "kind": "user.message",
                "title": "I did not ask you to",
                "body": "I did not ask you to run the tests",
                **trigger,
            },
        ],
        "expects": [
            {
                "eventId": first[1],
                "kind": "terminal.command",
                "title": "npm run test -- --watch=false",
                "command": "npm run test -- --watch=false",
                "toolName": "Bash",
                "decidedAt": NOW,
                "createdAt": NOW,
                "matchKind": "expect-fulfilled",
                "matchedBy": ["action", "commandMatch"],
            },
        ],
    }
    assert data(await tracer.http.get(f"/api/v1/tasks/{task_id}/rules/nope/evidence")) == {
        "taskId": task_id,
        "ruleId": "nope",
        "triggers": [],
        "expects": [],
    }
    assert await counts(tracer, "nope") == ZERO


async def test_enforced_events_show_in_the_rule_lane(tracer: Tracer) -> None:
    task_id, session_id = await new_task(tracer)
    rule = await create(tracer, scope="task", taskId=task_id)
    ids = await turn(tracer, task_id, session_id, "run the tests", shell(task_id, session_id, "pytest -q"))
    timeline = {e["id"]: e for e in await tracer.timeline(task_id)}
    ask, command, answer = (timeline[i] for i in ids)
    assert command["lane"] == "rule"
    assert command["classification"] == {
        "lane": "rule",
        "tags": [],
        "matches": [{"ruleId": rule["id"], "score": 1, "tags": [], "reasons": []}],
    }
    assert command["metadata"] == {
        "command": "pytest -q",
        "ruleEnforcements": [{"ruleId": rule["id"], "matchKind": "expect-fulfilled"}],
        "originalLane": "implementation",
    }
    assert ask["lane"] == "rule" and ask["metadata"]["originalLane"] == "user"
    assert answer["lane"] == "planning" and "ruleEnforcements" not in answer["metadata"]


async def test_a_rule_without_trigger_applies_to_every_turn(tracer: Tracer) -> None:
    task_id, session_id = await new_task(tracer)
    await create(tracer, trigger=None, expect={"tool": "file-read"})
    await turn(tracer, task_id, session_id, "Hello")
    await turn(tracer, task_id, session_id, "Look around", read_file(task_id, session_id, "a.py"))
    assert await turns(tracer, task_id) == [("contradicted", 1), ("verified", 1)]


async def test_a_turn_closed_by_the_next_message_is_evaluated_a_session_end_is_not(tracer: Tracer) -> None:
    task_id, session_id = await new_task(tracer)
    await create(tracer)
    await tracer.accepted_ids("conversation", say("user.message", task_id, session_id, "run the tests"))
    await tracer.accepted_ids("conversation", say("user.message", task_id, session_id, "run the tests again"))
    await tracer.accepted_ids("lifecycle", event("session.ended", task_id, "user", session_id))
    assert await turns(tracer, task_id) == [("contradicted", 1), (None, 0)]


async def test_changing_the_signature_drops_verdicts_and_re_evaluate_rebuilds_them(tracer: Tracer) -> None:
    task_id, session_id = await new_task(tracer)
    rule = await create(tracer, scope="task", taskId=task_id)
    await turn(tracer, task_id, session_id, "run the tests", shell(task_id, session_id, "pytest"))
    await tracer.accepted_ids(
        "conversation", say("user.message", task_id, session_id, "run the tests now")
    )  # open
    assert await counts(tracer, task_id) == {**ZERO, "verified": 1}

    resp = await tracer.http.patch(
        f"/api/v1/rules/{rule['id']}", json={"expect": {"commandMatches": ["tox"]}}
    )
    assert data(resp)["signatureChanged"] is True
    assert await counts(tracer, task_id) == ZERO
    assert await turns(tracer, task_id) == [(None, 1), (None, 0)]
    timeline = await tracer.timeline(task_id)
    assert [e["lane"] for e in timeline] == ["user", "user", "implementation", "planning", "user"]

    result = data(await tracer.http.post(f"/api/v1/rules/{rule['id']}/re-evaluate"))
    assert result == {"turnsConsidered": 2, "turnsEvaluated": 2, "verdictsCreated": 1}
    assert await counts(tracer, task_id) == {**ZERO, "contradicted": 1}
    assert await turns(tracer, task_id) == [("contradicted", 2), (None, 0)]
    assert [e["lane"] for e in await tracer.timeline(task_id)] == [
        "user",
        "rule",
        "implementation",
        "planning",
        "rule",
    ]
    again = data(await tracer.http.post(f"/api/v1/rules/{rule['id']}/re-evaluate"))
    assert again == {"turnsConsidered": 2, "turnsEvaluated": 2, "verdictsCreated": 0}
    assert await counts(tracer, task_id) == {**ZERO, "contradicted": 1}
    error(await tracer.http.post("/api/v1/rules/nope/re-evaluate"), 404, "not_found", "Rule nope not found")


async def test_promotion_backfills_past_turns_of_every_task(tracer: Tracer) -> None:
    task_a, session_a = await new_task(tracer, "a")
    task_b, session_b = await new_task(tracer, "b")
    await turn(tracer, task_b, session_b, "please run the tests", shell(task_b, session_b, "pytest tests/"))
    rule = await create(tracer, scope="task", taskId=task_a)
    assert await counts(tracer, task_b) == ZERO
    promoted = data(await tracer.http.post(f"/api/v1/rules/{rule['id']}/promote"))["rule"]
    assert await counts(tracer, task_b) == {**ZERO, "verified": 1}
    assert await turns(tracer, task_b) == [("verified", 1)]
    evidence = data(await tracer.http.get(f"/api/v1/tasks/{task_b}/rules/{promoted['id']}/evidence"))
    assert [e["kind"] for e in evidence["triggers"]] == ["user.message"]
    assert [e["command"] for e in evidence["expects"]] == ["pytest tests/"]
    # The task rule's own (none here) are kept; the new rule is evaluated on later turns of A too.
    await turn(tracer, task_a, session_a, "run the tests")
    assert await counts(tracer, task_a) == {**ZERO, "contradicted": 1}


async def test_a_new_rule_is_evaluated_on_stored_turns(tracer: Tracer) -> None:
    task_id, session_id = await new_task(tracer)
    await turn(tracer, task_id, session_id, "run the tests", shell(task_id, session_id, "npm test"))
    await create(tracer)
    assert await counts(tracer, task_id) == {**ZERO, "verified": 1}


# --------------------------------------------------------- the Stop check


async def test_stop_check_blocks_until_the_work_is_done(tracer: Tracer) -> None:
    task_id, session_id = await new_task(tracer)
    rule = await create(tracer, severity="block", rationale="we never ship untested code")
    await create(tracer, name="informative", expect={"tool": "web"}, trigger=None)  # info: never blocks

    async def check(**body: Any) -> dict[str, Any]:
        out: dict[str, Any] = data(await tracer.http.post("/ingest/v1/rules/stop-check", json=body))
        return out

    assert await check(sessionId=session_id) == {"mayStop": True, "reason": "", "blockingRules": []}
    await tracer.accepted_ids(
        "conversation", say("user.message", task_id, session_id, "Please run the tests")
    )
    blocked = {
        "mayStop": False,
        "reason": "Rule 'run tests': you were asked to \"run the tests\" but no command matching "
        "`npm (run )?test` or `pytest` ran. (we never ship untested code)",
        "blockingRules": [{"ruleId": rule["id"], "name": "run tests", "verdict": "contradicted"}],
    }
    assert await check(sessionId=session_id) == blocked
    assert await check(runtimeSource="claude-plugin", runtimeSessionId="rs") == blocked
    await tracer.accepted_ids("events", shell(task_id, session_id, "pytest"))
    assert await check(sessionId=session_id) == {"mayStop": True, "reason": "", "blockingRules": []}
    assert await counts(tracer, task_id) == ZERO  # nothing written

    error(await tracer.http.post("/ingest/v1/rules/stop-check", json={"sessionId": "nope"}), 404, "not_found")
    error(
        await tracer.http.post(
            "/ingest/v1/rules/stop-check", json={"runtimeSource": "claude-plugin", "runtimeSessionId": "nope"}
        ),
        404,
        "not_found",
    )
    err = error(await tracer.http.post("/ingest/v1/rules/stop-check", json={}), 400, "validation_error")
    assert err["details"] == zod(("sessionId", "Required: sessionId, or runtimeSource and runtimeSessionId"))


async def test_a_rule_created_mid_turn_judges_the_whole_turn(tracer: Tracer) -> None:
    """The turn's events stored before the rule existed count when it closes."""
    task_id, session_id = await new_task(tracer)
    await tracer.accepted_ids("conversation", say("user.message", task_id, session_id, "run the tests"))
    await tracer.accepted_ids("events", shell(task_id, session_id, "pytest -x"))
    await create(tracer, scope="task", taskId=task_id)
    await tracer.accepted_ids("events", read_file(task_id, session_id, "README.md"))
    await tracer.accepted_ids("conversation", say("assistant.response", task_id, session_id, "Done."))
    assert await turns(tracer, task_id) == [("verified", 1)]


async def test_deleting_a_session_deletes_its_verdicts_and_enforcements(tracer: Tracer) -> None:
    task_id, session_id = await new_task(tracer)
    rule = await create(tracer, scope="task", taskId=task_id)
    await turn(tracer, task_id, session_id, "Please run the tests", shell(task_id, session_id, "pytest -q"))
    assert await counts(tracer, task_id) == {**ZERO, "verified": 1}

    assert (await tracer.http.delete(f"/sessions/{session_id}")).status_code == 200

    assert await counts(tracer, task_id) == ZERO
    evidence = data(await tracer.http.get(f"/api/v1/tasks/{task_id}/rules/{rule['id']}/evidence"))
    assert (evidence["triggers"], evidence["expects"]) == ([], [])
