"""The title a task list shows (`displayTitle`), derived as upstream Agent
Tracer's `TaskDisplayTitle` does (packages/server, work/task/domain at
cefcee2e): the task's own title unless it is a runtime's generic
`<runtime> — <slug or workspace name>`; else the first user prompt, the
task.start summary, or the first non-lifecycle event (skipping "… session
started" boilerplate); else the title without a " (session…)" suffix.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection

from service.domain.tracer.model import task_view
from service.store.tracer import queries as q
from service.store.tracer.queries import TaskRecord

MAX_TITLE_CHARS = 120
GENERIC_PREFIXES = frozenset(
    {
        "agent",
        "ai cli",
        "aider",
        "claude",
        "claude code",
        "codex",
        "codex app server",
        "codex app-server",
        "codex cli",
    }
)
LIFECYCLE_KINDS = ("task.start", "task.complete", "task.error")
_SPACE = re.compile(r"\s+")
_PREFIX_SPLIT = re.compile(r"\s+[\u2014\u2013-]\s+")  # em dash, en dash, hyphen
_SESSION_SUFFIX = re.compile(r"\s+\((?:ses_[^)]+|session[^)]*|sess[^)]*)\)\s*$", re.IGNORECASE)
_RUNTIME = r"(?:claude code|claude|codex app-server|codex app server|codex cli|codex|agent|ai cli)"
_BOILERPLATE = re.compile(rf"^{_RUNTIME} session started\b|^{_RUNTIME} - ")


def _sentence(value: Any) -> str | None:
    """Whitespace collapsed, cut to 120 characters with "..."; None if blank."""
    if not isinstance(value, str):
        return None
    text = _SPACE.sub(" ", value).strip()
    if not text:
        return None
    return text[: MAX_TITLE_CHARS - 3] + "..." if len(text) > MAX_TITLE_CHARS else text


def _token(value: str) -> str:
    return _SPACE.sub(" ", value.strip().lower())


def _strip_session_suffix(value: str) -> str:
    return _SESSION_SUFFIX.sub("", value).strip()


def is_generic(task: TaskRecord) -> bool:
    """`<runtime> — <slug or workspace name>`: says nothing about the work."""
    title = _sentence(task.title)
    if title is None:
        return True
    segments = _PREFIX_SPLIT.split(title)
    if len(segments) != 2 or not all(segments) or _token(segments[0]) not in GENERIC_PREFIXES:
        return False
    suffix = _token(_strip_session_suffix(segments[1]))
    workspace = posixpath.basename((task.workspace_path or "").rstrip("/"))
    return suffix == _token(task.slug) or (bool(workspace) and suffix == _token(workspace))


def _inferred(value: Any) -> str | None:
    text = _sentence(value)
    return None if text is None or _BOILERPLATE.match(_token(text)) else text


def _candidates(events: Iterable[dict[str, Any]]) -> list[Any]:
    """[first user prompt, task.start summary, first non-lifecycle event's body
    and title], reading events only as far as needed."""
    user_goal = start = meaningful = None
    for e in events:
        kind = e.get("kind")
        if user_goal is None and e.get("lane") == "user" and kind not in LIFECYCLE_KINDS and e.get("body"):
            user_goal = e
        if start is None and kind == "task.start" and e.get("body"):
            start = e
        if meaningful is None and kind not in LIFECYCLE_KINDS:
            meaningful = e
        if user_goal and start and meaningful:
            break
    return [
        (user_goal or {}).get("body"),
        (start or {}).get("body"),
        *((meaningful or {}).get(k) for k in ("body", "title")),
    ]


def display_title(task: TaskRecord, events: Iterable[dict[str, Any]]) -> str | None:
    """The display title; `events` (the task's timeline views in order, read
    lazily) is read only for a generic title."""
    if not is_generic(task):
        return _sentence(task.title)
    for candidate in _candidates(events):
        if (title := _inferred(candidate)) is not None:
            return title
    fallback = _sentence(task.title)
    return _strip_session_suffix(fallback) if fallback else None


def task_views(conn: Connection, workspace: str, tasks: Sequence[TaskRecord]) -> list[dict[str, Any]]:
    """The tasks' views with `displayTitle` (absent, as upstream's, when nothing yields one)."""
    views = []
    for task in tasks:
        title = display_title(task, q.timeline_views(conn, workspace, task.id))
        views.append({**task_view(task), **({"displayTitle": title} if title is not None else {})})
    return views
