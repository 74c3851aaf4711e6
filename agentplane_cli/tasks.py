"""`agentplane tasks`: create, list and show AGH tasks on a running server,
over gRPC (so waiting claimers wake at once, on every replica).

The server is AGENTPLANE_GRPC_HOST:AGENTPLANE_GRPC_PORT (127.0.0.1:50051)
unless `--server` says otherwise; with authentication on, the key comes from
`--api-key` or AGENTPLANE_API_KEY. `--json` prints what the JSON API returns.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC
from typing import Any, TextIO, TypeVar

import grpc
from agentplane.v1 import agh_pb2 as pb
from google.protobuf.message import Message

from service.base.config import Settings
from service.codec import to_dict

M = TypeVar("M", bound=Message)
# Seconds a call may take (the server unreachable fails sooner).
_TIMEOUT = 30.0
# Exit statuses: 1 an unknown task, 2 bad input, 3 the server cannot be reached (or refused the key).
_EXIT = {
    grpc.StatusCode.NOT_FOUND: 1,
    grpc.StatusCode.INVALID_ARGUMENT: 2,
    grpc.StatusCode.FAILED_PRECONDITION: 2,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 2,
    grpc.StatusCode.PERMISSION_DENIED: 3,
    grpc.StatusCode.UNAUTHENTICATED: 3,
    grpc.StatusCode.UNAVAILABLE: 3,
    grpc.StatusCode.DEADLINE_EXCEEDED: 3,
}


def _common_options(p: argparse.ArgumentParser, *, after_command: bool) -> None:
    """--server, --api-key and --json, before the command or after it. After it
    they have no default (argparse.SUPPRESS), so they do not undo the ones before."""
    unset: Any = argparse.SUPPRESS
    p.add_argument(
        "--server",
        metavar="HOST:PORT",
        default=unset if after_command else None,
        help="the gRPC server (default AGENTPLANE_GRPC_HOST:PORT)",
    )
    p.add_argument(
        "--api-key",
        default=unset if after_command else None,
        help="API key when authentication is on (default AGENTPLANE_API_KEY)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        default=unset if after_command else False,
        help="print the JSON API's body instead of text",
    )


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("tasks", help="create, list and show AGH tasks on a running server")
    _common_options(p, after_command=False)
    commands = p.add_subparsers(dest="tasks_command", required=True)

    create = commands.add_parser("create", help="create a task and queue its first run")
    create.add_argument("title")
    create.add_argument("--description", default="")
    create.add_argument("--priority", choices=("low", "medium", "high", "urgent"), default="")
    create.add_argument("--scope", choices=("global", "workspace"), default="")
    create.add_argument("--max-attempts", type=int, default=0, help="1 to 10 (default 3)")
    create.add_argument("--draft", action="store_true", help="create it without queueing a run")
    create.add_argument("--metadata", metavar="JSON", help="a JSON object to attach")

    listing = commands.add_parser("list", help="list tasks, newest first")
    listing.add_argument("--status", default="")
    listing.add_argument("--priority", default="")
    listing.add_argument("--scope", default="")
    listing.add_argument("--limit", type=int, default=50, help="how many (default 50, at most 500)")

    show = commands.add_parser("show", help="show a task and its runs")
    show.add_argument("task_id", help="its id or its identifier (TASK-7)")
    for command in (create, listing, show):
        _common_options(command, after_command=True)


_SERVICE = pb.DESCRIPTOR.services_by_name["AghTaskService"]


class Tasks:
    """AghTaskService over a channel, with the caller's API key."""

    def __init__(self, channel: grpc.Channel, api_key: str) -> None:
        self.channel = channel
        self.metadata: tuple[tuple[str, str | bytes], ...] = (("x-api-key", api_key),) if api_key else ()

    def call(self, method: str, request: Message, reply: type[M]) -> M:
        rpc = self.channel.unary_unary(
            f"/{_SERVICE.full_name}/{method}",
            request_serializer=type(request).SerializeToString,
            response_deserializer=reply.FromString,
        )
        result: M = rpc(request, metadata=self.metadata, timeout=_TIMEOUT)
        return result


def _json(msg: Message) -> dict[str, Any]:
    return to_dict(msg, proto_names=True, omit_unset=True)


def _time(msg: Any, field: str) -> str:
    if not msg.HasField(field):
        return "-"
    return getattr(msg, field).ToDatetime(tzinfo=UTC).isoformat(timespec="seconds")


def _table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(), file=out)


def _create(tasks: Tasks, args: argparse.Namespace, out: TextIO) -> int:
    req = pb.CreateAghTaskRequest(
        title=args.title,
        description=args.description,
        priority=args.priority,
        scope=args.scope,
        max_attempts=args.max_attempts,
        draft=args.draft,
    )
    if args.metadata:
        try:
            metadata = json.loads(args.metadata)
        except json.JSONDecodeError as exc:
            print(f"agentplane tasks: --metadata is not JSON: {exc}", file=sys.stderr)
            return 2
        if not isinstance(metadata, dict):
            print("agentplane tasks: --metadata must be a JSON object", file=sys.stderr)
            return 2
        req.metadata.update(metadata)
    reply = tasks.call("CreateAghTask", req, pb.CreateAghTaskResponse)
    if args.json:
        print(json.dumps(_json(reply), indent=2), file=out)
        return 0
    task = reply.task
    queued = f"; run {reply.run.id} queued" if reply.HasField("run") else " (draft: no run queued)"
    print(
        f"Created {task.identifier} {task.id} [{task.priority}] {task.title}: {task.status}{queued}", file=out
    )
    return 0


def _list(tasks: Tasks, args: argparse.Namespace, out: TextIO) -> int:
    req = pb.ListAghTasksRequest(
        status=args.status, priority=args.priority, scope=args.scope, page_size=args.limit
    )
    reply = tasks.call("ListAghTasks", req, pb.ListAghTasksResponse)
    if args.json:
        print(json.dumps(_json(reply), indent=2), file=out)
        return 0
    if not reply.tasks:
        print("no tasks", file=out)
        return 0
    rows = [["TASK", "STATUS", "PRIORITY", "SCOPE", "CREATED", "ID", "TITLE"]]
    rows += [
        [
            t.identifier,
            t.status + (" (paused)" if t.paused else ""),
            t.priority,
            t.scope,
            _time(t, "created_at"),
            t.id,
            t.title,
        ]
        for t in reply.tasks
    ]
    _table(rows, out)
    if reply.next_page_token:
        print(f"(more: raise --limit above {args.limit})", file=out)
    return 0


def _show(tasks: Tasks, args: argparse.Namespace, out: TextIO) -> int:
    reply = tasks.call("GetAghTask", pb.GetAghTaskRequest(task_id=args.task_id), pb.GetAghTaskResponse)
    if args.json:
        print(json.dumps(_json(reply), indent=2), file=out)
        return 0
    t = reply.task
    print(f"{t.identifier}  {t.title}", file=out)
    print(f"  id: {t.id}", file=out)
    print(
        f"  status: {t.status}{' (paused)' if t.paused else ''}; priority {t.priority}; scope {t.scope}",
        file=out,
    )
    print(f"  attempts allowed: {t.max_attempts}; created {_time(t, 'created_at')}", file=out)
    if t.description:
        print(f"  description: {t.description}", file=out)
    if not reply.runs:
        print("  no runs", file=out)
        return 0
    rows = [["ATTEMPT", "STATUS", "HOLDER", "QUEUED", "ENDED", "RUN", "ERROR"]]
    rows += [
        [
            str(r.attempt),
            r.status,
            r.session_id or "-",
            _time(r, "queued_at"),
            _time(r, "ended_at"),
            r.id,
            r.error or "",
        ]
        for r in reply.runs
    ]
    print(file=out)
    _table(rows, out)
    return 0


_COMMANDS = {"create": _create, "list": _list, "show": _show}


def run(settings: Settings, args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Exit status: 0; 1 an unknown task; 2 bad input; 3 the server unreachable or the key refused."""
    target = args.server or f"{settings.grpc_host}:{settings.grpc_port}"
    key = args.api_key or os.environ.get("AGENTPLANE_API_KEY", "")
    with grpc.insecure_channel(target) as channel:
        try:
            return _COMMANDS[args.tasks_command](Tasks(channel, key), args, out or sys.stdout)
        except grpc.RpcError as err:
            code = err.code()
            detail = err.details() or code.name
            where = f" ({target})" if code == grpc.StatusCode.UNAVAILABLE else ""
            print(f"agentplane tasks: {detail}{where}", file=sys.stderr)
            return _EXIT.get(code, 3)
