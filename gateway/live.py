"""WebSocket feeds, each a view of the event log stream (LogService.WatchLog).

`/ws` is seed 004's feed: `init` with every session, then `session_created`,
`session_updated`, `session_deleted` and `event` as they are committed.
Every message after `init` carries `seq`, its position in the log; a client
that reconnects with `/ws?cursor=<last seq>` gets what it missed, in order,
with no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from agentplane.v1 import log_pb2, runtime_pb2
from fastapi import WebSocket, WebSocketDisconnect
from google.protobuf.message import Message

from gateway.routes import forwarded_metadata
from gateway.transport import Transport
from service.api.protojson import struct_to_python, to_dict
from service.app.dispatch import method_path
from service.app.status import RpcError

WATCH = method_path(log_pb2.DESCRIPTOR.services_by_name["LogService"].methods_by_name["WatchLog"])
LIST_SESSIONS = method_path(
    runtime_pb2.DESCRIPTOR.services_by_name["SessionService"].methods_by_name["ListSessions"]
)
RUNTIME_TYPES = ("session.created", "session.updated", "session.deleted", "runtime.event")


def runtime_message(entry: log_pb2.LogEntry) -> dict[str, Any] | None:
    data = struct_to_python(entry.data)
    if entry.type == "runtime.event":
        return {"type": "event", "data": data, "seq": entry.seq}
    if entry.type == "session.deleted":
        return {"type": "session_deleted", "session_id": data["session_id"], "seq": entry.seq}
    kind = {"session.created": "session_created", "session.updated": "session_updated"}.get(entry.type)
    return {"type": kind, "session": data["session"], "seq": entry.seq} if kind else None


async def _drain_client(ws: WebSocket) -> None:
    """Read and ignore what the client sends (it only keeps the line alive)."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await ws.receive_text()


async def runtime_feed(ws: WebSocket, transport: Transport) -> None:
    await ws.accept()
    metadata = forwarded_metadata(ws.headers.items())
    raw_cursor = ws.query_params.get("cursor")
    try:
        after = int(raw_cursor) if raw_cursor is not None else -1
    except ValueError:
        await ws.close(code=1008, reason="cursor must be an integer")
        return
    request = log_pb2.WatchLogRequest(after_seq=after if after >= 0 else -1, types=RUNTIME_TYPES)
    stream = transport.stream(WATCH, request, log_pb2.WatchLogResponse, metadata)
    reader = asyncio.create_task(_drain_client(ws))
    try:
        if after < 0:
            await anext(stream)  # the opening heartbeat: the stream now follows from "now"
        sessions: Message = await transport.unary(
            LIST_SESSIONS, runtime_pb2.ListSessionsRequest(), runtime_pb2.ListSessionsResponse, metadata
        )
        await ws.send_json({"type": "init", **to_dict(sessions)})
        await _pump(ws, stream, reader, runtime_message)
    except RpcError as err:
        with contextlib.suppress(Exception):
            await ws.close(code=1011, reason=err.status.message[:120])
    finally:
        reader.cancel()
        with contextlib.suppress(Exception):
            await stream.aclose()  # type: ignore[attr-defined]


async def _pump(
    ws: WebSocket,
    stream: Any,
    reader: asyncio.Task[None],
    render: Callable[[log_pb2.LogEntry], dict[str, Any] | None],
) -> None:
    """Forward log entries until the client leaves or the stream ends."""
    while True:
        nxt = asyncio.ensure_future(anext(stream, None))
        done, _ = await asyncio.wait([nxt, reader], return_when=asyncio.FIRST_COMPLETED)
        if reader in done:
            nxt.cancel()
            return
        item = nxt.result()
        if item is None:
            return
        if item.HasField("entry"):
            message = render(item.entry)
            if message is not None:
                await ws.send_json(message)
