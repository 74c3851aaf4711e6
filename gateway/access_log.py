"""The access log and the HTTP metrics: one record per HTTP request the gateway
answers. Requests answered 4xx or 5xx are always logged (logger
`agentplane.access`), so a refused call leaves a trace; every request is, with
debug logging on (AGENTPLANE_DEBUG). Every request is counted for /metrics by
family and route template (service.base.metrics). The gateway's entry
(gateway.app.GatewayApp) calls `finish`, so no middleware layer of its own
wraps every request."""

from __future__ import annotations

import logging
import time

from starlette.types import Scope

from service.base import metrics

log = logging.getLogger("agentplane.access")

# Where the generated route's endpoint leaves itself in the ASGI scope
# (gateway.routes.Endpoint): its family and template label the request.
ENDPOINT = "agentplane.endpoint"
# Where an endpoint that gave its connection to another process leaves the
# status it began the response with (gateway.routes.Endpoint._hand_over).
HANDED_OVER = "agentplane.handed_over"
# Paths outside the contract labelled as themselves; any other is "(other)",
# so a scan of random paths cannot grow the label set.
_OWN_PATHS = frozenset({"/healthz", "/metrics", "/docs", "/openapi.json", "/ws", "/api/v1/ws"})


def finish(scope: Scope, status: int, started: float, every_request: bool) -> None:
    """Count the request answered `status` (0: no answer began) and log it when due."""
    took = time.perf_counter() - started
    status = status or scope.get(HANDED_OVER, 0)
    endpoint = scope.get(ENDPOINT)
    if endpoint is not None:
        metrics.count_http(endpoint.family.name, endpoint.binding.template, scope["method"], status, took)
    else:
        path = scope["path"]
        metrics.count_http("", path if path in _OWN_PATHS else "(other)", scope["method"], status, took)
    if status >= 400 or every_request:
        client = scope.get("client")
        where = f"{client[0]}:{client[1]}" if client else "-"
        log.info('%s "%s %s" %s %.1f ms', where, scope["method"], scope["path"], status or "-", took * 1000)
