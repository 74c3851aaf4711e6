"""A long-polling claim over a real socket: a client that disconnects while
waiting claims nothing (the gateway cancels its call), so work queued after
it left goes to the next claimer."""

from __future__ import annotations

import asyncio
import json

import httpx

from tests.agh_support import identity
from tests.conftest import LiveServer


async def test_disconnected_waiter_claims_nothing(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        for sid in ("gone", "next"):
            body = {"session_id": sid, "session_name": sid, "agent_name": "coder"}
            assert (await http.post("/sessions", json=body)).status_code == 200
        port = int(live_server.base_url.rsplit(":", 1)[1])
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        payload = json.dumps({"wait": True, "wait_seconds": 30}).encode()
        head = "".join(f"{k}: {v}\r\n" for k, v in identity("gone").items())
        writer.write(
            (
                "POST /api/agent/tasks/claim-next HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"{head}Content-Length: {len(payload)}\r\n\r\n"
            ).encode()
            + payload
        )
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.2)  # the server notices the disconnect
        created = (await http.post("/api/tasks", json={"title": "after the waiter left"})).json()
        await asyncio.sleep(0.2)
        task = (await http.get(f"/api/tasks/{created['task']['id']}")).json()
        assert [r["status"] for r in task["runs"]] == ["queued"]
        resp = await http.post("/api/agent/tasks/claim-next", json={}, headers=identity("next"))
        assert resp.status_code == 200
        assert resp.json()["claim"]["run"]["id"] == created["run"]["id"]
