"""Helpers shared by the channel tests: sessions and a channel to talk on,
message bodies as the routes return them, and a snapshot of everything
channels store (to check that refused input writes nothing)."""

from __future__ import annotations

from typing import Any

import httpx

from service.store.agh.channel_tables import channel_members, channel_messages, channels
from tests.agh_support import ANY_SEQ, ANY_TIME, ANY_UUID, identity, rows_and_log, start_session
from tests.conftest import Server

ALICE, BOB = "alice", "bob"
CHANNEL = "ops"


def metadata(channel: str = CHANNEL, kind: str = "status", **extra: Any) -> dict[str, Any]:
    return {
        "task_id": "task-1",
        "run_id": "run-1",
        "coordination_channel_id": channel,
        "correlation_id": "corr-1",
        "message_kind": kind,
        **extra,
    }


async def setup_channel(http: httpx.AsyncClient, channel: str = CHANNEL) -> None:
    """Sessions `alice` (agent coder) and `bob` (agent coder), and a network channel."""
    for sid in (ALICE, BOB):
        await start_session(http, sid)
    resp = await http.post("/v1/channels", json={"id": channel})
    assert resp.status_code == 201, resp.text


async def send(
    http: httpx.AsyncClient, body: Any, session: str = ALICE, channel: str = CHANNEL, **fields: Any
) -> httpx.Response:
    payload = {"body": body, "metadata": metadata(channel), **fields}
    return await http.post(f"/api/agent/channels/{channel}/send", json=payload, headers=identity(session))


async def sent(
    http: httpx.AsyncClient, body: Any, session: str = ALICE, channel: str = CHANNEL
) -> dict[str, Any]:
    resp = await send(http, body, session, channel)
    assert resp.status_code == 202, resp.text
    return dict(resp.json()["message"])


def message_body(
    body: Any,
    *,
    sender: str = ALICE,
    channel: str = CHANNEL,
    kind: str = "status",
    message_id: Any = ANY_UUID,
    **extra: Any,
) -> dict[str, Any]:
    """A message as the AGH routes return it."""
    return {
        "message_id": message_id,
        "channel_id": channel,
        "from_session_id": sender,
        "body": body,
        "metadata": metadata(channel, kind),
        "timestamp": ANY_TIME,
        "seq": ANY_SEQ,
        **extra,
    }


_TABLES = (channels, channel_messages, channel_members)


async def snapshot(server: Server) -> dict[str, Any]:
    """Every channel row, and the whole event log."""
    return await rows_and_log(server, _TABLES)
