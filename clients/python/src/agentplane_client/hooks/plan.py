"""What one hook sends, as data: a plan of agent-tracer calls.

A hook cannot know its task and monitor session ids before the server
answers `sessions/ensure`, and the server may be down; so a hook's calls are
recorded as steps that name the runtime sessions they need, and the ids are
filled in when the plan is delivered (now, or later from the spool). Every
event gets its id and timestamp when the plan is made: a plan delivered
twice records each event once (the server ignores a known `eventId`).

    {"id", "at", "runtime", "hook",
     "steps": [{"op": "ensure", "as": "main", "body": {...}},
               {"op": "ensure", "as": "sub", "parent": "main", "body": {...}},
               {"op": "events", "route": "tool-activity", "session": "sub",
                "events": [...], "refs": {"childTaskId": "sub.taskId"}},
               {"op": "stop-check", "session": "main"},
               {"op": "end", "body": {...}}],
     "bound": {"main": {"taskId", "sessionId"}}}

`bound` holds what an earlier, partial delivery learnt, so that the rest of
the plan does not ensure a session twice. Each step that writes carries its
own idempotency `key`, made with the plan and spooled with it, so a step
delivered again after a lost answer writes nothing the second time.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # (typing itself costs a hook ~4 ms to import)
if TYPE_CHECKING:
    from typing import Any

    Plan = dict[str, Any]
    Step = dict[str, Any]


MAIN = "main"


def new_id() -> str:
    """A random (version 4) UUID; the uuid module is slow to import."""
    b = bytearray(os.urandom(16))
    b[6] = b[6] & 0x0F | 0x40
    b[8] = b[8] & 0x3F | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def iso_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


class PlanBuilder:
    """Builds one hook's plan (redacted as a whole when it is done: see
    mapping.plan_for)."""

    def __init__(self, runtime: str, hook: str, runtime_source: str) -> None:
        self.runtime_source = runtime_source
        self.at = iso_now()
        self.plan: Plan = {"id": new_id(), "at": self.at, "runtime": runtime, "hook": hook}
        self.steps: list[Step] = []
        self.plan["steps"] = self.steps

    def ensure(
        self, runtime_session_id: str, title: str, name: str = MAIN, parent: str | None = None, **fields: Any
    ) -> None:
        if any(s["op"] == "ensure" and s["as"] == name for s in self.steps):
            return  # a hook ensures each of its sessions once
        body = {
            "runtimeSource": self.runtime_source,
            "runtimeSessionId": runtime_session_id,
            "title": title,
            **{k: v for k, v in fields.items() if v is not None},
        }
        step: Step = {"op": "ensure", "as": name, "body": body, "key": new_id()}
        if parent is not None:
            step["parent"] = parent
        self.steps.append(step)

    def event(
        self,
        route: str,
        kind: str,
        lane: str,
        title: str,
        body: str | None = None,
        metadata: dict[str, Any] | None = None,
        file_paths: list[str] | None = None,
        session: str = MAIN,
        refs: dict[str, str] | None = None,
        event_id: str | None = None,
    ) -> None:
        """Add an event; consecutive events to one route and session share a request."""
        item: dict[str, Any] = {
            "eventId": event_id or new_id(),
            "kind": kind,
            "lane": lane,
            "title": title or kind,
            "createdAt": self.at,
            "metadata": metadata or {},
        }
        if body:
            item["body"] = body
        if file_paths:
            item["filePaths"] = file_paths
        last = self.steps[-1] if self.steps else None
        if (
            last is not None
            and last["op"] == "events"
            and last["route"] == route
            and last["session"] == session
            and not refs
            and not last.get("refs")
        ):
            last["events"].append(item)
            return
        step: Step = {"op": "events", "route": route, "session": session, "events": [item], "key": new_id()}
        if refs:
            step["refs"] = refs
        self.steps.append(step)

    def end(self, runtime_session_id: str, **fields: Any) -> None:
        body = {"runtimeSource": self.runtime_source, "runtimeSessionId": runtime_session_id}
        body.update({k: v for k, v in fields.items() if v is not None})
        self.steps.append({"op": "end", "body": body, "key": new_id()})

    def stop_check(self, runtime_session_id: str, session: str = MAIN) -> None:
        self.steps.append(
            {
                "op": "stop-check",
                "session": session,
                "runtimeSource": self.runtime_source,
                "runtimeSessionId": runtime_session_id,
            }
        )
