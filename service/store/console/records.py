"""What the console's reads return: one shape per view, whatever family the
rows come from (the proto messages of console.proto, in Python)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# The item kinds (ConsoleSession.kind).
RUNTIME_SESSION = "runtime_session"
TRACER_TASK = "tracer_task"
TRACER_SESSION = "tracer_session"
EXECUTION = "execution"
AGH_TASK = "agh_task"
KINDS = (RUNTIME_SESSION, TRACER_TASK, TRACER_SESSION, EXECUTION, AGH_TASK)
# A tree node that is not an item of its own: an execution's agent.
AGENT = "agent"


@dataclass
class Item:
    kind: str
    id: str
    title: str
    status: str
    runtime: str
    workspace: str
    created_at: datetime | None
    updated_at: datetime | None = None
    parent_kind: str = ""
    parent_id: str = ""
    event_count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    total_tokens: int = 0


@dataclass
class TimelineEvent:
    seq: int
    id: str
    kind: str
    lane: str
    title: str = ""
    body: str = ""
    session_id: str = ""
    turn_id: str = ""
    occurred_at: datetime | None = None
    tool_name: str = ""
    duration_ms: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    status: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Verdict:
    rule_id: str
    rule_name: str
    severity: str
    status: str
    why: dict[str, Any]
    evaluated_at: datetime | None
    turn_id: str
    task_id: str
    session_id: str


@dataclass
class Turn:
    id: str
    index: int
    session_id: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    asked_text: str
    assistant_text: str
    verdict: str
    verdicts: list[Verdict] = field(default_factory=list)


@dataclass
class TreeNode:
    kind: str
    id: str
    title: str
    status: str
    parent_kind: str
    parent_id: str
    relation: str


@dataclass
class Timeline:
    item: Item
    events: list[TimelineEvent]
    turns: list[Turn]
    tree: list[TreeNode]
    next_page_token: str
    follow_token: str
    head_seq: int


@dataclass
class Count:
    name: str
    count: int


@dataclass
class Activity:
    seq: int
    type: str
    kind: str
    id: str
    name: str
    session_id: str
    time: datetime | None


@dataclass
class Running:
    runtime_sessions: int = 0
    tracer_tasks: int = 0
    executions: int = 0
    leased_runs: int = 0
    queued_runs: int = 0


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    cost_usd: float = 0.0
    source: str = ""


@dataclass
class Today:
    since: datetime
    errors_by_kind: list[Count]
    verdicts: dict[str, int]
    usage: Usage


@dataclass
class Overview:
    server_time: datetime
    head_seq: int
    running: Running
    per_minute: list[tuple[datetime, int]]
    today: Today
    recent: list[Activity]


@dataclass
class Run:
    id: str
    task_id: str
    attempt: int
    status: str
    session_id: str
    holder_kind: str
    holder_ref: str
    queued_at: datetime | None
    claimed_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    heartbeat_at: datetime | None
    lease_until: datetime | None
    lease_ms_left: int
    failure_kind: str
    error: str


@dataclass
class QueueTask:
    id: str
    identifier: str
    title: str
    priority: str
    status: str
    paused: bool
    attempts: int
    max_attempts: int
    created_at: datetime | None
    updated_at: datetime | None
    latest_run: Run | None


@dataclass
class Queue:
    server_time: datetime
    by_state: list[Count]
    by_priority: list[Count]
    tasks: list[QueueTask]
    next_page_token: str
    leases: list[Run]


@dataclass
class Channel:
    id: str
    display_name: str
    purpose: str
    task_id: str
    run_id: str
    created_at: datetime | None
    last_activity_at: datetime | None
    member_count: int
    message_count: int
    last_message_seq: int


@dataclass
class Member:
    session_id: str
    agent_name: str
    read_seq: int
    unread: int
    joined_at: datetime | None
    last_seen_at: datetime | None


@dataclass
class Message:
    seq: int
    id: str
    from_session_id: str
    to_session_id: str
    reply_to: str
    body: Any
    metadata: Any
    sent_at: datetime | None


@dataclass
class Rule:
    id: str
    name: str
    scope: str
    task_id: str
    source: str
    severity: str
    rationale: str
    trigger_phrases: list[str]
    trigger_on: str
    expected_action: str
    expected_pattern: str
    created_at: datetime | None
    deleted_at: datetime | None
    verified: int = 0
    contradicted: int = 0
    unverifiable: int = 0


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_page_token: str
