"""The `agentplane` command."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Iterator, Sequence

# Imported where used: `agentplane hook` runs on every event of a coding
# agent and must not pay for the server's imports (SQLAlchemy, grpc: ~900 ms),
# nor typing's.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from service.base.config import Settings

log = logging.getLogger("agentplane")


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the gRPC server and the JSON gateway")
    p.add_argument("--http-host", help="gateway address (AGENTPLANE_HTTP_HOST, default 127.0.0.1)")
    p.add_argument("--http-port", type=int, help="gateway port (AGENTPLANE_HTTP_PORT, default 8765)")
    p.add_argument("--grpc-host", help="gRPC address (AGENTPLANE_GRPC_HOST, default 127.0.0.1)")
    p.add_argument("--grpc-port", type=int, help="gRPC port (AGENTPLANE_GRPC_PORT, default 50051)")
    p.add_argument("--database-url", help="SQLAlchemy URL (AGENTPLANE_DATABASE_URL, default a SQLite file)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--grpc-only", action="store_true", help="run only the gRPC server")
    mode.add_argument("--gateway-only", action="store_true", help="run only the gateway, calling --upstream")
    p.add_argument("--upstream", metavar="HOST:PORT", help="the gRPC server a --gateway-only gateway calls")
    p.add_argument(
        "--auth",
        choices=("keys", "off"),
        help="require API keys, or accept every call as the default workspace "
        "(AGENTPLANE_AUTH; default off only when both listeners are on loopback)",
    )
    p.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        default=None,
        help="serve with auth off on a non-loopback address (AGENTPLANE_ALLOW_UNAUTHENTICATED)",
    )
    p.add_argument(
        "--otlp-export-endpoint",
        metavar="URL",
        help="send the log as GenAI spans to this OTLP backend (AGENTPLANE_OTLP_EXPORT_ENDPOINT; default off)",
    )
    p.add_argument(
        "--otlp-export-protocol",
        choices=("grpc", "http/protobuf", "http/json"),
        help="OTLP protocol of the export (AGENTPLANE_OTLP_EXPORT_PROTOCOL, default http/protobuf)",
    )
    p.add_argument(
        "--otlp-export-headers",
        metavar="K=V,...",
        help="headers of every export request, e.g. Authorization=Bearer%%20... (AGENTPLANE_OTLP_EXPORT_HEADERS)",
    )
    p.add_argument(
        "--otlp-export-content",
        action="store_true",
        default=None,
        help="export prompts, answers and tool input and output too (AGENTPLANE_OTLP_EXPORT_CONTENT)",
    )
    for flag, env, what in (
        ("--retention-seconds", "RETENTION_SECONDS", "remove log entries older than this (0: keep forever)"),
        (
            "--retention-bytes",
            "RETENTION_BYTES",
            "keep at most this much payload per workspace (0: no limit)",
        ),
        ("--quota-events-per-day", "QUOTA_EVENTS_PER_DAY", "refuse writes past this many entries a UTC day"),
        ("--quota-stored-bytes", "QUOTA_STORED_BYTES", "refuse writes past this much stored payload"),
    ):
        p.add_argument(flag, type=int, help=f"{what}, per workspace by default (AGENTPLANE_{env}, default 0)")


# Settings a command-line flag of the same name overrides.
_FLAG_SETTINGS = (
    "http_host",
    "http_port",
    "grpc_host",
    "grpc_port",
    "database_url",
    "auth",
    "allow_unauthenticated",
    "otlp_export_endpoint",
    "otlp_export_protocol",
    "otlp_export_headers",
    "otlp_export_content",
    "retention_seconds",
    "retention_bytes",
    "quota_events_per_day",
    "quota_stored_bytes",
)


def settings_from(args: argparse.Namespace) -> Settings:
    from service.base.config import Settings

    s = Settings.from_env()
    for name in _FLAG_SETTINGS:
        value = getattr(args, name, None)
        if value is not None:
            setattr(s, name, value)
    return s


async def _grpc_only(settings: Settings) -> None:
    import asyncio

    from service.app.assembly import Core

    core = Core(settings)
    await core.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("gRPC server ready on %s:%s", settings.grpc_host, core.grpc_port)
    await stop.wait()
    log.info("shutting down")
    await core.stop()


def _graceful_server_class() -> type:
    import asyncio
    import socket

    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn re-raises SIGTERM/SIGINT once it has shut down, so the
        process would end "killed by signal". After a clean shutdown we exit 0."""

        # Called as shutdown begins, before uvicorn waits for open connections
        # to finish: the app ends its endless streams there (with their cursors).
        going_away: Callable[[], None] = staticmethod(lambda: None)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            self.going_away()
            # A moment for the streams to send their last message before
            # uvicorn closes the connections (a WebSocket with a bare 1012).
            await asyncio.sleep(0.1)
            await super().shutdown(sockets)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGTERM, signal.SIGINT)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return GracefulServer


def _listeners(settings: Settings, args: argparse.Namespace) -> list[tuple[str, str, int]]:
    """(what, host, port) of the sockets this `serve` will listen on."""
    http = ("the HTTP gateway (--http-port)", settings.http_host, settings.http_port)
    grpc = ("gRPC (--grpc-port)", settings.grpc_host, settings.grpc_port)
    return [grpc] if args.grpc_only else [http] if args.gateway_only else [http, grpc]


KEEP_ALIVE_SECONDS = 75


def serve(args: argparse.Namespace) -> int:
    from agentplane_cli import ports
    from service.base import interpreter
    from service.rpc.auth import AuthPolicy, ExposureError

    settings = settings_from(args)
    if args.gateway_only and not args.upstream:
        print("agentplane serve: --gateway-only needs --upstream HOST:PORT", file=sys.stderr)
        return 2
    if problem := ports.unavailable(_listeners(settings, args)):
        print(f"agentplane serve: {problem}", file=sys.stderr)
        return 1
    if not args.gateway_only:
        try:
            policy = AuthPolicy.of(settings)
        except (ExposureError, ValueError) as exc:
            print(f"agentplane serve: {exc}", file=sys.stderr)
            return 2
        from service.app.otlp_export.process import check_settings

        try:
            check_settings(settings)
        except ValueError as exc:
            print(f"agentplane serve: {exc}", file=sys.stderr)
            return 2
        if settings.otlp_export_endpoint:
            log.info("OTLP export: %s to %s", settings.otlp_export_protocol, settings.otlp_export_endpoint)
        from service.store.database import describe_database

        log.info("database: %s", describe_database(settings.database_url))
        log.info("authentication: %s", policy.describe())
    if args.grpc_only:
        interpreter.tune_for_serving()
        import asyncio

        # The loop uvicorn gives `serve` (uvloop where uvicorn[standard] installed
        # it): grpc.aio serves ~25% more unary calls per core on it.
        from uvicorn.loops.auto import auto_loop_factory

        with asyncio.Runner(loop_factory=auto_loop_factory(use_subprocess=False)) as runner:
            runner.run(_grpc_only(settings))
        return 0

    import uvicorn

    from gateway.app import create_app
    from gateway.read_timeouts import timed_protocol
    from service.app.assembly import Core

    app = (
        create_app(settings, upstream=args.upstream)
        if args.gateway_only
        else create_app(settings, service=Core, follower_process=True)
    )
    log.info("HTTP gateway on http://%s:%s", settings.http_host, settings.http_port)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        lifespan="on",
        log_level="debug" if settings.debug_logging else "info",
        # One log format: uvicorn's lines go through the root logger's, and
        # the access log is gateway.access_log's (GatewayApp writes it).
        log_config=None,
        access_log=False,
        # Not behind a proxy by default; no "server: uvicorn" banner.
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        # An idle keep-alive connection is closed after this. uvicorn's 5 s is
        # httpx's own pool expiry: a client reusing a connection at 5 s raced
        # the server's close and got a read error on a POST it cannot safely
        # resend. Longer than common clients keep theirs (nginx's default).
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        http=timed_protocol(settings.header_timeout_seconds, settings.body_timeout_seconds),
    )
    server = _graceful_server_class()(config)
    server.going_away = lambda: getattr(app.state, "going_away", lambda: None)()
    interpreter.tune_for_serving()
    server.run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else list(argv)
    if args_in[:1] in (["hook"], ["hooks"]):  # before any heavy import (see the top)
        from agentplane_client.hooks.cli import main as hooks_main

        return hooks_main(args_in)
    from agentplane_cli import db as db_cli
    from agentplane_cli import keys as keys_cli
    from agentplane_cli import tasks as tasks_cli
    from agentplane_cli import transfer as transfer_cli

    parser = argparse.ArgumentParser(
        prog="agentplane", description="One control plane for coding-agent runtimes."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    keys_cli.add_parser(sub)
    tasks_cli.add_parser(sub)
    db_cli.add_parser(sub)
    transfer_cli.add_parsers(sub)
    # Listed for --help; dispatched above, before the parser is built.
    sub.add_parser("hook", help="run a Claude Code or Codex hook: hook claude-code|codex (JSON on stdin)")
    sub.add_parser("hooks", help="install or uninstall the hooks in Claude Code or Codex settings")
    args = parser.parse_args(argv)
    # Their output is for people and scripts, not logs.
    quiet = args.command in ("keys", "tasks", "db", "export", "import")
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "serve":
        return serve(args)
    if args.command == "keys":
        return keys_cli.run(settings_from(args), args)
    if args.command == "tasks":
        return tasks_cli.run(settings_from(args), args)
    if args.command == "db":
        return db_cli.run(settings_from(args), args)
    if args.command in ("export", "import"):
        return transfer_cli.run(settings_from(args), args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
