"""OTLP http/json from the official exporters Claude Code itself uses: the
OpenTelemetry JS SDK's `@opentelemetry/exporter-logs-otlp-http` and
`exporter-metrics-otlp-http`, run by Node (tests/otlp_js/emit.mjs, installed by
`make otlp-js`) and configured only by OTEL_EXPORTER_OTLP_* variables, as
Claude Code is, send Claude-Code- and Codex-shaped logs and metrics
(tests/e2e/otlp_support.py) to a real `agentplane serve`; the results are read
back through agentplane's own routes (TelemetryService, the console, the
log), on both backends, with API keys off and on."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from agentplane_cli.main import main as agentplane_main
from tests.e2e.otlp_support import (
    CLAUDE,
    CLAUDE_ROUNDS,
    CLAUDE_STREAMS,
    CODEX,
    check_claude_figures,
    check_claude_session,
    check_codex_conversation,
    claude_events,
    claude_points,
    codex_events,
    ensure_hook_session,
    otlp_server,
    records,
    usage,
    with_unknown_and_bad,
)

OTLP_JS = Path(__file__).resolve().parents[1] / "otlp_js"
EMIT = OTLP_JS / "emit.mjs"


def _node() -> str:
    node = shutil.which("node")
    if node is None or not (OTLP_JS / "node_modules" / "@opentelemetry").is_dir():
        pytest.fail("the OpenTelemetry JS SDK is not installed: run `make otlp-js` (Node.js 20+ and npm)")
    return node


def scenario(
    resource: dict[str, str],
    logs: Sequence[tuple[str, dict[str, Any]]] = (),
    session: str = "",
    rounds: Sequence[dict[str, float]] = (),
) -> dict[str, Any]:
    """What emit.mjs reads: the resource, log events, and Claude Code's counters by round."""
    return {
        "resource": resource,
        "logs": [{"body": body, "attributes": attributes} for body, attributes in logs],
        "metrics": [
            [
                {"name": name, "unit": unit, "value": value, "attributes": attributes}
                for name, unit, value, attributes in claude_points(session, figures)
            ]
            for figures in rounds
        ],
    }


def emit(base: str, story: dict[str, Any], **env: str) -> subprocess.CompletedProcess[str]:
    """Run the JS SDK's exporters against `base` with these OTEL_* settings (and
    none from the environment the tests run in)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": base, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", **env}
    return subprocess.run(
        [_node(), str(EMIT)],
        input=json.dumps(story),
        capture_output=True,
        text=True,
        env={**clean, **otel},
        timeout=120,
        check=False,
    )


def exported(done: subprocess.CompletedProcess[str]) -> dict[str, int]:
    assert done.returncode == 0, done.stderr
    counts: dict[str, int] = json.loads(done.stdout.splitlines()[-1])["exports"]
    return counts


def test_claude_code_and_codex_over_the_js_sdks_http_json(tmp_path: Path, database_url: str) -> None:
    _node()
    with otlp_server(tmp_path, database_url) as (base, _):
        session = "5b1d3c7e-8f9a-4b2c-9d3e-1f2a3b4c5d6e"
        ensured = ensure_hook_session(base, session)  # the Claude Code hook binds the session first
        events = claude_events(session, "p-1")
        with_unknown_and_bad(session, events)
        # Logs in one batch (Claude Code's BatchLogRecordProcessor), then the
        # counters round by round, cumulative (the SDK's default temporality).
        counts = exported(emit(base, scenario(CLAUDE, events, session, CLAUDE_ROUNDS)))
        assert counts == {"logs": 1, "metrics": 4}  # three rounds, and once more at shutdown

        found = check_claude_session(base, session, ensured)
        # The unknown event is kept as sent; the bad request was refused alone (partial_success).
        assert [r["kind"] for r in found][5] == "record"
        assert found[5]["data"]["event"] == "claude_code.something_new"
        assert len([r for r in found if r["kind"] == "metric"]) == 4 * CLAUDE_STREAMS
        # The JS SDK sends numbers as OTLP JSON's intValue / doubleValue (the
        # Python tests' attributes are strings, as Claude Code's are): both count.
        conversation = "0199a214-0000-7000-8aa1-bbab2a035a54"
        exported(emit(base, scenario(CODEX, codex_events(conversation))))
        check_codex_conversation(base, conversation)

        # The console's overview counts today's tokens and cost from telemetry.
        today = httpx.get(f"{base}/v1/console/overview").json()["today"]
        assert (today["input_tokens"], today["output_tokens"]) == (1500 + 2400, 340 + 310)
        assert today["cache_read_tokens"] == 5000 + 1800 and today["cost_usd"] == pytest.approx(0.75)
        assert today["usage_source"] == "telemetry"
        # Every record is in the one log too, streamed like everything else.
        watched = httpx.get(f"{base}/v1/log:watch", params={"after_seq": 0, "stop_at_end": "true"}).text
        types = [orjson.loads(line)["result"]["entry"]["type"] for line in watched.splitlines()]
        assert types.count("telemetry.metric") == 4 * CLAUDE_STREAMS
        assert types.count("telemetry.api_request") == 2  # Claude Code's and Codex's
        workspace = httpx.get(f"{base}/v1/telemetry/usage").json()
        assert workspace["sessions"] == 2 and workspace["total"]["input_tokens"] == 1500 + 2400


def _key(database_url: str, workspace: str) -> str:
    """A key of `workspace` that may send telemetry and read it back, from `agentplane keys create`."""
    out = io.StringIO()
    args = ["keys", "--database-url", database_url, "create", "--name", f"otel-{workspace}"]
    with contextlib.redirect_stdout(out):
        status = agentplane_main([*args, "--workspace", workspace, "--scopes", "write:events,read:events"])
    assert status == 0, out.getvalue()
    return out.getvalue().strip().splitlines()[-1]


def test_the_key_in_otel_exporter_otlp_headers_selects_the_workspace(
    tmp_path: Path, database_url: str
) -> None:
    """With API keys on, the key Claude Code is given in OTEL_EXPORTER_OTLP_HEADERS
    (either header agentplane reads) decides the workspace; without one,
    nothing is written and the exporter is told 401. Also: gzip, and delta
    temporality (each export holds only what was added since the last)."""
    _node()
    team_a, team_b = _key(database_url, "team-a"), _key(database_url, "team-b")
    session = "0a0b0c0d-1111-4222-8333-444455556666"  # the same id in both workspaces
    with otlp_server(tmp_path, database_url, "--auth", "keys") as (base, _):
        story = scenario(CLAUDE, claude_events(session, "p-1"), session, CLAUDE_ROUNDS)
        delta = {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta"}
        counts = exported(
            emit(
                base,
                story,
                OTEL_EXPORTER_OTLP_HEADERS=f"Authorization=Bearer {team_a}",
                OTEL_EXPORTER_OTLP_COMPRESSION="gzip",
                **delta,
            )
        )
        assert counts["logs"] == 1 and counts["metrics"] == 3  # delta: nothing new to send at shutdown
        small = scenario(CLAUDE, [], session, [{**CLAUDE_ROUNDS[2], "input": 7}])
        exported(emit(base, small, OTEL_EXPORTER_OTLP_HEADERS=f"x-api-key={team_b}"))

        refused = emit(base, scenario(CLAUDE, claude_events("nobody", "p-9")))
        assert refused.returncode == 1 and "logs:" in refused.stderr  # 401 is not retried

        a, b = {"X-API-Key": team_a}, {"Authorization": f"Bearer {team_b}"}
        check_claude_figures(usage(base, session, a))
        assert usage(base, session, b)["usage"]["input_tokens"] == 7
        assert len([r for r in records(base, session, a) if r["kind"] == "metric"]) == 3 * CLAUDE_STREAMS
        for key in (a, b):
            workspace = httpx.get(f"{base}/v1/telemetry/usage", headers=key).json()
            assert workspace["sessions"] == 1  # its own session, not the other's, not "nobody"'s
        assert httpx.get(f"{base}/v1/telemetry/usage").status_code == 401
        missing = httpx.get(f"{base}/v1/telemetry/sessions/nobody/usage", headers=a)
        assert missing.status_code == 404
