"""WebSocket feeds, each a view of the event log stream (LogService.WatchLog).

`/ws` is seed 004's feed: `init` with every session, then `session_created`,
`session_updated`, `session_deleted` and `event` as they are committed.
Every message after `init` carries `seq`, its position in the log; a client
that reconnects with `/ws?cursor=<last seq>` gets what it missed, in order,
with no gap and no duplicate.

`/api/v1/ws` is the Agent Tracer's feed (seed 000): `snapshot`, then
upstream's message types (see `tracer_feed`), resumable the same way. Both
are `log_feed`s.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from agentplane.v1 import log_pb2, options_pb2, runtime_pb2, tracer_pb2
from fastapi import WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from google.protobuf.message import Message

from gateway.families import FAMILIES, Family
from gateway.routes import forwarded_metadata
from gateway.transport import Transport
from service.api.log_render import cached, data_python
from service.codec import encoder, struct_to_python, to_dict
from service.rpc.dispatch import method_path
from service.rpc.status import RpcError
from service.store.log_reads import LogRow

WATCH = method_path(log_pb2.DESCRIPTOR.services_by_name["LogService"].methods_by_name["WatchLog"])
LIST_SESSIONS = method_path(
    runtime_pb2.DESCRIPTOR.services_by_name["SessionService"].methods_by_name["ListSessions"]
)
RUNTIME_FAMILY = FAMILIES[options_pb2.ROUTE_FAMILY_AGENT_RUNTIME]
_UNAUTHENTICATED, _PERMISSION_DENIED, _UNAVAILABLE, _OUT_OF_RANGE = 16, 7, 14, 11  # gRPC status codes
# A WebSocket close code of the application range (4000-4999): 4000 + HTTP 416.
CURSOR_BEFORE_HORIZON_CLOSE = 4416
RUNTIME_TYPES = ("session.created", "session.updated", "session.deleted", "runtime.event")


def runtime_message(seq: int, type: str, data: dict[str, Any]) -> dict[str, Any] | None:
    if type == "runtime.event":
        return {"type": "event", "data": data, "seq": seq}
    if type == "session.deleted":
        return {"type": "session_deleted", "session_id": data["session_id"], "seq": seq}
    kind = {"session.created": "session_created", "session.updated": "session_updated"}.get(type)
    return {"type": kind, "session": data["session"], "seq": seq} if kind else None


# A feed's message for a log entry (seq, type, data), or None to skip it.
Render = Callable[[int, str, dict[str, Any]], dict[str, Any] | None]


def _text(render: Render) -> Callable[[LogRow], str | None]:
    def text(row: LogRow) -> str | None:
        message = render(row.seq, row.type, data_python(row))
        return None if message is None else orjson.dumps(message).decode()

    return text


async def _drain_client(ws: WebSocket) -> None:
    """Read and ignore what the client sends (it only keeps the line alive)."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await ws.receive_text()


async def admitted(
    ws: WebSocket, transport: Transport, family: Family, paths: Sequence[str]
) -> dict[str, str] | None:
    """The call metadata of a WebSocket whose feed makes calls to `paths`, if
    the auth step admits them all. Otherwise the handshake is refused with
    the family's error body and status (401, 403, 429) and None returned, so
    a client without a valid key never gets an open socket."""
    metadata = forwarded_metadata(ws.headers.items())
    try:
        for path in paths:
            await transport.admit(path, metadata)
    except RpcError as err:
        status, body, headers = family.error(err)
        try:
            await ws.send_denial_response(JSONResponse(body, status, headers))
        except RuntimeError:  # the server cannot send an HTTP answer: a bare refusal (403)
            await ws.close(code=1008)
        return None
    return metadata


def close_code(err: RpcError) -> int:
    """1008 (policy violation) when the feed's key is refused (revoked,
    expired); 1001 (going away) when the server shuts down and 1013 (try
    again later) for a slow consumer, both with the cursor to resume from
    in the reason (see `close_reason`); 4416 when retention removed entries
    after the cursor (CURSOR_BEFORE_HORIZON, with the cursor to resume from:
    everything still kept is after it); else 1011."""
    if err.code in (_UNAUTHENTICATED, _PERMISSION_DENIED):
        return 1008
    if err.code == _OUT_OF_RANGE:
        return CURSOR_BEFORE_HORIZON_CLOSE
    if _resume_after(err) is not None:
        return 1001 if err.code == _UNAVAILABLE else 1013
    return 1011


def _resume_after(err: RpcError) -> str | None:
    info = err.error_info()
    return info.metadata.get("resume_after_seq") if info is not None else None


def close_reason(err: RpcError) -> str:
    cursor = _resume_after(err)
    if cursor is not None:  # e.g. "SLOW_CONSUMER; reconnect with cursor=1234"
        return f"{err.error_info().reason}; reconnect with cursor={cursor}"  # type: ignore[union-attr]
    return err.status.message[:120]


async def runtime_feed(ws: WebSocket, transport: Transport) -> None:
    async def opening(metadata: dict[str, str]) -> dict[str, Any]:
        sessions: Message = await transport.unary(
            LIST_SESSIONS, runtime_pb2.ListSessionsRequest(), runtime_pb2.ListSessionsResponse, metadata
        )
        return {"type": "init", **to_dict(sessions)}

    await log_feed(ws, transport, RUNTIME_FAMILY, RUNTIME_TYPES, (LIST_SESSIONS,), opening, runtime_message)


async def _pump(ws: WebSocket, stream: Any, reader: asyncio.Task[None], render: Render) -> None:
    """Forward log entries until the client leaves or the stream ends. In
    process the stream gives the feed's rows, whose text is made once for
    every socket of this kind (log_render.cached); over a channel, messages."""
    as_text = _text(render)
    while True:
        nxt = asyncio.ensure_future(anext(stream, None))
        done, _ = await asyncio.wait([nxt, reader], return_when=asyncio.FIRST_COMPLETED)
        if reader in done:
            nxt.cancel()
            return
        item = nxt.result()
        if item is None:
            return
        if isinstance(item, list):
            for row in item:
                text = cached(row, render, as_text)
                if text is not None:
                    await ws.send_text(text)
        elif item.HasField("entry"):
            entry = item.entry
            message = render(entry.seq, entry.type, struct_to_python(entry.data))
            if message is not None:
                await ws.send_json(message)


async def log_feed(
    ws: WebSocket,
    transport: Transport,
    family: Family,
    types: Sequence[str],
    calls: Sequence[str],
    opening: Callable[[dict[str, str]], Any],
    render: Render,
) -> None:
    """A WebSocket view of the log: `opening(metadata)` gives the first
    message, then every committed entry of `types` is sent as `render` makes
    it, each with its `seq`; `?cursor=<seq>` resumes after that entry."""
    metadata = await admitted(ws, transport, family, (WATCH, *calls))
    if metadata is None:
        return
    await ws.accept()
    raw_cursor = ws.query_params.get("cursor")
    try:
        after = int(raw_cursor) if raw_cursor is not None else -1
    except ValueError:
        await ws.close(code=1008, reason="cursor must be an integer")
        return
    request = log_pb2.WatchLogRequest(after_seq=after if after >= 0 else -1, types=types)
    stream = transport.stream(WATCH, request, log_pb2.WatchLogResponse, metadata, wire="rows")
    reader = asyncio.create_task(_drain_client(ws))
    try:
        if after < 0:
            await anext(stream)  # the opening heartbeat: the stream now follows from "now"
        await ws.send_json(await opening(metadata))
        await _pump(ws, stream, reader, render)
    except RpcError as err:
        with contextlib.suppress(Exception):
            await ws.close(code=close_code(err), reason=close_reason(err))
    finally:
        reader.cancel()
        with contextlib.suppress(Exception):
            await stream.aclose()  # type: ignore[attr-defined]


# The Agent Tracer feed (seed 000), `/api/v1/ws` (upstream serves it at `/ws`,
# which is seed 004's here): `snapshot` {stats, tasks} on connect, then
# `event.logged`, `event.updated`, `task.started`, `task.updated`,
# `task.completed`, `session.started` and `session.ended`, each as
# {"type", "payload", "seq"}.
TRACER_FAMILY = FAMILIES[options_pb2.ROUTE_FAMILY_AGENT_TRACER]
TRACER_SNAPSHOT = method_path(
    tracer_pb2.DESCRIPTOR.services_by_name["TracerTaskService"].methods_by_name["GetTracerSnapshot"]
)
# log entry type -> (message type, the key of `data` that is the payload; None: all of it)
TRACER_MESSAGES: dict[str, tuple[str, str | None]] = {
    "tracer.event.logged": ("event.logged", None),
    "tracer.event.updated": ("event.updated", None),
    "tracer.task.started": ("task.started", "task"),
    "tracer.task.updated": ("task.updated", "task"),
    "tracer.task.completed": ("task.completed", "task"),
    "tracer.session.started": ("session.started", "session"),
    "tracer.session.ended": ("session.ended", "session"),
    # Verification rules (service.domain.tracer.rules.messages).
    "tracer.rules.changed": ("rules.changed", "payload"),
    "tracer.verdict.updated": ("verdict.updated", None),
    "tracer.rule_enforcement.added": ("rule_enforcement.added", None),
}
_encode_snapshot = encoder(tracer_pb2.GetTracerSnapshotResponse.DESCRIPTOR, False, True)


def tracer_message(seq: int, type: str, data: dict[str, Any]) -> dict[str, Any] | None:
    found = TRACER_MESSAGES.get(type)
    if found is None:
        return None
    kind, key = found
    return {"type": kind, "payload": data if key is None else data[key], "seq": seq}


async def tracer_feed(ws: WebSocket, transport: Transport) -> None:
    async def opening(metadata: dict[str, str]) -> dict[str, Any]:
        snapshot = await transport.unary(
            TRACER_SNAPSHOT,
            tracer_pb2.GetTracerSnapshotRequest(),
            tracer_pb2.GetTracerSnapshotResponse,
            metadata,
        )
        return {"type": "snapshot", "payload": _encode_snapshot(snapshot)}

    await log_feed(
        ws, transport, TRACER_FAMILY, tuple(TRACER_MESSAGES), (TRACER_SNAPSHOT,), opening, tracer_message
    )


# The family of each feed's path (gateway.app serves them): a handshake the
# Host or Origin check refuses (gateway.guard) gets its error body.
FEED_FAMILIES = {"/ws": RUNTIME_FAMILY, "/api/v1/ws": TRACER_FAMILY}
