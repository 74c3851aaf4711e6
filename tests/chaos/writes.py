"""The writes the chaos checks send, one per family, each carrying a unique
marker (`ck` and 8 digits) that the database is searched for afterwards.

A family knows its route, the log entry type its writes leave, and how many
entries one write leaves (a batch's events each carry the marker)."""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.chaos.db import Reader

MARKER = r"ck\d{8}"
AGENT_HEADERS = {"X-AGH-Session-ID": "chaos-agent", "X-AGH-Agent": "chaos"}
BATCH = 5  # events per Trenchcoat or tracer write


@dataclass
class Write:
    family: str
    marker: str
    path: str
    body: dict[str, Any]
    key: str = field(default_factory=lambda: str(uuid.uuid4()))  # the Idempotency-Key


@dataclass(frozen=True)
class Family:
    name: str
    entry_type: str
    entries: int  # log entries one write leaves


FAMILIES = {
    f.name: f
    for f in [
        Family("runtime", "runtime.event", 1),
        Family("trenchcoat", "trenchcoat.event", BATCH),
        Family("tracer", "tracer.event.logged", BATCH),
        Family("tasks", "task.created", 1),
    ]
}


class Writes:
    """Makes each family's writes; setup() creates what they refer to."""

    def __init__(self, lanes: int = 1) -> None:
        self.lanes = lanes
        self.numbers = itertools.count(1)
        self.seqs: Counter[int] = Counter()  # next Trenchcoat seq per lane
        self.tracer: list[tuple[str, str]] = []

    async def setup(self, client: httpx.AsyncClient) -> None:
        for lane in range(self.lanes):
            body = {"session_id": f"chaos-rt-{lane}", "session_name": "chaos"}
            (await client.post("/sessions", json=body)).raise_for_status()
            ensure = {"runtimeSource": "chaos", "runtimeSessionId": f"chaos-{lane}", "title": "chaos"}
            answer = await client.post("/ingest/v1/sessions/ensure", json=ensure)
            answer.raise_for_status()
            data = answer.json()["data"]
            self.tracer.append((data["taskId"], data["sessionId"]))
        agent = {"session_id": "chaos-agent", "session_name": "chaos", "agent_name": "chaos"}
        (await client.post("/sessions", json=agent)).raise_for_status()

    def make(self, family: str, lane: int = 0) -> Write:
        marker = f"ck{next(self.numbers):08d}"
        ts = "2026-01-01T00:00:00Z"
        if family == "runtime":
            sid = f"chaos-rt-{lane}"
            event = {
                "event_type": "post_tool",
                "session_id": sid,
                "session_name": "chaos",
                "timestamp": ts,
                "tool_name": "Read",
                "tool_input": {"file_path": "/src/app.py"},
                "tool_output": marker,
            }
            return Write(family, marker, f"/sessions/{sid}/events", event)
        if family == "trenchcoat":
            session = str(uuid.uuid5(uuid.NAMESPACE_URL, f"chaos-{lane}"))
            first, self.seqs[lane] = self.seqs[lane], self.seqs[lane] + BATCH
            events = [
                {
                    "event_type": "tool_use",
                    "session_id": session,
                    "timestamp": ts,
                    "seq": first + i,
                    "data": {"tool_name": "Read", "tool_input_preview": marker},
                }
                for i in range(BATCH)
            ]
            return Write(family, marker, "/api/v1/events", {"events": events})
        if family == "tracer":
            task_id, session_id = self.tracer[lane]
            events = [
                {
                    "taskId": task_id,
                    "sessionId": session_id,
                    "eventId": f"{marker}-{i}",
                    "kind": "tool.used",
                    "lane": "exploration",
                    "title": f"Read {marker}",
                    "createdAt": ts,
                }
                for i in range(BATCH)
            ]
            return Write(family, marker, "/ingest/v1/events", {"events": events})
        return Write(family, marker, "/api/tasks", {"title": f"chaos {marker}"})


def stored_copies(db: Reader, family: str) -> dict[str, float]:
    """Copies of each marker of the family in the log (a fraction for a
    batch stored in part, which all-or-nothing batches must never show)."""
    fam = FAMILIES[family]
    return {m: n / fam.entries for m, n in db.marker_rows(fam.entry_type, MARKER).items()}
