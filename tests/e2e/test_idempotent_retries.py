"""Retries against real `agentplane serve` processes: keyed writes in flight
when the server is killed with -9 are each stored once after the client
retries them; the hook spool keeps each step's key, so a redelivery writes
nothing twice."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select

from service.store.idempotency import keys
from service.store.tables import log_entries
from tests.conftest import LiveServer, free_port
from tests.e2e.hook_support import Api, Hooks, live_agentplane, payloads, spooled
from tests.e2e.test_serve_process import serve

SID = "550e8400-e29b-41d4-a716-446655440000"


def batch(key: str) -> dict[str, object]:
    event = {
        "event_type": "tool_use",
        "session_id": SID,
        "timestamp": "2024-01-15T10:30:00Z",
        "data": {"k": key},
    }
    return {"events": [event]}


def stored_markers(database_url: str) -> Counter[str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(log_entries.c.data).where(log_entries.c.type == "trenchcoat.event"))
            return Counter((json.loads(d) if isinstance(d, str) else d)["data"]["k"] for (d,) in rows)
    finally:
        engine.dispose()


def stored_keys(database_url: str) -> set[str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(select(keys.c.key)).scalars())
    finally:
        engine.dispose()


def test_writes_cut_by_kill_9_are_stored_once_after_retries(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ("--http-port", str(port), "--grpc-port", str(free_port()))
    sent: list[str] = []
    acked: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=base, timeout=5) as http:
            while not stop.is_set():
                key = uuid.uuid4().hex
                with lock:
                    sent.append(key)
                try:
                    resp = http.post("/api/v1/events", json=batch(key), headers={"Idempotency-Key": key})
                except httpx.HTTPError:
                    return  # the server is gone
                assert resp.status_code == 200, resp.text
                with lock:
                    acked.add(key)

    with serve(tmp_path, database_url, *args, health=f"{base}/healthz") as proc:
        threads = [threading.Thread(target=client) for _ in range(16)]
        for t in threads:
            t.start()
        while len(acked) < 300:
            time.sleep(0.01)
        proc.kill()  # -9: writes in flight, answers not sent
        proc.wait()
        stop.set()
        for t in threads:
            t.join(30)
    before = stored_markers(database_url)
    assert all(before[k] == 1 for k in acked)  # nothing acknowledged lost
    unacked_stored = [k for k in sent if k not in acked and before[k]]

    with serve(tmp_path, database_url, *args, health=f"{base}/healthz"), httpx.Client(base_url=base) as http:
        lost = set()
        for key in sent:  # the client retries everything it sent
            resp = http.post("/api/v1/events", json=batch(key), headers={"Idempotency-Key": key})
            if resp.status_code == 409:
                # committed, its answer lost in the crash: said so, not written again
                assert "answer is not available" in resp.text, resp.text
                lost.add(key)
            else:
                assert (resp.status_code, resp.json()) == (200, {"data": {"accepted": 1, "rejected": 0}})
    after = stored_markers(database_url)
    assert {k: after[k] for k in sent} == {k: 1 for k in sent}  # every write once
    assert lost <= set(unacked_stored)
    print(f"{len(sent)} sent, {len(acked)} acknowledged, {len(unacked_stored)} committed unacknowledged")


def test_the_hook_spool_keeps_each_steps_key(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    hooks = Hooks(f"http://127.0.0.1:{port}", tmp_path / "state", timeout_ms=500)
    session = payloads("claude-code")[:6]
    for _, raw in session:  # nothing listens: spooled with their keys
        assert hooks.run("claude-code", raw).spooled
    plans = spooled(hooks)
    step_keys = {s["key"] for p in plans for s in p["steps"] if s["op"] != "stop-check"}
    assert len(step_keys) == sum(1 for p in plans for s in p["steps"] if s["op"] != "stop-check")
    with live_agentplane(tmp_path, database_url, port) as api:
        hooks.timeout_ms = 10_000
        assert hooks.run("claude-code", session[-1][1]).delivered  # delivers the spool first
        assert spooled(hooks) == []
        assert step_keys <= stored_keys(database_url)  # each step was sent with its key
        task = api.task_by_title("shop")
        before = api.timeline(task["id"])
        # A redelivery (answers lost, say): every step replays its first answer.
        hooks.spool.write_text("".join(json.dumps(p) + "\n" for p in plans))
        assert hooks.run("claude-code", session[-1][1]).delivered
        assert spooled(hooks) == []
        assert [e["id"] for e in api.timeline(task["id"])] == [e["id"] for e in before]
        assert "refused: HTTP" not in hooks.log()  # the server refused nothing


async def test_a_hook_step_whose_answer_was_lost_is_sent_again_without_its_key(
    tmp_path: Path, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first delivery commits but its answers are not stored (as in a crash);
    the redelivery meets 409 for each keyed step, sends it again without the
    key, and the event ids keep it from being recorded twice."""
    down = Hooks(f"http://127.0.0.1:{free_port()}", tmp_path / "state", timeout_ms=500)
    session = payloads("claude-code")[:6]
    for _, raw in session:
        assert down.run("claude-code", raw).spooled
    plans = spooled(down)
    hooks = Hooks(live_server.base_url, tmp_path / "state")

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the server died here")

    monkeypatch.setattr("service.rpc.idempotency._store_answer", crash)
    assert (await asyncio.to_thread(hooks.run, "claude-code", session[-1][1])).delivered
    monkeypatch.undo()
    store = live_server.app.state.core.store
    unanswered = await store.read(
        lambda c: c.execute(select(keys.c.key).where(keys.c.answer.is_(None))).all()
    )
    assert len(unanswered) >= 3  # the steps the redelivery will meet as 409
    with httpx.Client(timeout=30) as http:
        api = Api(live_server.base_url, http)
        task = await asyncio.to_thread(api.task_by_title, "shop")
        before = await asyncio.to_thread(api.timeline, task["id"])
        hooks.spool.write_text("".join(json.dumps(p) + "\n" for p in plans))
        assert (await asyncio.to_thread(hooks.run, "claude-code", session[-1][1])).delivered
        assert spooled(hooks) == []
        assert "refused: HTTP" not in hooks.log()
        after = await asyncio.to_thread(api.timeline, task["id"])
    assert [e["id"] for e in after] == [e["id"] for e in before]
