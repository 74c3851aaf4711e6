"""What the OTLP receiver hands the domain: log records, metric points and
spans as plain values (the servicer reads them out of the OTLP messages), and
the words the stored records use.

Log entries this family appends, one per accepted record, each with the
runtime session in the entry's `session_id` (see the README's OpenTelemetry
section; the exporter and the console read them, keep them stable):

- `telemetry.api_request`  a model request: `model`, `input_tokens`,
  `output_tokens`, `cache_read_tokens`, `cache_creation_tokens`, `cost_usd`,
  `duration_ms` (Claude Code `claude_code.api_request`, Codex
  `codex.api_request`; Codex's token counts come on `telemetry.api_usage`)
- `telemetry.api_usage`    tokens of a completed response (Codex
  `codex.sse_event` of kind `response.completed`): the token fields above
- `telemetry.api_error`    a failed request: `model`, `error`, `status_code`,
  `duration_ms`, `attempt`
- `telemetry.tool_result`  `tool_name`, `success`, `duration_ms`, `error`,
  `decision`, `source`
- `telemetry.tool_decision` `tool_name`, `decision`, `source`
- `telemetry.user_prompt`  `prompt_length`, and `prompt` only when the
  runtime sent it (redacted like every write)
- `telemetry.metric`       one data point: `name`, `type` (sum, gauge,
  histogram, exponential_histogram, summary), `temporality`, `monotonic`,
  `value` (sums and gauges), `delta` (what a sum added to the totals),
  `unit`, and count/sum/min/max for histograms
- `telemetry.span`         a span, kept as sent: `name`, `trace_id`,
  `span_id`, `parent_span_id` (hex), `start`, `end`, `status`, `events`
- `telemetry.record`       a log record not understood, kept as sent

Every entry's data also carries `kind` (the type's suffix), `runtime`
(`claude-code`, `codex` or `other`), `event` (the event or metric name),
`session_id`, `time` (ISO 8601 UTC), `prompt_id` when sent, `attributes`
(the record's own, as sent), `resource` (`service.name`,
`service.version`), and `trace_id`/`span_id` (hex) when the record has them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CLAUDE_CODE, CODEX, OTHER = "claude-code", "codex", "other"
ENTRY_PREFIX = "telemetry."
API_REQUEST, API_USAGE, API_ERROR = "api_request", "api_usage", "api_error"
TOOL_RESULT, TOOL_DECISION, USER_PROMPT = "tool_result", "tool_decision", "user_prompt"
METRIC, SPAN, RECORD = "metric", "span", "record"
KINDS = (API_REQUEST, API_USAGE, API_ERROR, TOOL_RESULT, TOOL_DECISION, USER_PROMPT, METRIC, SPAN, RECORD)
ENTRY_TYPES = tuple(ENTRY_PREFIX + kind for kind in KINDS)

# Metric data types and temporalities as stored.
SUM, GAUGE, HISTOGRAM = "sum", "gauge", "histogram"
CUMULATIVE, DELTA = "cumulative", "delta"


@dataclass(slots=True)
class Resource:
    """What the exporting process says about itself."""

    attributes: dict[str, Any] = field(default_factory=dict)
    # The part every stored record repeats (made once per resource).
    summary: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.summary = {
            k: self.attributes[k] for k in ("service.name", "service.version") if k in self.attributes
        }


@dataclass(slots=True)
class LogIn:
    """One OTLP log record (an event of Claude Code or Codex, or anything else)."""

    resource: Resource
    attributes: dict[str, Any]
    body: Any
    event_name: str
    time_unix_nano: int
    observed_time_unix_nano: int
    trace_id: bytes
    span_id: bytes
    severity_text: str = ""


@dataclass(slots=True)
class PointIn:
    """One metric data point, with its metric's name and shape."""

    resource: Resource
    name: str
    unit: str
    type: str
    temporality: str
    monotonic: bool
    attributes: dict[str, Any]
    start_time_unix_nano: int
    time_unix_nano: int
    # sums and gauges
    value: float | None = None
    # histograms and summaries
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SpanIn:
    """One span, kept as sent."""

    resource: Resource
    name: str
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: dict[str, Any]
    kind: int = 0
    status: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Accepted:
    """What an export stored, and what it refused (OTLP's partial_success)."""

    stored: int
    rejected: int = 0
    error_message: str = ""
