"""Channels (seed 003) over HTTP, against the real app: the agent routes
(`/api/agent/channels…`, AGH family), the operator routes (`/v1/channels…`,
native family), coordination channels of task runs, and what /me and
/context show of them.

Bodies are compared whole; every refused input is checked to write nothing
(the channel tables and the whole event log are compared before and after).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from tests.agh_support import (
    ANY_TIME,
    IDENTITY_ERRORS,
    assert_error,
    claimed,
    create_task,
    identity,
    ok,
    start_session,
    stop_session,
)
from tests.channels_support import (
    ALICE,
    BOB,
    CHANNEL,
    message_body,
    metadata,
    send,
    sent,
    setup_channel,
    snapshot,
)
from tests.conftest import Server

ALL_KINDS = ["status", "request", "reply", "blocker", "handoff", "result", "review_request"]


@pytest.fixture
async def ch(server: Server) -> AsyncIterator[Server]:
    await setup_channel(server.http)
    yield server


def channel_error(
    status_code: str, message: str, field: str | None = None, description: str = ""
) -> dict[str, Any]:
    diagnostic: dict[str, Any] = {
        "id": f"channel.{status_code}",
        "code": status_code,
        "category": "network",
        "title": "Channel error",
        "message": message,
        "severity": "error",
        "data_freshness": "live",
    }
    if field is not None:
        diagnostic["evidence"] = {"field_violations": [{"field": field, "description": description}]}
    return {"error": message, "diagnostic": diagnostic}


def invalid(field: str, description: str, code: str = "channel_validation_failed") -> dict[str, Any]:
    return channel_error(code, f"channel: validation failed: {field} {description}", field, description)


async def refused(server: Server, request: Any, status: int, body: dict[str, Any]) -> None:
    before = await snapshot(server)
    assert_error(await request(), status, body)
    assert await snapshot(server) == before


async def recv(http: httpx.AsyncClient, session: str = BOB, **params: Any) -> httpx.Response:
    return await http.get(f"/api/agent/channels/{CHANNEL}/recv", params=params, headers=identity(session))


# ------------------------------------------------------------ send, recv, reply


async def test_send_recv_reply_seed_shapes(ch: Server) -> None:
    resp = await send(ch.http, {"text": "build is green", "files": 3})
    assert resp.status_code == 202, resp.text
    message = resp.json()
    assert message == {"message": message_body({"text": "build is green", "files": 3})}
    first = message["message"]

    assert ok(await recv(ch.http)) == {"messages": [first]}
    # The sender does not receive its own message.
    assert ok(await recv(ch.http, ALICE)) == {"messages": []}

    resp = await ch.http.post(
        "/api/agent/channels/reply",
        json={"reply_to_message_id": first["message_id"], "body": "thanks"},
        headers=identity(BOB),
    )
    assert resp.status_code == 202, resp.text
    reply = resp.json()["message"]
    assert reply == message_body(
        "thanks", sender=BOB, kind="reply", to_session_id=ALICE, reply_to_message_id=first["message_id"]
    )
    assert reply["seq"] > first["seq"]
    # The reply goes to alice; bob does not see his own reply.
    assert ok(await recv(ch.http, ALICE)) == {"messages": [reply]}
    assert ok(await recv(ch.http, BOB)) == {"messages": [first]}


async def test_body_is_any_json_value(ch: Server) -> None:
    for body in (None, 0, "text", [1, {"a": None}], {"nested": {"deep": [True, 1.5]}}):
        assert (await sent(ch.http, body))["body"] == body
    assert [m["body"] for m in ok(await recv(ch.http))["messages"]] == [
        None,
        0,
        "text",
        [1, {"a": None}],
        {"nested": {"deep": [True, 1.5]}},
    ]


async def test_metadata_ext_and_workflow_are_kept(ch: Server) -> None:
    md = metadata(workflow_id="wf-1", ext={"priority": 2, "tags": ["a"]})
    resp = await ch.http.post(
        f"/api/agent/channels/{CHANNEL}/send", json={"body": 1, "metadata": md}, headers=identity(ALICE)
    )
    assert resp.status_code == 202, resp.text
    assert resp.json()["message"]["metadata"] == md


async def test_recv_is_non_destructive_until_acknowledged(ch: Server) -> None:
    messages = [await sent(ch.http, i) for i in range(5)]
    assert ok(await recv(ch.http))["messages"] == messages
    assert ok(await recv(ch.http))["messages"] == messages  # the same again
    assert ok(await recv(ch.http, limit=2))["messages"] == messages[:2]

    acked = await ch.http.post(
        f"/api/agent/channels/{CHANNEL}/ack", json={"seq": messages[2]["seq"]}, headers=identity(BOB)
    )
    assert ok(acked) == {"channel_id": CHANNEL, "seq": messages[2]["seq"]}
    assert ok(await recv(ch.http))["messages"] == messages[3:]
    # An older acknowledgement never moves the position back.
    older = await ch.http.post(
        f"/api/agent/channels/{CHANNEL}/ack", json={"seq": messages[0]["seq"]}, headers=identity(BOB)
    )
    assert ok(older) == {"channel_id": CHANNEL, "seq": messages[2]["seq"]}
    # after_seq reads from elsewhere without moving the position.
    assert ok(await recv(ch.http, after_seq=0))["messages"] == messages
    assert ok(await recv(ch.http, after_seq=messages[3]["seq"]))["messages"] == messages[4:]
    assert ok(await recv(ch.http))["messages"] == messages[3:]


async def test_recv_wait_long_polls_until_a_message(ch: Server) -> None:
    waiting = asyncio.create_task(recv(ch.http, wait="true"))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    # Its own message does not wake the waiter; another's does.
    await sent(ch.http, "mine", BOB)
    await asyncio.sleep(0.2)
    assert not waiting.done()
    message = await sent(ch.http, "wake up")
    assert ok(await asyncio.wait_for(waiting, 5)) == {"messages": [message]}


async def test_recv_wait_ends_empty_after_wait_seconds(ch: Server) -> None:
    resp = await asyncio.wait_for(recv(ch.http, wait="true", wait_seconds=1), 5)
    assert ok(resp) == {"messages": []}


async def test_send_is_idempotent_with_a_key(ch: Server) -> None:
    first = await ch.http.post(
        f"/api/agent/channels/{CHANNEL}/send",
        json={"body": 1, "metadata": metadata(), "idempotency_key": "msg-1"},
        headers=identity(ALICE),
    )
    assert first.status_code == 202, first.text
    assert first.json()["message"]["message_id"] == "msg-1"
    before = await snapshot(ch)
    again = await ch.http.post(
        f"/api/agent/channels/{CHANNEL}/send",
        json={"body": 2, "metadata": metadata(), "idempotency_key": "msg-1"},
        headers=identity(ALICE),
    )
    assert again.status_code == 202
    assert again.json() == first.json()
    assert await snapshot(ch) == before


# ---------------------------------------------------------------- bad input


TOO_BIG = "x" * (64 * 1024)
BAD_SENDS = {
    "message kind outside the enum": (
        {"body": 1, "metadata": metadata(kind="gossip")},
        422,
        invalid("metadata.message_kind", "must be one of " + ", ".join(ALL_KINDS)),
    ),
    "missing body": ({"metadata": metadata()}, 422, invalid("body", "is required")),
    "missing metadata": ({"body": 1}, 422, invalid("metadata", "is required")),
    "blank correlation id": (
        {"body": 1, "metadata": metadata(correlation_id=" ")},
        422,
        invalid("metadata.correlation_id", "is required"),
    ),
    "metadata for another channel": (
        {"body": 1, "metadata": metadata("elsewhere")},
        422,
        invalid("metadata.coordination_channel_id", 'must be the channel the message is sent to, "ops"'),
    ),
    "claim token key in the body": (
        {"body": {"result": {"claim_token": "x"}}, "metadata": metadata()},
        422,
        invalid("body.result.claim_token", "must not carry a raw claim token", "claim_token_forbidden"),
    ),
    "raw claim token value": (
        {"body": ["see agh_claim_AbC123-_x"], "metadata": metadata()},
        422,
        invalid("body[0]", "must not carry a raw claim token", "claim_token_forbidden"),
    ),
    "claim token in metadata ext": (
        {"body": 1, "metadata": metadata(ext={"t": "agh_claim_secret"})},
        422,
        invalid("metadata.ext.t", "must not carry a raw claim token", "claim_token_forbidden"),
    ),
    "body over the size limit": (
        {"body": TOO_BIG, "metadata": metadata()},
        413,
        channel_error(
            "message_too_large",
            f"channel: message too large: {len(orjson.dumps(TOO_BIG)) + len(orjson.dumps(metadata()))} bytes"
            " of JSON, more than 65536",
        ),
    ),
}


@pytest.mark.parametrize("case", BAD_SENDS, ids=list(BAD_SENDS))
async def test_bad_sends_are_refused_and_write_nothing(ch: Server, case: str) -> None:
    payload, status, body = BAD_SENDS[case]
    if status == 413:
        body["diagnostic"]["evidence"] = {"limit_bytes": "65536"}
    await refused(
        ch,
        lambda: ch.http.post(f"/api/agent/channels/{CHANNEL}/send", json=payload, headers=identity(ALICE)),
        status,
        body,
    )


async def test_the_literal_agh_claim_token_is_allowed(ch: Server) -> None:
    assert (await sent(ch.http, {"note": "the field is agh_claim_token"}))["body"] == {
        "note": "the field is agh_claim_token"
    }


async def test_unknown_and_invalid_channels(ch: Server) -> None:
    not_found = channel_error("channel_not_found", 'channel "nope" not found')
    not_found["diagnostic"]["evidence"] = {"channel_id": "nope"}
    await refused(ch, lambda: send(ch.http, 1, channel="nope"), 404, not_found)
    await refused(
        ch,
        lambda: ch.http.get("/api/agent/channels/nope/recv", headers=identity(BOB)),
        404,
        not_found,
    )
    bad = "channel: invalid channel 'Not_Valid': must match ^[a-z0-9][a-z0-9_-]{0,63}$"
    await refused(
        ch,
        lambda: ch.http.get("/api/agent/channels/Not_Valid/recv", headers=identity(BOB)),
        400,
        channel_error("invalid_channel", bad, "channel", "must match ^[a-z0-9][a-z0-9_-]{0,63}$"),
    )


async def test_kinds_a_channel_does_not_allow(ch: Server) -> None:
    resp = await ch.http.post("/v1/channels", json={"id": "results", "allowed_message_kinds": ["result"]})
    assert resp.status_code == 201, resp.text
    assert resp.json()["channel"]["allowed_message_kinds"] == ["result"]
    await refused(
        ch,
        lambda: send(ch.http, 1, channel="results"),
        422,
        invalid("metadata.message_kind", 'is not allowed on channel "results" (result)'),
    )


async def test_bad_cursors(ch: Server) -> None:
    await ch.http.post("/v1/channels", json={"id": "other"})
    elsewhere = await sent(ch.http, 1, channel="other")
    mine = await sent(ch.http, 2)
    future = mine["seq"] + 1000
    await refused(
        ch,
        lambda: recv(ch.http, after_seq=future),
        400,
        channel_error(
            "invalid_cursor",
            f"channel: invalid cursor: after_seq {future} is past the end of the log",
            "after_seq",
            f"{future} is past the end of the log",
        ),
    )
    other = elsewhere["seq"]
    await refused(
        ch,
        lambda: recv(ch.http, after_seq=other),
        400,
        channel_error(
            "invalid_cursor",
            f"channel: invalid cursor: after_seq {other} is not a message of channel ops",
            "after_seq",
            f"{other} is not a message of channel ops",
        ),
    )
    await refused(
        ch,
        lambda: ch.http.post(
            f"/api/agent/channels/{CHANNEL}/ack", json={"seq": other}, headers=identity(BOB)
        ),
        400,
        channel_error(
            "invalid_cursor",
            f"channel: invalid cursor: seq {other} is not a message of channel ops",
            "seq",
            f"{other} is not a message of channel ops",
        ),
    )


async def test_bad_recv_parameters(ch: Server) -> None:
    resp = await recv(ch.http, limit=0)
    assert resp.status_code == 400, resp.text
    assert resp.json()["diagnostic"]["code"] == "invalid_limit"
    resp = await recv(ch.http, wait="maybe")
    assert resp.status_code == 400, resp.text


async def test_bad_replies(ch: Server) -> None:
    async def reply(body: dict[str, Any]) -> httpx.Response:
        return await ch.http.post("/api/agent/channels/reply", json=body, headers=identity(BOB))

    missing = channel_error("message_not_found", 'target peer not found: message_id="ghost"')
    missing["diagnostic"]["evidence"] = {"message_id": "ghost"}
    await refused(ch, lambda: reply({"reply_to_message_id": "ghost", "body": 1}), 404, missing)
    source = await sent(ch.http, "question")
    await refused(
        ch,
        lambda: reply({"reply_to_message_id": source["message_id"], "body": 1, "metadata": metadata()}),
        422,
        invalid("metadata.message_kind", "must be reply"),
    )
    await refused(
        ch, lambda: reply({"reply_to_message_id": source["message_id"]}), 422, invalid("body", "is required")
    )
    # With metadata of kind reply, it is used as given.
    resp = await reply(
        {"reply_to_message_id": source["message_id"], "body": 1, "metadata": metadata(kind="reply")}
    )
    assert resp.status_code == 202, resp.text


@pytest.mark.parametrize("case", IDENTITY_ERRORS, ids=list(IDENTITY_ERRORS))
async def test_identity_errors(ch: Server, case: str) -> None:
    await start_session(ch.http, "worker")
    await start_session(ch.http, "finished")
    await stop_session(ch.http, "finished")
    headers, body = IDENTITY_ERRORS[case]
    payload = {"body": 1, "metadata": metadata()}
    status = 401
    await refused(
        ch,
        lambda: ch.http.post(f"/api/agent/channels/{CHANNEL}/send", json=payload, headers=headers),
        status,
        body,
    )
    resp = await ch.http.get(f"/api/agent/channels/{CHANNEL}/recv", headers=headers)
    assert_error(resp, status, body)


# ---------------------------------------------------------------- operators


async def test_operator_channels_messages_and_members(ch: Server) -> None:
    dup = await ch.http.post("/v1/channels", json={"id": CHANNEL})
    assert dup.status_code == 409, dup.text
    assert dup.json()["code"] == 6  # ALREADY_EXISTS, as google.rpc.Status
    listed = ok(await ch.http.get("/v1/channels"))
    assert [c["id"] for c in listed["channels"]] == [CHANNEL]

    posted = await ch.http.post(
        f"/v1/channels/{CHANNEL}/messages", json={"body": "from ops", "metadata": metadata()}
    )
    assert posted.status_code == 202, posted.text
    assert posted.json()["message"]["from_session_id"] == ""
    by_alice = await sent(ch.http, "hello")
    acked = await ch.http.post(
        f"/api/agent/channels/{CHANNEL}/ack", json={"seq": by_alice["seq"]}, headers=identity(BOB)
    )
    assert acked.status_code == 200
    messages = ok(await ch.http.get(f"/v1/channels/{CHANNEL}/messages"))
    assert [m["body"] for m in messages["messages"]] == ["from ops", "hello"]
    assert messages["next_after_seq"] == 0
    page = ok(await ch.http.get(f"/v1/channels/{CHANNEL}/messages", params={"limit": 1}))
    assert [m["body"] for m in page["messages"]] == ["from ops"]
    rest = ok(
        await ch.http.get(f"/v1/channels/{CHANNEL}/messages", params={"after_seq": page["next_after_seq"]})
    )
    assert [m["body"] for m in rest["messages"]] == ["hello"]

    members = ok(await ch.http.get(f"/v1/channels/{CHANNEL}/members"))
    assert members == {
        "members": [
            {
                "session_id": ALICE,
                "agent_name": "coder",
                "read_seq": 0,
                "joined_at": ANY_TIME,
                "last_seen_at": ANY_TIME,
            },
            {
                "session_id": BOB,
                "agent_name": "coder",
                "read_seq": by_alice["seq"],
                "joined_at": ANY_TIME,
                "last_seen_at": ANY_TIME,
            },
        ]
    }
    missing = await ch.http.get("/v1/channels/nope/members")
    assert missing.status_code == 404
    bad = await ch.http.post("/v1/channels", json={"id": "Bad Id"})
    assert bad.status_code == 400
    assert bad.json()["details"][-1]["field_violations"] == [
        {"field": "id", "description": "must match ^[a-z0-9][a-z0-9_-]{0,63}$"}
    ]


async def test_agent_channel_list(ch: Server) -> None:
    body = ok(await ch.http.get("/api/agent/channels", headers=identity(ALICE)))
    assert body == {
        "channels": [
            {
                "id": CHANNEL,
                "display_name": CHANNEL,
                "purpose": "network_channel",
                "workspace_id": "default",
                "allowed_message_kinds": ALL_KINDS,
                "last_activity_at": ANY_TIME,
            }
        ]
    }


# ------------------------------------------------- task runs' coordination channels


async def test_each_task_run_gets_a_coordination_channel(ch: Server) -> None:
    created = await create_task(ch.http, "Coordinate")
    run_id = created["run"]["id"]
    channel_id = f"run-{run_id}"
    listed = ok(await ch.http.get("/v1/channels"))
    run_channel = next(c for c in listed["channels"] if c["id"] == channel_id)
    assert run_channel == {
        "id": channel_id,
        "channel": None,
        "display_name": channel_id,
        "purpose": "task_run_coordination",
        "workspace_id": "default",
        "task_id": created["task"]["id"],
        "run_id": run_id,
        "workflow_id": None,
        "allowed_message_kinds": ALL_KINDS,
        "last_activity_at": ANY_TIME,
    }
    # Alice holds the run: the channel is hers to use; bob does not see it listed.
    claim = await claimed(ch.http, ALICE)
    assert claim["run"]["id"] == run_id
    mine = ok(await ch.http.get("/api/agent/channels", headers=identity(ALICE)))["channels"]
    assert [c["id"] for c in mine] == [CHANNEL, channel_id]
    theirs = ok(await ch.http.get("/api/agent/channels", headers=identity(BOB)))["channels"]
    assert [c["id"] for c in theirs] == [CHANNEL]
    # Bob posts to it (a hand-off): now a member, it lists it too.
    resp = await send(ch.http, {"note": "over to you"}, BOB, channel_id)
    assert resp.status_code == 202, resp.text
    theirs = ok(await ch.http.get("/api/agent/channels", headers=identity(BOB)))["channels"]
    assert [c["id"] for c in theirs] == [CHANNEL, channel_id]
    members = ok(await ch.http.get(f"/v1/channels/{channel_id}/members"))["members"]
    assert [m["session_id"] for m in members] == [ALICE, BOB]
    # Alice is a member as the run's holder: she has not posted or acknowledged.
    assert members[0] == {
        "session_id": ALICE,
        "agent_name": "coder",
        "read_seq": 0,
        "joined_at": None,
        "last_seen_at": None,
    }


async def test_me_and_context_show_channels_inbox_and_peers(ch: Server) -> None:
    created = await create_task(ch.http, "Coordinate")
    run_id = created["run"]["id"]
    channel_id = f"run-{run_id}"
    await claimed(ch.http, ALICE)
    sent_ids = []
    for text in ["first line\nsecond line", {"k": 1}, "x" * 300]:
        resp = await send(ch.http, text, BOB, channel_id)
        assert resp.status_code == 202, resp.text
        sent_ids.append(resp.json()["message"])
    me = ok(await ch.http.get("/api/agent/me", headers=identity(ALICE)))["me"]
    assert [c["id"] for c in me["channels"]] == [CHANNEL, channel_id]
    context = ok(await ch.http.get("/api/agent/context", headers=identity(ALICE)))["context"]
    assert context["coordination_channel"] == {
        "available": True,
        "channel": {
            "id": channel_id,
            "display_name": channel_id,
            "purpose": "task_run_coordination",
            "workspace_id": "default",
            "task_id": created["task"]["id"],
            "run_id": run_id,
            "allowed_message_kinds": ALL_KINDS,
            "last_activity_at": ANY_TIME,
        },
    }
    newest_first = list(reversed(sent_ids))
    assert context["inbox_summary"] == {
        "section": {"limit": 8, "returned": 3, "truncated": False},
        "unread_count": 3,
        "items": [
            {
                "message_id": m["message_id"],
                "channel_id": channel_id,
                "kind": "status",
                "metadata": metadata(channel_id),
                "preview": preview,
                "timestamp": m["timestamp"],
            }
            for m, preview in zip(newest_first, ["x" * 180, '{"k":1}', "first line"], strict=True)
        ],
    }
    assert context["peer_roster"] == {
        "section": {"limit": 8, "returned": 1, "truncated": False},
        "peers": [
            {
                "peer_id": BOB,
                "session_id": BOB,
                "display_name": "coder",
                "channel_id": channel_id,
                "capabilities": [],
            }
        ],
    }
    # Acknowledged messages leave the inbox.
    acked = await ch.http.post(
        f"/api/agent/channels/{channel_id}/ack", json={"seq": sent_ids[1]["seq"]}, headers=identity(ALICE)
    )
    assert acked.status_code == 200, acked.text
    context = ok(await ch.http.get("/api/agent/context", headers=identity(ALICE)))["context"]
    assert context["inbox_summary"]["unread_count"] == 1
    assert [i["message_id"] for i in context["inbox_summary"]["items"]] == [sent_ids[2]["message_id"]]
