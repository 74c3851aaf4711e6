"""`client.events`: agentplane.v1.EventService, sync and async.

An event is a `runtime_pb2.Event` or a dict with the seed's snake_case keys
(`event_type`, `session_id`, `session_name`, `timestamp`, `tool_name`,
`tool_input`, `tool_output`, `error`, `exit_code`, `reason`, `role`,
`content`). Like the HTTP gateway, unknown keys are ignored and None means
unset.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from agentplane.v1 import runtime_pb2 as pb
from google.protobuf import json_format

from agentplane_client._calls import AsyncCalls, SyncCalls

if TYPE_CHECKING:
    from agentplane.v1.runtime_pb2_grpc import EventServiceAsyncStub, EventServiceStub

EventLike: TypeAlias = pb.Event | Mapping[str, Any]
"""What `events.add` and `events.record` accept."""


def to_event(event: EventLike, session_id: str = "") -> pb.Event:
    """The event as a message (a copy); `session_id` fills an empty `session_id`.

    Raises ValueError if a dict does not fit the Event message (for example
    `tool_input` that is not a dict).
    """
    msg = pb.Event()
    if isinstance(event, pb.Event):
        msg.CopyFrom(event)
    else:
        try:
            json_format.ParseDict(dict(event), msg, ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            raise ValueError(f"not a valid event: {exc}") from exc
    if session_id and not msg.session_id:
        msg.session_id = session_id
    return msg


def _add_request(session_id: str, event: EventLike) -> pb.AddSessionEventRequest:
    return pb.AddSessionEventRequest(session_id=session_id, event=to_event(event, session_id))


class Events:
    """Events of agent sessions (`client.events`)."""

    def __init__(self, stub: EventServiceStub, calls: SyncCalls) -> None:
        self._stub = stub
        self._calls = calls

    def add(self, session_id: str, event: EventLike) -> None:
        """Add an event to an existing session; a `session_stop` event finishes it.

        The event's `session_id` defaults to `session_id` and must equal it.
        Raises NotFoundError for an unknown session, InvalidArgumentError for a
        missing required field (`event_type`, `session_name`, `timestamp`).
        """
        self._calls.unary(self._stub.AddSessionEvent, _add_request(session_id, event))

    def record(self, event: EventLike) -> None:
        """Record an event through the legacy hook route: `session_start` creates
        (or resumes) the session, `session_stop` finishes it, and any other event
        is stored even if its session does not exist."""
        self._calls.unary(self._stub.RecordEvent, pb.RecordEventRequest(event=to_event(event)))

    def list(self, session_id: str) -> builtins.list[pb.StoredEvent]:
        """A session's events, the 100 oldest by timestamp; NotFoundError if the session is unknown."""
        request = pb.ListSessionEventsRequest(session_id=session_id)
        return builtins.list(self._calls.unary(self._stub.ListSessionEvents, request).events)

    def list_legacy(self, session_id: str) -> builtins.list[pb.StoredEvent]:
        """The same list through the legacy route: an unknown session gives []."""
        request = pb.ListEventsRequest(session_id=session_id)
        return builtins.list(self._calls.unary(self._stub.ListEvents, request).events)


class AsyncEvents:
    """Events of agent sessions (`client.events` of AsyncClient); see `Events` for the semantics."""

    def __init__(self, stub: EventServiceAsyncStub, calls: AsyncCalls) -> None:
        self._stub = stub
        self._calls = calls

    async def add(self, session_id: str, event: EventLike) -> None:
        """Add an event to an existing session; a `session_stop` event finishes it."""
        await self._calls.unary(self._stub.AddSessionEvent, _add_request(session_id, event))

    async def record(self, event: EventLike) -> None:
        """Record an event through the legacy hook route (see `Events.record`)."""
        await self._calls.unary(self._stub.RecordEvent, pb.RecordEventRequest(event=to_event(event)))

    async def list(self, session_id: str) -> builtins.list[pb.StoredEvent]:
        """A session's events, the 100 oldest by timestamp; NotFoundError if the session is unknown."""
        request = pb.ListSessionEventsRequest(session_id=session_id)
        return builtins.list((await self._calls.unary(self._stub.ListSessionEvents, request)).events)

    async def list_legacy(self, session_id: str) -> builtins.list[pb.StoredEvent]:
        """The same list through the legacy route: an unknown session gives []."""
        request = pb.ListEventsRequest(session_id=session_id)
        return builtins.list((await self._calls.unary(self._stub.ListEvents, request)).events)
