"""The hook adapter without a server: what each recorded hook plans to send,
the Stop hook's transcript fallback and rule check, the spool's bound, and the
backlog each call reports."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from agentplane_client.hooks.config import HookConfig
from agentplane_client.hooks.mapping import RUNTIMES, plan_for
from agentplane_client.hooks.run import run_hook
from agentplane_client.hooks.spool import Spool

from tests.e2e.hook_support import payloads

ALL = [(runtime, name, raw) for runtime in RUNTIMES for name, raw in payloads(runtime)]


def events(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for step in plan["steps"] if step["op"] == "events" for e in step["events"]]


@pytest.mark.parametrize(("runtime", "name", "raw"), ALL, ids=[f"{r}-{n}" for r, n, _ in ALL])
def test_every_recorded_hook_plans_ensure_first_and_identified_events(
    runtime: str, name: str, raw: bytes
) -> None:
    plan = plan_for(RUNTIMES[runtime], json.loads(raw))
    payload = json.loads(raw)
    assert plan["hook"] == payload["hook_event_name"]
    first = plan["steps"][0]
    assert first["op"] == "ensure"
    assert first["body"]["runtimeSessionId"] == payload["session_id"]
    assert first["body"]["runtimeSource"] == RUNTIMES[runtime].source
    for event in events(plan):
        assert len(event["eventId"]) == 36 and event["createdAt"] == plan["at"]
    if plan["hook"] != "PreToolUse":  # which only makes sure the session exists
        assert events(plan), f"{name} sends no event"


def test_stop_reads_the_answer_from_the_transcript_when_the_hook_omits_it(tmp_path: Path) -> None:
    transcript = tmp_path / "session.jsonl"
    lines = [
        {"type": "user", "message": {"role": "user", "content": "Fix it"}},
        {"type": "assistant", "message": {"content": [{"type": "text", "text": "Looking."}]}},
        {"type": "assistant", "message": {"content": [{"type": "tool_use", "name": "Bash", "input": {}}]}},
        {"type": "assistant", "message": {"content": [{"type": "text", "text": "Fixed it."}]}},
        {"type": "system", "subtype": "stop_hook_summary"},
    ]
    transcript.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    payload = {
        "session_id": "cc-1",
        "cwd": "/src/app",
        "hook_event_name": "Stop",
        "stop_hook_active": False,
        "transcript_path": str(transcript),
    }
    plan = plan_for(RUNTIMES["claude-code"], payload)
    assert [s["op"] for s in plan["steps"]] == ["ensure", "stop-check", "events", "end"]
    [answer] = events(plan)
    assert (answer["kind"], answer["title"], answer["body"]) == (
        "assistant.response",
        "Fixed it.",
        "Fixed it.",
    )

    # the agent already went on once for a rule: no second check
    again = plan_for(RUNTIMES["claude-code"], {**payload, "stop_hook_active": True})
    assert [s["op"] for s in again["steps"]] == ["ensure", "events", "end"]


def test_the_spool_is_bounded(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = HookConfig.from_env(
        {
            "AGENTPLANE_URL": f"http://127.0.0.1:{port}",
            "AGENTPLANE_HOOK_STATE_DIR": str(tmp_path),
            "AGENTPLANE_HOOK_SPOOL_MAX_BYTES": "4000",
        }
    )
    raw = dict(payloads("claude-code"))["12-PostToolUse-Bash"]
    results = [run_hook("claude-code", raw, config) for _ in range(10)]
    kept = sum(r.spooled for r in results)
    assert 0 < kept < 10 and all(r.stdout == "" for r in results)
    spool = tmp_path / "spool" / "spool.jsonl"
    assert spool.stat().st_size <= 4000 and len(spool.read_text().splitlines()) == kept
    assert (tmp_path / "hook.log").read_text().count("spool full") == 10 - kept


def test_each_call_reports_the_plans_still_waiting(tmp_path: Path) -> None:
    """What the transport sends as Agentplane-Hook-Spool while a run delivers
    the spool: the plans waiting, the one being delivered included."""
    plans = [{"hook": f"H{i}", "steps": [{"op": "end", "body": {}}]} for i in range(3)]
    earlier = Spool(str(tmp_path), 1 << 20, lambda _: None)
    for plan in plans:
        assert earlier.append(plan)
    path = tmp_path / "spool.jsonl"
    first, *rest = path.read_text().splitlines(keepends=True)
    path.write_text(first + "not a plan\n" + "".join(rest))  # set aside as it is met

    spool = Spool(str(tmp_path), 1 << 20, lambda _: None)  # the next run
    reported: list[int | None] = []

    def deliver(plan: dict[str, Any]) -> dict[str, Any] | None:
        reported.append(spool.backlog())
        return {**plan, "steps": []} if plan["hook"] == "H2" else None  # H2 only partly

    assert not spool.flush(deliver, lambda: 1.0)
    assert reported == [4, 2, 1] and spool.backlog() == 1  # what is left of H2 waits
    assert spool.append({"hook": "own", "steps": []}) and spool.backlog() == 2
    assert len(spool.read()) == 2
