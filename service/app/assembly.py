"""Puts the server together: store, servicers, call chain, gRPC listener."""

from __future__ import annotations

import logging

import grpc
from grpc_health.v1 import health_pb2

from service.api.admin import AdminServicer
from service.api.agh import AghAgentServicer, AghOperatorServicer, AghTaskServicer
from service.api.apikeys import ApiKeyServicer
from service.api.channels import AghChannelServicer, ChannelServicer
from service.api.console import ConsoleServicer
from service.api.executions import AgentServicer, ExecutionServicer, ToolCallServicer
from service.api.log import LogServicer
from service.api.otlp import LogsServicer, MetricsServicer, TraceServicer
from service.api.rules import RuleServicer
from service.api.runtime import EventServicer, SessionServicer
from service.api.telemetry import TelemetryServicer
from service.api.tracer import TracerIngestServicer, TracerSessionServicer, TracerTaskServicer
from service.api.trenchcoat import TrenchcoatServicer
from service.app import grpc_server
from service.app.lease_sweeper import LeaseSweeper
from service.app.metrics import MetricsPage, figures_hook
from service.app.otlp_export.process import ExportProcess
from service.app.reaper import StaleTaskReaper
from service.app.retention_sweeper import RetentionSweeper
from service.base import metrics
from service.base.config import Settings
from service.domain.agh.channels.feed import ChannelFeed, StreamLimiter
from service.domain.log_feed import LogFeed
from service.domain.retention.policy import Policies, defaults_from
from service.domain.runtime import sessions
from service.domain.tracer import session_deletion
from service.rpc import hook_spool
from service.rpc.admission import ByteBudget, write_queue_gate
from service.rpc.agh_identity import AghIdentity
from service.rpc.auth import Auth
from service.rpc.dispatch import Dispatcher
from service.rpc.idempotency import Idempotency, KeySweeper
from service.rpc.redaction import rewriters
from service.store.notifier import Notifier
from service.store.store import Store

log = logging.getLogger("agentplane")


class Core:
    """The running service: everything but the HTTP gateway."""

    def __init__(self, settings: Settings, budget: ByteBudget | None = None) -> None:
        """`budget`: the bytes-in-flight bound, shared with an in-process gateway."""
        self.settings = settings
        self.budget = budget or ByteBudget(settings.max_inflight_bytes, settings.burst_allocator)
        # Deleting a session (seed 004) takes the tracer's projections of it along.
        sessions.on_session_deleted(session_deletion.forget_session)
        self.store = Store(settings.database_url)
        # Retention and quotas: the writer asks the policies for a workspace's quotas.
        self.policies = Policies(
            self.store,
            defaults_from(
                settings.retention_seconds,
                settings.retention_bytes,
                settings.quota_events_per_day,
                settings.quota_stored_bytes,
            ),
        )
        self.store.writer.meter.quotas = self.policies.quotas
        self.auth = Auth(settings, self.store)
        self.channel_feed = ChannelFeed(self.store)
        self.log_feed = LogFeed(self.store)
        channel_streams = StreamLimiter(settings.max_streams_per_key)
        self.dispatcher = Dispatcher(
            [
                SessionServicer(self.store),
                EventServicer(self.store),
                LogServicer(self.store, self.log_feed, settings.heartbeat_seconds),
                ExecutionServicer(self.store),
                AgentServicer(self.store),
                ToolCallServicer(self.store, settings.max_tool_output_bytes),
                TrenchcoatServicer(self.store),
                TracerSessionServicer(self.store),
                TracerTaskServicer(self.store),
                TracerIngestServicer(self.store),
                RuleServicer(self.store),
                ApiKeyServicer(self.store, self.auth.keys),
                AghAgentServicer(self.store),
                AghTaskServicer(self.store),
                AghOperatorServicer(self.store),
                AghChannelServicer(
                    self.store, self.channel_feed, channel_streams, settings.heartbeat_seconds
                ),
                ChannelServicer(self.store),
                ConsoleServicer(self.store, self._open_streams),
                # OpenTelemetry in: OTLP's own services, and what they stored
                LogsServicer(self.store),
                MetricsServicer(self.store),
                TraceServicer(self.store),
                TelemetryServicer(self.store),
                AdminServicer(self.policies),
            ],
            [
                *self.auth.interceptors,
                hook_spool.record_report,  # after auth: only a valid caller reports
                write_queue_gate(self.store.writer.depth, settings.max_write_queue),
                AghIdentity(self.store),
            ],
            rewriters(settings.redact),  # secrets in what agents send (AGENTPLANE_REDACT)
        )
        self.auth.check(m.descriptor for m in self.dispatcher.methods.values())
        self.grpc_port: int | None = None
        self._grpc: grpc.aio.Server | None = None
        self.reaper = StaleTaskReaper(
            self.store,
            interval_seconds=settings.tracer_reaper_interval_seconds,
            stale_seconds=settings.tracer_stale_task_seconds,
        )
        self.lease_sweeper = LeaseSweeper(self.store, interval_seconds=settings.lease_sweep_seconds)
        self.dispatcher.idempotency = Idempotency(self.store, settings.idempotency_window_seconds)
        self.retention = RetentionSweeper(
            self.store,
            self.policies,
            interval_seconds=settings.retention_sweep_seconds,
            batch=settings.retention_batch,
        )
        self.key_sweeper = KeySweeper(self.dispatcher.idempotency, settings.idempotency_sweep_seconds)
        # The OTLP exporter (a child process; off without an endpoint); /metrics reads `status()`.
        self.otlp_export = ExportProcess(settings, self.store)
        # GET /metrics (the gateway serves it; a feature adds its figures to `metrics.hooks`).
        self.metrics = MetricsPage(self.store, self.auth, self.budget)
        self.metrics.hooks.append(figures_hook(self.otlp_export.status))

    @property
    def notifier(self) -> Notifier:
        return self.store.notifier

    def _open_streams(self) -> int:
        """Live streams: the feeds' readers here, and those a follower process serves."""
        return (
            self.log_feed.readers + self.channel_feed.readers + metrics.open_streams[metrics.FOLLOWER_PROCESS]
        )

    async def start(self, *, serve_grpc: bool = True) -> None:
        await self.store.open()
        await self.policies.load()
        self.reaper.start()
        self.retention.start()
        self.lease_sweeper.start()
        self.key_sweeper.start()
        self.channel_feed.start()
        self.log_feed.start()
        await self.otlp_export.start()
        if not serve_grpc:
            return
        address = f"{self.settings.grpc_host}:{self.settings.grpc_port}"
        self._grpc, self.grpc_port, health = grpc_server.build(self.dispatcher, address, self.budget)
        await self._grpc.start()
        await health.set("", health_pb2.HealthCheckResponse.SERVING)
        log.info("gRPC listening on %s:%s", self.settings.grpc_host, self.grpc_port)

    def going_away(self) -> None:
        """Shutdown has begun: end every log stream now, each with its cursor."""
        self.log_feed.close()

    async def stop(self) -> None:
        """Let in-flight calls finish (up to the grace period), then close the store,
        which commits every write already accepted."""
        self.going_away()
        if self._grpc is not None:
            await self._grpc.stop(self.settings.shutdown_grace_seconds)
        await self.otlp_export.stop()
        await self.reaper.stop()
        await self.retention.stop()
        await self.lease_sweeper.stop()
        await self.key_sweeper.stop()
        await self.channel_feed.stop()
        await self.log_feed.stop()
        await self.store.close()
        self.budget.close()
