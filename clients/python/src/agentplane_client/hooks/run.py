"""One hook run: read the hook's JSON, deliver what is spooled, then its own
plan, within the time budget; spool what the server did not take.

Never in the agent's way: whatever happens (bad input, server down, a bug
here) the run exits 0 and prints nothing, except the Stop hook's documented
decision when a `block` rule says the agent may not stop yet. Problems go
to the adapter's log file.
"""

from __future__ import annotations

import json
import os
import time

from agentplane_client.hooks.delivery import deliver
from agentplane_client.hooks.mapping import RUNTIMES, plan_for
from agentplane_client.hooks.plan import iso_now
from agentplane_client.hooks.spool import Spool
from agentplane_client.hooks.transport import Transport
from agentplane_client.redaction import redact_text

TYPE_CHECKING = False  # (typing itself costs a hook ~4 ms to import)
if TYPE_CHECKING:
    from agentplane_client.hooks.config import HookConfig
    from agentplane_client.hooks.plan import Plan

LOG_MAX_BYTES = 1024 * 1024


class HookLog:
    """Appends to the adapter's log file (one old generation kept)."""

    def __init__(self, path: str, context: str) -> None:
        self.path = path
        self.context = context

    def __call__(self, message: str) -> None:
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            try:
                if os.stat(self.path).st_size > LOG_MAX_BYTES:
                    os.replace(self.path, self.path + ".1")
            except FileNotFoundError:
                pass
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(f"{iso_now()} [{os.getpid()}] {self.context}: {message}\n")
        except OSError:
            pass  # nowhere to log: stay silent rather than disturb the agent


class RunResult:
    def __init__(self) -> None:
        self.stdout = ""  # what the agent reads: empty, or the Stop decision
        self.delivered = False  # the hook's own plan reached the server
        self.spooled = False

    def __repr__(self) -> str:
        return f"RunResult(stdout={self.stdout!r}, delivered={self.delivered}, spooled={self.spooled})"


def run_hook(runtime_name: str, raw: bytes, config: HookConfig) -> RunResult:
    log = HookLog(config.log_file, runtime_name)
    try:
        return _run(runtime_name, raw, config, log)
    except Exception:  # the agent must never see a failure of ours
        import traceback

        log("internal error:\n" + traceback.format_exc())
        return RunResult()


def _run(runtime_name: str, raw: bytes, config: HookConfig, log: HookLog) -> RunResult:
    runtime = RUNTIMES.get(runtime_name)
    if runtime is None:
        log(f"unknown runtime {runtime_name!r} (known: {', '.join(RUNTIMES)})")
        return RunResult()
    try:
        plan = plan_for(runtime, json.loads(raw), config.redact)
    except ValueError as exc:  # bad JSON, not a hook payload, unknown event
        excerpt = f"{raw[:200]!r}{'…' if len(raw) > 200 else ''}"
        log(f"input ignored: {exc}; input was {redact_text(excerpt) if config.redact else excerpt}")
        return RunResult()
    log.context = f"{runtime_name} {plan['hook']}"
    result = RunResult()
    if not plan["steps"]:
        return result
    spool = Spool(config.spool_dir, config.spool_max_bytes, log)
    transport = Transport(config, time.monotonic() + config.timeout_ms / 1000, runtime_name, spool.backlog)
    try:
        if spool.flush(lambda p: _deliver_spooled(p, transport, log), transport.remaining):
            outcome = deliver(plan, transport, live=True, log=log)
            if outcome.block_reason is not None:
                result.stdout = json.dumps({"decision": "block", "reason": outcome.block_reason})
            left = outcome.remaining
            result.delivered = left is None
        else:
            left = plan  # behind what is spooled, to keep the order
        if left is not None:
            result.spooled = spool.append(left)
    finally:
        transport.close()
    return result


def _deliver_spooled(plan: Plan, transport: Transport, log: HookLog) -> Plan | None:
    return deliver(plan, transport, live=False, log=log).remaining
