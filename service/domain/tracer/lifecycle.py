"""Tasks and monitor sessions: start, link, finalize, runtime-session ensure
and end with the completion policy, and the stale-task reaper (reference
§5 and §6).

A monitor session is also written to the shared `sessions` table (status
`running`, then `finished`), so the other families list it; its tracer
status (`completed` or `errored`) stays in `tracer_sessions`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from service.base.ids import uuid7
from service.domain.tracer.display import task_views
from service.domain.tracer.model import (
    BACKGROUND,
    BINDING_DELETED,
    BINDING_UPDATED,
    COMPLETED,
    COMPLETION_REASONS,
    MIN_ONE_CHAR,
    ORIGINS,
    PRIMARY,
    RUNNING,
    SERVER_SDK,
    SESSION_ENDED_ENTRY,
    SESSION_STARTED,
    TASK_COMPLETED,
    TASK_KINDS,
    TASK_STARTED,
    TASK_UPDATED,
    TERMINAL_STATUSES,
    WAITING,
    Violations,
    iso,
    normalize_workspace_path,
    now_iso,
    reject_nul,
    session_view,
    slugify,
    task_not_found,
    task_view,
)
from service.domain.tracer.timeline import EventWriter, NewEvent
from service.store import sessions as shared_sessions
from service.store.log import Tx
from service.store.sessions import SessionRecord as SharedSession
from service.store.store import Store
from service.store.tracer import queries as q
from service.store.tracer.queries import BindingRecord, SessionRecord, TaskRecord

RUNTIME_SESSION_ENDED = "Runtime session ended"
BACKGROUND_COMPLETED = "Background task completed"
CASCADE_COMPLETED = "Background task cascade-completed with parent"
REAPED = "Reaped — runtime terminated without notice"
# The shared session list speaks seed 004's two statuses.
SHARED_RUNNING, SHARED_FINISHED = "running", "finished"
RELATION_FIELDS = ("parent_task_id", "parent_session_id", "background_task_id")
# How deep lineage walks go (a guard against cycles made with tasks/link).
MAX_LINEAGE_DEPTH = 64

T = TypeVar("T")


class EndAction(StrEnum):
    LEAVE_OPEN = "leave_open"
    COMPLETE = "complete"
    WAIT = "wait"


def decide_end(
    *,
    task_status: str,
    running_sessions: int,
    task_kind: str,
    reason: str | None,
    complete_task: bool,
    background_running: bool,
) -> tuple[EndAction, int]:
    """Upstream's `RuntimeSessionEnd.decide`: what ending a monitor session
    does to its task, and the number of the row of the table (reference
    §5.2) that decided it, rows tried top to bottom."""
    if task_status != RUNNING:
        return EndAction.LEAVE_OPEN, 1
    if running_sessions != 0:
        return EndAction.LEAVE_OPEN, 2
    if task_kind == BACKGROUND:
        return EndAction.COMPLETE, 3
    if reason in ("explicit_exit", "runtime_terminated"):
        return EndAction.COMPLETE, 4
    if complete_task and not (reason == "assistant_turn_complete" and background_running):
        return EndAction.COMPLETE, 5
    if reason == "idle" and not complete_task:
        return EndAction.WAIT, 6
    if reason == "assistant_turn_complete" and (not complete_task or background_running):
        return EndAction.WAIT, 7
    return EndAction.LEAVE_OPEN, 8


@dataclass
class StartTask:
    title: str
    task_id: str | None = None
    workspace_path: str | None = None
    runtime_source: str | None = None
    summary: str | None = None
    task_kind: str | None = None
    # None keeps the existing relation, "" clears it.
    parent_task_id: str | None = None
    parent_session_id: str | None = None
    background_task_id: str | None = None
    metadata: dict[str, Any] | None = None
    origin: str | None = None


@dataclass
class LinkTask:
    task_id: str
    title: str | None = None
    task_kind: str | None = None
    parent_task_id: str | None = None
    parent_session_id: str | None = None
    background_task_id: str | None = None


@dataclass
class EnsureSession:
    runtime_source: str
    runtime_session_id: str
    title: str
    task_id: str | None = None
    workspace_path: str | None = None
    parent_task_id: str | None = None
    parent_session_id: str | None = None
    origin: str | None = None
    resume: bool | None = None


@dataclass
class EndSession:
    runtime_source: str
    runtime_session_id: str
    summary: str | None = None
    complete_task: bool = False
    completion_reason: str | None = None
    background_completions: list[str] = dataclasses.field(default_factory=list)


@dataclass
class Started:
    task: dict[str, Any]
    session_id: str
    events: list[dict[str, str]]


@dataclass
class Finalized:
    task: dict[str, Any]
    session_id: str | None
    events: list[dict[str, str]]


@dataclass
class Ensured:
    task_id: str
    session_id: str
    task_created: bool
    session_created: bool


class Lifecycle:
    """Task and session changes inside one write operation, each with the
    log entries that announce it. Call `done` at the end of the operation."""

    def __init__(self, tx: Tx, workspace: str) -> None:
        self.tx = tx
        self.conn = tx.conn
        self.workspace = workspace
        self.now = now_iso()
        self.events = EventWriter(tx, workspace)

    def done(self) -> None:
        self.events.flush()

    # -------------------------------------------------------- announcements

    def announce(self, entry_type: str, task: TaskRecord) -> int:
        # As the reads show it (displayTitle too), so a live client's copy stays whole.
        return self.tx.append(
            entry_type, self.workspace, {"task": task_views(self.conn, self.workspace, [task])[0]}
        )

    def _announce_session(self, entry_type: str, session: SessionRecord) -> int:
        data = {"session": session_view(session)}
        return self.tx.append(entry_type, self.workspace, data, session_id=session.id)

    # ---------------------------------------------------------------- tasks

    def task(self, task_id: str) -> TaskRecord:
        found = q.get_task(self.conn, self.workspace, task_id)
        if found is None:
            raise task_not_found(task_id)
        return found

    def update(self, task: TaskRecord, **changes: Any) -> TaskRecord:
        changes.setdefault("updated_at", self.now)
        q.update_task(self.conn, self.workspace, task.id, **changes, last_activity_at=self.now)
        return dataclasses.replace(task, **changes)

    def set_status(self, task: TaskRecord, status: str) -> TaskRecord:
        task = self.update(task, status=status)
        self.announce(TASK_COMPLETED if status == COMPLETED else TASK_UPDATED, task)
        return task

    def start(self, req: StartTask) -> Started:
        """Upsert the task as running and open a new session (reference §6.1)."""
        existing = q.get_task(self.conn, self.workspace, req.task_id) if req.task_id else None
        relations = {
            name: (None if given == "" else given)
            if (given := getattr(req, name)) is not None
            else (getattr(existing, name) if existing else None)
            for name in RELATION_FIELDS
        }
        source = (
            req.runtime_source if req.runtime_source is not None else (existing and existing.runtime_source)
        )
        if existing is None:
            origin = req.origin or "user"
        else:
            origin = SERVER_SDK if SERVER_SDK in (req.origin, existing.origin) else existing.origin
        task = TaskRecord(
            id=existing.id if existing else (req.task_id or uuid7()),
            title=req.title,
            slug=slugify(req.title),
            status=RUNNING,
            task_kind=req.task_kind or (existing.task_kind if existing else PRIMARY),
            origin=origin,
            workspace_path=(
                normalize_workspace_path(req.workspace_path)
                if req.workspace_path is not None
                else (existing.workspace_path if existing else None)
            ),
            runtime_source=source or None,
            created_at=existing.created_at if existing else self.now,
            updated_at=self.now,
            last_session_started_at=self.now,
            seq=existing.seq if existing else 0,
            **relations,
        )
        if existing is None:
            task.seq = self.announce(TASK_STARTED, task)
            q.insert_task(self.conn, self.workspace, task)
        else:
            changes = {f.name: getattr(task, f.name) for f in dataclasses.fields(task)}
            del changes["id"], changes["created_at"], changes["seq"]
            self.update(existing, **changes)
            if existing.status != RUNNING or existing.runtime_source != task.runtime_source:
                self.announce(TASK_UPDATED, task)
            self.announce(TASK_STARTED, task)
        session = self.open_session(task, req.summary)
        events: list[dict[str, str]] = []
        if existing is None:
            metadata = {
                **(req.metadata or {}),
                "taskKind": task.task_kind,
                **{
                    key: value
                    for key, value in (
                        ("parentTaskId", task.parent_task_id),
                        ("parentSessionId", task.parent_session_id),
                        ("backgroundTaskId", task.background_task_id),
                        ("workspacePath", task.workspace_path),
                        ("runtimeSource", task.runtime_source),
                    )
                    if value is not None
                },
            }
            events = self._timeline_event(task, "task.start", task.title, req.summary, metadata, session.id)
        return Started(task_view(task), session.id, events)

    def finalize(
        self,
        task: TaskRecord,
        outcome: str,
        *,
        session_id: str | None = None,
        summary: str | None = None,
        metadata: dict[str, Any] | None = None,
        error_message: str | None = None,
    ) -> Finalized:
        """End the task's session (the given one, else its running one) and
        move the task to `outcome`, logging `task.complete` or `task.error`
        (reference §6.3). A session of another task is left alone."""
        if session_id:
            session = q.get_session(self.conn, self.workspace, session_id)
        else:
            session = q.latest_session(self.conn, self.workspace, task.id, running=True)
        resolved = session.id if session is not None and session.task_id == task.id else None
        if session is not None and resolved and session.status == RUNNING:
            self.end_session(session, outcome, summary)
        if task.status == outcome:
            return Finalized(task_view(task), resolved, [])
        task = self.set_status(task, outcome)
        if outcome == COMPLETED:
            events = self._timeline_event(
                task, "task.complete", "Task completed", summary, metadata, resolved
            )
        else:
            events = self._timeline_event(
                task, "task.error", "Task errored", error_message, metadata, resolved
            )
        return Finalized(task_view(task), resolved, events)

    def _timeline_event(
        self,
        task: TaskRecord,
        kind: str,
        title: str,
        body: str | None,
        metadata: dict[str, Any] | None,
        session_id: str | None,
    ) -> list[dict[str, str]]:
        written = self.events.write(
            NewEvent(
                task_id=task.id,
                kind=kind,
                lane="user",
                title=title,
                created_at=self.now,
                metadata=metadata or {},
                session_id=session_id,
                body=body,
            )
        )
        self.events.flush()  # the announcements that follow append directly
        return [{"id": event_id, "kind": k} for event_id, k in written]

    def descendants(self, task_id: str) -> Iterator[TaskRecord]:
        """Children through `parent_task_id`, depth first, each once."""
        seen = {task_id}
        stack = [(task_id, 0)]
        while stack:
            current, depth = stack.pop()
            if depth >= MAX_LINEAGE_DEPTH:
                continue
            for child in reversed(q.children(self.conn, self.workspace, current)):
                if child.id not in seen:
                    seen.add(child.id)
                    yield child
                    stack.append((child.id, depth + 1))

    def background_running(self, task: TaskRecord) -> bool:
        """Whether a primary task has a running background descendant."""
        return task.task_kind == PRIMARY and any(
            d.task_kind == BACKGROUND and d.status == RUNNING for d in self.descendants(task.id)
        )

    def cascade(self, task: TaskRecord) -> None:
        """Complete every running background descendant of a completed primary task."""
        for d in list(self.descendants(task.id)):
            if d.task_kind == BACKGROUND and d.status == RUNNING:
                self.finalize(d, COMPLETED, summary=CASCADE_COMPLETED)

    # ------------------------------------------------------------- sessions

    def open_session(self, task: TaskRecord, summary: str | None) -> SessionRecord:
        session = SessionRecord(uuid7(), task.id, RUNNING, self.now, summary=summary)
        session.seq = self._announce_session(SESSION_STARTED, session)
        q.insert_session(self.conn, self.workspace, session)
        shared_sessions.insert_one(
            self.conn,
            self.workspace,
            SharedSession(session.id, task.title, SHARED_RUNNING, self.now, project_dir=task.workspace_path),
        )
        return session

    def end_session(self, session: SessionRecord, status: str, summary: str | None) -> None:
        session = dataclasses.replace(
            session,
            status=status,
            ended_at=self.now,
            summary=summary if summary is not None else session.summary,
        )
        q.update_session(
            self.conn, self.workspace, session.id, status=status, ended_at=self.now, summary=session.summary
        )
        shared_sessions.update_fields(self.conn, self.workspace, session.id, status=SHARED_FINISHED)
        self._announce_session(SESSION_ENDED_ENTRY, session)

    # ------------------------------------------------------------- bindings

    def bind(self, source: str, runtime_session_id: str, task_id: str, session_id: str | None) -> None:
        """Point the binding at a monitor session (None: make it historical)."""
        q.put_binding(
            self.conn,
            self.workspace,
            source,
            runtime_session_id,
            BindingRecord(task_id, session_id),
            self.now,
        )
        data = {
            "runtimeSource": source,
            "runtimeSessionId": runtime_session_id,
            "taskId": task_id,
            "monitorSessionId": session_id,
        }
        self.tx.append(BINDING_UPDATED, self.workspace, data)

    def unbind(self, source: str, runtime_session_id: str) -> None:
        q.delete_binding(self.conn, self.workspace, source, runtime_session_id)
        data = {"runtimeSource": source, "runtimeSessionId": runtime_session_id}
        self.tx.append(BINDING_DELETED, self.workspace, data)


# ------------------------------------------------------------ validation


def _check_start(req: StartTask) -> None:
    v = Violations()
    v.optional_enum("taskKind", req.task_kind, TASK_KINDS)
    v.not_empty("runtimeSource", req.runtime_source)
    _reject_nul_fields(v, req)
    v.check()


def _reject_nul_fields(v: Violations, req: Any) -> None:
    for f in dataclasses.fields(req):
        value = getattr(req, f.name)
        if value is not None:
            head, *rest = f.name.split("_")
            reject_nul(v, head + "".join(p.title() for p in rest), value)


# ------------------------------------------------------------ operations


async def _write(store: Store, workspace: str, change: Callable[[Lifecycle], T]) -> T:
    """Run `change` as one write operation (one transaction)."""

    def op(tx: Tx) -> T:
        lc = Lifecycle(tx, workspace)
        result = change(lc)
        lc.done()
        return result

    return await store.write(op)


async def start_task(store: Store, workspace: str, req: StartTask) -> Started:
    _check_start(req)
    return await _write(store, workspace, lambda lc: lc.start(req))


async def link_task(store: Store, workspace: str, req: LinkTask) -> dict[str, Any]:
    v = Violations()
    if req.title is not None and not req.title.strip():
        v.add("title", MIN_ONE_CHAR)
    v.optional_enum("taskKind", req.task_kind, TASK_KINDS)
    _reject_nul_fields(v, req)
    v.check()

    def change(lc: Lifecycle) -> dict[str, Any]:
        task = lc.task(req.task_id)
        changes: dict[str, Any] = {}
        if req.title is not None:
            changes["title"] = req.title.strip()
            changes["slug"] = slugify(changes["title"])
        if req.task_kind is not None:
            changes["task_kind"] = req.task_kind
        for name in RELATION_FIELDS:
            given = getattr(req, name)
            if given is not None:
                changes[name] = given or None
        task = lc.update(task, **changes)
        lc.announce(TASK_UPDATED, task)
        return task_view(task)

    return await _write(store, workspace, change)


async def finalize_task(
    store: Store,
    workspace: str,
    task_id: str,
    outcome: str,
    *,
    session_id: str | None = None,
    summary: str | None = None,
    metadata: dict[str, Any] | None = None,
    error_message: str | None = None,
) -> Finalized:
    """tasks/complete (`outcome` completed) and tasks/error (errored)."""
    v = Violations()
    for name, value in (
        ("taskId", task_id),
        ("sessionId", session_id),
        ("summary", summary),
        ("metadata", metadata),
        ("errorMessage", error_message),
    ):
        reject_nul(v, name, value)
    v.check()

    return await _write(
        store,
        workspace,
        lambda lc: lc.finalize(
            lc.task(task_id),
            outcome,
            session_id=session_id,
            summary=summary,
            metadata=metadata,
            error_message=error_message,
        ),
    )


async def ensure_session(store: Store, workspace: str, req: EnsureSession) -> Ensured:
    """The decision table of reference §5.1, in one transaction."""
    v = Violations()
    v.optional_enum("origin", req.origin, ORIGINS)
    _reject_nul_fields(v, req)
    v.check()
    source, runtime_id = req.runtime_source, req.runtime_session_id

    def change(lc: Lifecycle) -> Ensured:
        conn = lc.conn
        binding = q.get_binding(conn, workspace, source, runtime_id)
        if binding is not None and binding.monitor_session_id is not None:
            session = q.get_session(conn, workspace, binding.monitor_session_id)
            if session is not None and session.status == RUNNING:  # 1: active
                return Ensured(binding.task_id, session.id, False, False)
            lc.bind(source, runtime_id, binding.task_id, None)  # 1b: now historical
        task = q.get_task(conn, workspace, binding.task_id) if binding is not None else None
        if task is not None:
            if req.resume is False:  # 2: no resume, the latest session as it is
                latest = q.latest_session(conn, workspace, task.id, running=False)
                if latest is not None:
                    return Ensured(task.id, latest.id, False, False)
            if task.status != RUNNING or task.runtime_source != source:  # 3: resume
                task = lc.update(task, status=RUNNING, runtime_source=source, last_session_started_at=lc.now)
                lc.announce(TASK_UPDATED, task)
            session = lc.open_session(task, None)
            lc.bind(source, runtime_id, task.id, session.id)
            return Ensured(task.id, session.id, False, True)
        started = lc.start(  # 4: first sight
            StartTask(
                title=req.title,
                task_id=req.task_id,
                workspace_path=req.workspace_path,
                runtime_source=source,
                task_kind=BACKGROUND if req.parent_task_id else None,
                parent_task_id=req.parent_task_id or None,
                parent_session_id=req.parent_session_id or None,
                origin=req.origin,
            )
        )
        lc.bind(source, runtime_id, started.task["id"], started.session_id)
        return Ensured(started.task["id"], started.session_id, True, True)

    return await _write(store, workspace, change)


async def end_session(store: Store, workspace: str, req: EndSession) -> None:
    """The algorithm and decision table of reference §5.2, in one transaction."""
    v = Violations()
    source = req.runtime_source.strip()
    if not source:
        v.add("runtimeSource", MIN_ONE_CHAR)
    v.optional_enum("completionReason", req.completion_reason, COMPLETION_REASONS)
    _reject_nul_fields(v, req)
    v.check()

    await _write(store, workspace, lambda lc: _end(lc, source, req))


def _end(lc: Lifecycle, source: str, req: EndSession) -> None:
    conn, workspace = lc.conn, lc.workspace
    binding = q.get_binding(conn, workspace, source, req.runtime_session_id)
    summary = req.summary if req.summary is not None else RUNTIME_SESSION_ENDED
    if binding is None or binding.monitor_session_id is None:  # 1: no active binding
        if req.complete_task and binding is not None:
            _complete_unless_terminal(lc, binding.task_id, summary)
            lc.unbind(source, req.runtime_session_id)
        return
    session = q.get_session(conn, workspace, binding.monitor_session_id)
    lc.bind(source, req.runtime_session_id, binding.task_id, None)
    if session is None or session.status != RUNNING:  # 2: its session is gone
        if req.complete_task:
            _complete_unless_terminal(lc, binding.task_id, summary)
        return
    lc.end_session(session, COMPLETED, req.summary)  # 3
    for background_id in req.background_completions:
        background = q.get_task(conn, workspace, background_id)
        if background is not None and background.status == RUNNING:
            lc.finalize(background, COMPLETED, summary=BACKGROUND_COMPLETED)
    task = q.get_task(conn, workspace, binding.task_id)
    if task is None:
        return
    background_running = lc.background_running(task)
    action, _ = decide_end(
        task_status=task.status,
        running_sessions=q.running_session_count(conn, workspace, task.id),
        task_kind=task.task_kind,
        reason=req.completion_reason,
        complete_task=req.complete_task,
        background_running=background_running,
    )
    if action is EndAction.COMPLETE:
        default = BACKGROUND_COMPLETED if task.task_kind == BACKGROUND else RUNTIME_SESSION_ENDED
        lc.finalize(task, COMPLETED, summary=req.summary if req.summary is not None else default)
        if background_running:
            lc.cascade(task)
    elif action is EndAction.WAIT:
        lc.set_status(task, WAITING)


def _complete_unless_terminal(lc: Lifecycle, task_id: str, summary: str) -> None:
    task = q.get_task(lc.conn, lc.workspace, task_id)
    if task is not None and task.status not in TERMINAL_STATUSES:
        lc.finalize(task, COMPLETED, summary=summary)


async def reap_stale_tasks(
    store: Store, *, idle: timedelta, now: datetime | None = None, limit: int = 32
) -> list[tuple[str, str]]:
    """Complete running tasks that have no running session and no activity
    for `idle` (reference §6.4); returns their (workspace, task id)."""
    cutoff = iso((now or datetime.now(UTC)) - idle)

    def op(tx: Tx) -> list[tuple[str, str]]:
        reaped = []
        for workspace, task in q.stale_tasks(tx.conn, cutoff, limit):
            lc = Lifecycle(tx, workspace)
            lc.finalize(task, COMPLETED, summary=REAPED)
            lc.done()
            reaped.append((workspace, task.id))
        return reaped

    return await store.write(op)
