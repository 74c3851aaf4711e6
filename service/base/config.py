"""Settings from the environment; the CLI's flags override them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

MIB = 1024 * 1024


def data_dir() -> Path:
    """Where the embedded database lives unless AGENTPLANE_DATABASE_URL says
    otherwise: one place per user (AGENTPLANE_HOME, else
    $XDG_DATA_HOME/agentplane, else ~/.local/share/agentplane), so the server,
    `agentplane keys` and `agentplane tasks` find the same data from any
    working directory."""
    home = os.environ.get("AGENTPLANE_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share") / "agentplane"


def default_url() -> str:
    return f"sqlite:///{data_dir() / 'agentplane.db'}"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def _env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    return default if raw is None else raw.strip().lower() in ("1", "true", "yes", "on")


@dataclass
class Settings:
    http_host: str = "127.0.0.1"
    http_port: int = 8765
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    database_url: str = field(default_factory=default_url)
    # The largest request body the gateway reads (the largest any upstream allows).
    max_body_bytes: int = 8 * MIB
    # How long an idle watch stream waits before sending a heartbeat.
    heartbeat_seconds: float = 15.0
    # How long in-flight calls may take to finish on shutdown.
    shutdown_grace_seconds: float = 10.0
    # The largest tool call output accepted (UTF-8 bytes); a larger one is refused.
    max_tool_output_bytes: int = MIB
    cors_origins: list[str] = field(
        default_factory=lambda: ["http://localhost:5173", "http://localhost:3000"]
    )
    debug_logging: bool = False
    # Agent Tracer stale-task reaper: how often it runs (0 turns it off), and
    # how long a running task with no running session may stay idle.
    tracer_reaper_interval_seconds: float = 60.0
    tracer_stale_task_seconds: float = 1800.0
    # API keys: "keys", "off", or "" for the default (off only when every
    # listener is on loopback). See service.rpc.auth.
    auth: str = ""
    # Serve with auth off on a non-loopback address anyway.
    allow_unauthenticated: bool = False
    # How long a key lookup is trusted: a revocation made by another process
    # takes effect within this time.
    key_cache_seconds: float = 5.0
    # Requests a minute per API key (0: unlimited); None for the default
    # (unlimited on loopback, service.rpc.auth.DEFAULT_RATE_LIMIT_PER_MINUTE otherwise).
    rate_limit_per_minute: int | None = None
    # AGH task queue: how often expired leases go back to the queue (and due
    # spawned sessions stop); 0 turns the sweep off.
    lease_sweep_seconds: float = 15.0
    # Redact secrets in ingested tool inputs, outputs and event bodies
    # (AGENTPLANE_REDACT=on|off; see service.domain.secrets).
    redact: bool = True
    # Channel streams (StreamChannelMessages) open at once per API key (per
    # workspace when keys are off); 0: no limit.
    max_streams_per_key: int = 1000
    # Host names the gateway answers to besides localhost, *.localhost, IP
    # literals and its own address (`.example.com`: it and its subdomains;
    # `*`: any). None: any when API keys are required, else none more (gateway.guard).
    allowed_hosts: list[str] | None = None
    # Admission control (service.rpc.admission): bytes of request bodies in
    # flight (HTTP and gRPC), and write operations waiting for the writer;
    # past either, requests are refused with 503 + Retry-After. 0: no bound.
    max_inflight_bytes: int = 8 * MIB
    max_write_queue: int = 1024
    # During a burst (2 MiB or more in flight) small objects come from malloc,
    # so the memory goes back after it (service.base.heap); off: never switch.
    burst_allocator: bool = True
    # Live NDJSON followers of /v1/log:watch are served by a child process,
    # off the write path's event loop (gateway.followers); off: in the server.
    follower_process: bool = True
    # Read timeouts: a request's headers, and its body, must arrive within these.
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    # How long a write's idempotency key holds (its answer is replayed to
    # retries); expired keys are swept every `idempotency_sweep_seconds` (0: never).
    idempotency_window_seconds: float = 86400.0
    idempotency_sweep_seconds: float = 300.0
    # OTLP export of the log as GenAI spans (service.app.otlp_export): off
    # without an endpoint. Protocol grpc, http/protobuf or http/json; headers
    # as `k=v,k2=v2`; content (prompts, answers, tool input and output) only
    # when asked for.
    otlp_export_endpoint: str = ""
    otlp_export_protocol: str = "http/protobuf"
    otlp_export_headers: str = ""
    otlp_export_content: bool = False
    # Log entries read (and at most spans sent) per request; one request in flight.
    otlp_export_batch_size: int = 1000
    # How long the backend may take to answer a request before it is retried.
    otlp_export_timeout_seconds: float = 10.0
    # How often an idle exporter looks for new entries.
    otlp_export_interval_seconds: float = 0.5
    # Retention and quotas, the defaults of every workspace (an admin's
    # SetRetention overrides them per workspace; 0: none). Log entries older
    # than `retention_seconds`, or past `retention_bytes` of stored payload,
    # are removed every `retention_sweep_seconds` (0: never), at most
    # `retention_batch` entries per commit. Past `quota_events_per_day` log
    # entries in a UTC day, or `quota_stored_bytes` of stored payload, writes
    # are refused (service.domain.retention).
    retention_seconds: int = 0
    retention_bytes: int = 0
    quota_events_per_day: int = 0
    quota_stored_bytes: int = 0
    retention_sweep_seconds: float = 60.0
    retention_batch: int = 1000

    @classmethod
    def from_env(cls) -> Settings:
        d = cls()
        cors = os.environ.get("CORS_ORIGINS")
        hosts = os.environ.get("AGENTPLANE_ALLOWED_HOSTS")
        return cls(
            lease_sweep_seconds=_env_float("AGENTPLANE_LEASE_SWEEP_SECONDS", d.lease_sweep_seconds),
            redact=_env_bool("AGENTPLANE_REDACT", d.redact),
            max_streams_per_key=_env_int("AGENTPLANE_MAX_STREAMS_PER_KEY", d.max_streams_per_key),
            max_inflight_bytes=_env_int("AGENTPLANE_MAX_INFLIGHT_BYTES", d.max_inflight_bytes),
            max_write_queue=_env_int("AGENTPLANE_MAX_WRITE_QUEUE", d.max_write_queue),
            burst_allocator=_env_bool("AGENTPLANE_BURST_ALLOCATOR", d.burst_allocator),
            follower_process=_env_bool("AGENTPLANE_FOLLOWER_PROCESS", d.follower_process),
            header_timeout_seconds=_env_float("AGENTPLANE_HEADER_TIMEOUT_SECONDS", d.header_timeout_seconds),
            body_timeout_seconds=_env_float("AGENTPLANE_BODY_TIMEOUT_SECONDS", d.body_timeout_seconds),
            idempotency_window_seconds=_env_float(
                "AGENTPLANE_IDEMPOTENCY_WINDOW_SECONDS", d.idempotency_window_seconds
            ),
            idempotency_sweep_seconds=_env_float(
                "AGENTPLANE_IDEMPOTENCY_SWEEP_SECONDS", d.idempotency_sweep_seconds
            ),
            retention_seconds=_env_int("AGENTPLANE_RETENTION_SECONDS", d.retention_seconds),
            retention_bytes=_env_int("AGENTPLANE_RETENTION_BYTES", d.retention_bytes),
            quota_events_per_day=_env_int("AGENTPLANE_QUOTA_EVENTS_PER_DAY", d.quota_events_per_day),
            quota_stored_bytes=_env_int("AGENTPLANE_QUOTA_STORED_BYTES", d.quota_stored_bytes),
            retention_sweep_seconds=_env_float(
                "AGENTPLANE_RETENTION_SWEEP_SECONDS", d.retention_sweep_seconds
            ),
            retention_batch=_env_int("AGENTPLANE_RETENTION_BATCH", d.retention_batch),
            http_host=os.environ.get("AGENTPLANE_HTTP_HOST", d.http_host),
            http_port=_env_int("AGENTPLANE_HTTP_PORT", d.http_port),
            grpc_host=os.environ.get("AGENTPLANE_GRPC_HOST", d.grpc_host),
            grpc_port=_env_int("AGENTPLANE_GRPC_PORT", d.grpc_port),
            database_url=os.environ.get("AGENTPLANE_DATABASE_URL") or d.database_url,
            max_body_bytes=_env_int("AGENTPLANE_MAX_BODY_BYTES", d.max_body_bytes),
            heartbeat_seconds=_env_float("AGENTPLANE_HEARTBEAT_SECONDS", d.heartbeat_seconds),
            shutdown_grace_seconds=_env_float("AGENTPLANE_SHUTDOWN_GRACE_SECONDS", d.shutdown_grace_seconds),
            max_tool_output_bytes=_env_int("AGENTPLANE_MAX_TOOL_OUTPUT_BYTES", d.max_tool_output_bytes),
            cors_origins=[o.strip() for o in cors.split(",") if o.strip()] if cors else d.cors_origins,
            debug_logging=_env_bool("DEBUG_LOGGING") or _env_bool("AGENTPLANE_DEBUG"),
            tracer_reaper_interval_seconds=_env_float(
                "AGENTPLANE_TRACER_REAPER_INTERVAL_SECONDS", d.tracer_reaper_interval_seconds
            ),
            tracer_stale_task_seconds=_env_float(
                "AGENTPLANE_TRACER_STALE_TASK_SECONDS", d.tracer_stale_task_seconds
            ),
            auth=os.environ.get("AGENTPLANE_AUTH", d.auth).strip().lower(),
            allow_unauthenticated=_env_bool("AGENTPLANE_ALLOW_UNAUTHENTICATED"),
            key_cache_seconds=_env_float("AGENTPLANE_KEY_CACHE_SECONDS", d.key_cache_seconds),
            allowed_hosts=[h.strip() for h in hosts.split(",") if h.strip()] if hosts else None,
            otlp_export_endpoint=os.environ.get("AGENTPLANE_OTLP_EXPORT_ENDPOINT", "").strip(),
            otlp_export_protocol=os.environ.get("AGENTPLANE_OTLP_EXPORT_PROTOCOL", "").strip()
            or d.otlp_export_protocol,
            otlp_export_headers=os.environ.get("AGENTPLANE_OTLP_EXPORT_HEADERS", d.otlp_export_headers),
            otlp_export_content=_env_bool("AGENTPLANE_OTLP_EXPORT_CONTENT", d.otlp_export_content),
            otlp_export_batch_size=_env_int("AGENTPLANE_OTLP_EXPORT_BATCH_SIZE", d.otlp_export_batch_size),
            otlp_export_timeout_seconds=_env_float(
                "AGENTPLANE_OTLP_EXPORT_TIMEOUT_SECONDS", d.otlp_export_timeout_seconds
            ),
            otlp_export_interval_seconds=_env_float(
                "AGENTPLANE_OTLP_EXPORT_INTERVAL_SECONDS", d.otlp_export_interval_seconds
            ),
            rate_limit_per_minute=(
                _env_int("AGENTPLANE_RATE_LIMIT", 0) if os.environ.get("AGENTPLANE_RATE_LIMIT") else None
            ),
        )
