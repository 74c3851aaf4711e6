"""Puts the server together: store, servicers, call chain, gRPC listener."""

from __future__ import annotations

import logging

import grpc
from grpc_health.v1 import health_pb2

from service.api.log import LogServicer
from service.api.runtime import EventServicer, SessionServicer
from service.app import grpc_server
from service.app.config import Settings
from service.app.dispatch import Dispatcher
from service.store.store import Store

log = logging.getLogger("agentplane")


class Core:
    """The running service: everything but the HTTP gateway."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.database_url)
        self.dispatcher = Dispatcher(
            [
                SessionServicer(self.store),
                EventServicer(self.store),
                LogServicer(self.store, settings.heartbeat_seconds),
            ]
        )
        self.grpc_port: int | None = None
        self._grpc: grpc.aio.Server | None = None

    async def start(self, *, serve_grpc: bool = True) -> None:
        await self.store.open()
        if not serve_grpc:
            return
        address = f"{self.settings.grpc_host}:{self.settings.grpc_port}"
        self._grpc, self.grpc_port, health = grpc_server.build(self.dispatcher, address)
        await self._grpc.start()
        await health.set("", health_pb2.HealthCheckResponse.SERVING)
        log.info("gRPC listening on %s:%s", self.settings.grpc_host, self.grpc_port)

    async def stop(self) -> None:
        """Let in-flight calls finish (up to the grace period), then close the store,
        which commits every write already accepted."""
        if self._grpc is not None:
            await self._grpc.stop(self.settings.shutdown_grace_seconds)
        await self.store.close()
