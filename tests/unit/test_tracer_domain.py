"""The Agent Tracer domain called directly: the completion policy table,
the helpers that shape tasks, the ensure rows no HTTP call can reach, the
turn-closed hook, and the stale-task reaper (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete

from service.app.assembly import Core
from service.base.config import Settings
from service.base.errors import InvalidArgument
from service.domain.tracer import ingest, lifecycle, reads
from service.domain.tracer.lifecycle import EndAction, EndSession, EnsureSession, StartTask, decide_end
from service.domain.tracer.model import (
    ENDPOINT_KINDS,
    normalize_file_paths,
    normalize_workspace_path,
    slugify,
)
from service.domain.tracer.turns import BY_ANSWER, BY_NEXT_MESSAGE, BY_SESSION_END, on_turn_closed
from service.store.log import Tx
from service.store.store import Store
from service.store.tracer import queries as q
from service.store.tracer.queries import TurnRecord
from service.store.tracer.tables import tracer_sessions

WS = "default"

# (task status, running sessions, kind, reason, completeTask, background running) -> (action, row)
DECISIONS: list[tuple[tuple[str, int, str, str | None, bool, bool], tuple[EndAction, int]]] = [
    (("waiting", 0, "primary", "explicit_exit", True, False), (EndAction.LEAVE_OPEN, 1)),
    (("completed", 0, "background", None, True, False), (EndAction.LEAVE_OPEN, 1)),
    (("running", 1, "primary", "explicit_exit", True, False), (EndAction.LEAVE_OPEN, 2)),
    (("running", 2, "background", None, False, False), (EndAction.LEAVE_OPEN, 2)),
    (("running", 0, "background", None, False, False), (EndAction.COMPLETE, 3)),
    (("running", 0, "background", "idle", False, False), (EndAction.COMPLETE, 3)),
    (("running", 0, "primary", "explicit_exit", False, True), (EndAction.COMPLETE, 4)),
    (("running", 0, "primary", "runtime_terminated", False, False), (EndAction.COMPLETE, 4)),
    (("running", 0, "primary", None, True, False), (EndAction.COMPLETE, 5)),
    (("running", 0, "primary", "idle", True, True), (EndAction.COMPLETE, 5)),
    (("running", 0, "primary", "assistant_turn_complete", True, False), (EndAction.COMPLETE, 5)),
    (("running", 0, "primary", "idle", False, False), (EndAction.WAIT, 6)),
    (("running", 0, "primary", "idle", False, True), (EndAction.WAIT, 6)),
    (("running", 0, "primary", "assistant_turn_complete", False, False), (EndAction.WAIT, 7)),
    (("running", 0, "primary", "assistant_turn_complete", True, True), (EndAction.WAIT, 7)),
    (("running", 0, "primary", None, False, False), (EndAction.LEAVE_OPEN, 8)),
    (("running", 0, "primary", None, False, True), (EndAction.LEAVE_OPEN, 8)),
]


@pytest.mark.parametrize(("given", "expected"), DECISIONS)
def test_end_decision_table(given: tuple[str, int, str, str | None, bool, bool], expected: Any) -> None:
    status, running, kind, reason, complete, background = given
    assert (
        decide_end(
            task_status=status,
            running_sessions=running,
            task_kind=kind,
            reason=reason,
            complete_task=complete,
            background_running=background,
        )
        == expected
    )


def test_every_row_of_the_table_is_covered() -> None:
    assert {row for _, (_, row) in DECISIONS} == set(range(1, 9))


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Fix the login bug", "fix-the-login-bug"),
        ("  --Hello, World!--  ", "hello-world"),
        ("Ünïcode & émojis 🎉 2", "n-code-mojis-2"),
        ("!!!", "task"),
        ("", "task"),
        ("a" * 100, "a" * 80),
    ],
)
def test_slug(title: str, slug: str) -> None:
    assert slugify(title) == slug


@pytest.mark.parametrize(
    ("path", "normal"),
    [
        ("/repo//app/", "/repo/app"),
        ("  /a///b  ", "/a/b"),
        ("/", "/"),
        ("//", "/"),
        ("   ", None),
        (None, None),
    ],
)
def test_workspace_path(path: str | None, normal: str | None) -> None:
    assert normalize_workspace_path(path) == normal


def test_file_paths() -> None:
    assert normalize_file_paths([" a ", "", "b", "a", "  "]) == ["a", "b"]


# ----------------------------------------------------------- with a store


def ensure_req(rsid: str = "rs", **kw: Any) -> EnsureSession:
    return EnsureSession(runtime_source="claude-plugin", runtime_session_id=rsid, title="T", **kw)


async def test_ensure_rebinds_when_the_bound_session_is_gone(store: Store) -> None:
    """Row 1b with a missing session, then row 3; and row 2 with no session
    left falls through to row 3."""
    first = await lifecycle.ensure_session(store, WS, ensure_req())

    def drop_sessions(tx: Tx) -> None:
        tx.conn.execute(delete(tracer_sessions).where(tracer_sessions.c.task_id == first.task_id))

    await store.write(drop_sessions)
    again = await lifecycle.ensure_session(store, WS, ensure_req())
    assert (again.task_id, again.task_created, again.session_created) == (first.task_id, False, True)
    await lifecycle.end_session(store, WS, EndSession("claude-plugin", "rs", completion_reason="idle"))
    await store.write(drop_sessions)
    no_resume = await lifecycle.ensure_session(store, WS, ensure_req(resume=False))
    assert (no_resume.task_id, no_resume.task_created, no_resume.session_created) == (
        first.task_id,
        False,
        True,
    )
    detail = await reads.task_detail(store, WS, first.task_id)
    assert detail["task"]["status"] == "running"
    assert [s["id"] for s in detail["sessions"]] == [no_resume.session_id]


def conversation(task_id: str, session_id: str, *kinds: str) -> list[ingest.EventIn]:
    return [
        ingest.EventIn(kind=k, task_id=task_id, lane="user", session_id=session_id, title=f"{k} {i}")
        for i, k in enumerate(kinds)
    ]


async def test_turn_closed_hook_runs_in_the_ingest_transaction(store: Store) -> None:
    ensured = await lifecycle.ensure_session(store, WS, ensure_req())
    calls: list[tuple[str, int, str, list[str]]] = []

    def hook(tx: Tx, workspace: str, turn: TurnRecord, reason: str) -> None:
        titles = [e["title"] for e in q.turn_events(tx.conn, workspace, turn.id)]
        calls.append((workspace, turn.turn_index, reason, titles))

    unregister = on_turn_closed(hook)
    try:
        kinds = (
            "user.message",
            "tool.used",
            "assistant.response",
            "user.message",
            "user.message",
            "session.ended",
        )
        items = conversation(ensured.task_id, ensured.session_id, *kinds)
        result = await ingest.ingest_events(store, WS, ENDPOINT_KINDS["events"], items)
        assert len(result.accepted) == 6 and result.rejected == []
    finally:
        unregister()
    assert calls == [
        (WS, 0, BY_ANSWER, ["user.message 0", "tool.used 1", "assistant.response 2"]),
        (WS, 1, BY_NEXT_MESSAGE, ["user.message 3"]),
        (WS, 2, BY_SESSION_END, ["user.message 4", "session.ended 5"]),
    ]


async def test_a_failing_hook_rolls_the_whole_request_back(store: Store) -> None:
    ensured = await lifecycle.ensure_session(store, WS, ensure_req())
    before = await reads.timeline(store, WS, ensured.task_id, limit=0, cursor=None)

    def hook(tx: Tx, workspace: str, turn: TurnRecord, reason: str) -> None:
        raise RuntimeError("rule engine down")

    unregister = on_turn_closed(hook)
    try:
        items = conversation(ensured.task_id, ensured.session_id, "user.message", "assistant.response")
        with pytest.raises(RuntimeError):
            await ingest.ingest_events(store, WS, ENDPOINT_KINDS["events"], items)
    finally:
        unregister()
    assert await reads.timeline(store, WS, ensured.task_id, limit=0, cursor=None) == before
    assert (await reads.task_detail(store, WS, ensured.task_id))["turns"] == []


async def test_validation_happens_before_anything_is_written(store: Store) -> None:
    ensured = await lifecycle.ensure_session(store, WS, ensure_req())
    items = conversation(ensured.task_id, ensured.session_id, "user.message", "nope")
    with pytest.raises(InvalidArgument) as raised:
        await ingest.ingest_events(store, WS, ENDPOINT_KINDS["conversation"], items)
    assert raised.value.reason == "VALIDATION_ERROR"
    assert [v.field for v in raised.value.violations] == ["events.1.kind"]
    assert (await reads.task_detail(store, WS, ensured.task_id))["turns"] == []


async def test_reaper_completes_running_tasks_left_without_a_session(store: Store) -> None:
    # abandoned: its runtime never called sessions/end, then its session was closed
    await lifecycle.start_task(store, WS, StartTask(title="Abandoned", task_id="abandoned"))
    await lifecycle.finalize_task(store, WS, "abandoned", "errored", error_message="x")
    await ingest.ingest_events(
        store,
        WS,
        ENDPOINT_KINDS["events"],
        [ingest.EventIn(kind="thought.logged", task_id="abandoned", lane="planning", task_status="running")],
    )
    await lifecycle.start_task(store, WS, StartTask(title="Live", task_id="live"))  # has a running session
    await lifecycle.start_task(store, WS, StartTask(title="Waiting", task_id="waiting"))
    await lifecycle.finalize_task(store, WS, "waiting", "errored", error_message="x")
    await ingest.ingest_events(
        store,
        WS,
        ENDPOINT_KINDS["events"],
        [ingest.EventIn(kind="thought.logged", task_id="waiting", lane="planning", task_status="waiting")],
    )
    now = datetime.now(UTC)
    # not idle long enough yet
    assert await lifecycle.reap_stale_tasks(store, idle=timedelta(minutes=30), now=now) == []
    later = now + timedelta(minutes=31)
    assert await lifecycle.reap_stale_tasks(store, idle=timedelta(minutes=30), now=later) == [
        (WS, "abandoned")
    ]
    assert await lifecycle.reap_stale_tasks(store, idle=timedelta(minutes=30), now=later) == []
    statuses = {
        t: (await reads.task_detail(store, WS, t))["task"]["status"] for t in ("abandoned", "live", "waiting")
    }
    assert statuses == {"abandoned": "completed", "live": "running", "waiting": "waiting"}
    last = (await reads.timeline(store, WS, "abandoned", limit=0, cursor=None)).items[-1]
    assert (last["kind"], last["body"]) == ("task.complete", "Reaped — runtime terminated without notice")


async def test_core_runs_the_reaper_when_configured(database_url: str) -> None:
    off = Core(Settings(grpc_port=0, database_url=database_url, tracer_reaper_interval_seconds=0))
    await off.start(serve_grpc=False)
    try:
        assert off.reaper._task is None
    finally:
        await off.stop()
    on = Core(Settings(grpc_port=0, database_url=database_url, tracer_reaper_interval_seconds=3600))
    await on.start(serve_grpc=False)
    try:
        task = on.reaper._task
        assert task is not None and not task.done()
        assert await on.reaper.run_once() == []
    finally:
        await on.stop()
    assert task.cancelled()


def test_reaper_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTPLANE_TRACER_REAPER_INTERVAL_SECONDS", "5")
    monkeypatch.setenv("AGENTPLANE_TRACER_STALE_TASK_SECONDS", "90")
    settings = Settings.from_env()
    assert (settings.tracer_reaper_interval_seconds, settings.tracer_stale_task_seconds) == (5.0, 90.0)
    assert (Settings().tracer_reaper_interval_seconds, Settings().tracer_stale_task_seconds) == (60.0, 1800.0)
