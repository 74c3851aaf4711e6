"""The title a task list shows (`displayTitle`).

The runtimes name a task before its first prompt arrives (upstream's
Claude Code plugin: `Claude Code — <project>`); such a placeholder says
nothing about the work, so the task's first prompt stands in for it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from service.domain.tracer.model import task_view
from service.store.tracer import queries as q
from service.store.tracer.queries import TaskRecord

DISPLAY_TITLE_CHARS = 80
_SPACE = re.compile(r"\s+")


def is_placeholder(task: TaskRecord) -> bool:
    """A blank title, the project's name, or `<runtime> — <project>`."""
    title = task.title.strip()
    project = posixpath.basename(task.workspace_path or "")
    return not title or (bool(project) and (title == project or title.endswith(f" — {project}")))


def display_title(task: TaskRecord, first_prompt: str | None) -> str:
    """The title, or for a placeholder the first prompt's first line, cut to 80 characters."""
    line = next((ln for ln in (first_prompt or "").splitlines() if ln.strip()), "")
    line = _SPACE.sub(" ", line).strip()
    if not is_placeholder(task) or not line:
        return task.title
    if len(line) > DISPLAY_TITLE_CHARS:
        line = line[: DISPLAY_TITLE_CHARS - 1].rstrip() + "…"
    return line


def task_views(conn: Connection, workspace: str, tasks: Sequence[TaskRecord]) -> list[dict[str, Any]]:
    """The tasks' views with `displayTitle` (one query for the placeholders' first prompts)."""
    prompts = q.first_prompts(conn, workspace, [t.id for t in tasks if is_placeholder(t)])
    return [{**task_view(t), "displayTitle": display_title(t, prompts.get(t.id))} for t in tasks]
