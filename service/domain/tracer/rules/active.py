"""The active rules of a task, as every stored batch of turn events and
every turn close needs them: kept in process memory per database and
workspace, and reloaded when the workspace's rules version (the log
position of its latest rule change, one indexed lookup) has moved. So a
task with no rules costs that one lookup, and a task with rules does not
decode and prepare them again for every batch.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from service.domain.tracer.rules.evaluator import Enforcer
from service.store.tracer import rules as q
from service.store.tracer.rules import RuleRecord

# Past this many tasks a workspace's entries are dropped and rebuilt as needed.
MAX_TASKS = 4096


@dataclass(frozen=True)
class ActiveRules:
    # Global rules and the task's own, oldest first.
    rules: list[RuleRecord]
    enforcer: Enforcer


# engine -> workspace -> (rules version, task id -> its active rules). Keyed
# by engine so that two stores of one process never share entries.
_cache: weakref.WeakKeyDictionary[Engine, dict[str, tuple[int, dict[str, ActiveRules]]]] = (
    weakref.WeakKeyDictionary()
)


def active_rules(conn: Connection, workspace: str, task_id: str) -> ActiveRules:
    """The rules that apply to the task's turns, as of `conn`'s transaction."""
    version = q.rules_version(conn, workspace)
    workspaces = _cache.setdefault(conn.engine, {})
    cached = workspaces.get(workspace)
    if cached is None or cached[0] != version:
        cached = workspaces[workspace] = (version, {})
    by_task = cached[1]
    found = by_task.get(task_id)
    if found is None:
        if len(by_task) >= MAX_TASKS:
            by_task.clear()
        rules = q.active_rules(conn, workspace, task_id) if version else []
        found = by_task[task_id] = ActiveRules(rules, Enforcer(rules))
    return found
