"""Delivering a plan (see plan.py): its steps in order, ids filled in.

A step the server refuses for good (400, 404: a bad request, which a retry
cannot mend) is logged and skipped. A step with no answer in time stops the
delivery: the plan's remaining steps, with the ids learnt so far, are what
is left to deliver later. `stop-check` runs only when the plan is delivered
live (a spooled Stop has long been allowed); a negative answer skips the
rest of the plan (the session is not ended: the agent goes on).

A step is sent with its idempotency key (see plan.py). A 409 to a keyed step
(the first delivery was committed but its answer lost in a crash) is sent
once more without the key: every step also has a natural key (event ids,
the runtime session), so that records nothing twice and gets a real answer.
"""

from __future__ import annotations

from agentplane_client.hooks.transport import FINAL_FAILURES, Unreachable

TYPE_CHECKING = False  # (typing itself costs a hook ~4 ms to import)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from agentplane_client.hooks.plan import Plan, Step
    from agentplane_client.hooks.transport import Response, Transport

INGEST = "/ingest/v1"
STOP_CHECK = "/ingest/v1/rules/stop-check"


class Outcome:
    def __init__(self) -> None:
        self.remaining: Plan | None = None  # what is left to deliver, if anything
        self.block_reason: str | None = None  # set when a stop-check says the agent may not stop


def _refused(step: Step, resp: Response) -> str:
    error = resp.body.get("error") if isinstance(resp.body, dict) else None
    return f"{step['op']} {step.get('route', '')} refused: HTTP {resp.status} {error or resp.body}"


def deliver(plan: Plan, transport: Transport, live: bool, log: Callable[[str], None]) -> Outcome:
    outcome = Outcome()
    bound: dict[str, dict[str, str]] = dict(plan.get("bound") or {})
    steps: list[Step] = plan["steps"]
    for index, step in enumerate(steps):
        try:
            stop = _run(step, bound, transport, live, outcome, log)
        except Unreachable as exc:
            log(f"server unreachable ({exc}); {len(steps) - index} step(s) of {plan['hook']} kept")
            progressed = index > 0 or bound != (plan.get("bound") or {})
            # the very same plan when nothing went through (the spool need not be rewritten)
            outcome.remaining = {**plan, "steps": steps[index:], "bound": bound} if progressed else plan
            return outcome
        if stop:
            break
    return outcome


def _run(
    step: Step,
    bound: dict[str, dict[str, str]],
    transport: Transport,
    live: bool,
    outcome: Outcome,
    log: Callable[[str], None],
) -> bool:
    """Run one step; True when the rest of the plan is to be skipped."""
    op = step["op"]
    if op == "ensure":
        if step["as"] in bound:
            return False
        body = dict(step["body"])
        parent = bound.get(step.get("parent") or "")
        if step.get("parent") is not None:
            if parent is None:
                log(f"ensure {body.get('runtimeSessionId')}: parent session unknown, skipped")
                return False
            body["parentTaskId"], body["parentSessionId"] = parent["taskId"], parent["sessionId"]
        resp = _post(transport, f"{INGEST}/sessions/ensure", body, step)
        _check(resp, step, log)
        data = resp.data
        if resp.ok and isinstance(data, dict) and data.get("taskId"):
            bound[step["as"]] = {"taskId": data["taskId"], "sessionId": data.get("sessionId") or ""}
        return False
    if op == "events":
        ids = bound.get(step["session"])
        if ids is None:
            log(f"{step['route']}: session {step['session']} unknown, {len(step['events'])} event(s) skipped")
            return False
        events = [_bind(event, ids, step.get("refs"), bound) for event in step["events"]]
        resp = _post(transport, f"{INGEST}/{step['route']}", {"events": events}, step)
        _check(resp, step, log)
        data = resp.data
        if isinstance(data, dict) and data.get("rejected"):
            log(f"{step['route']}: rejected {data['rejected']}")
        return False
    if op == "end":
        _check(_post(transport, f"{INGEST}/sessions/end", step["body"], step), step, log)
        return False
    if op == "stop-check":
        return live and _stop_check(step, bound, transport, outcome, log)
    log(f"unknown step {op!r} skipped")
    return False


def _post(transport: Transport, path: str, body: Any, step: Step) -> Response:
    resp = transport.post(path, body, step.get("key"))
    if resp.status == 409 and step.get("key"):
        resp = transport.post(path, body)
    return resp


def _bind(
    event: dict[str, Any],
    ids: dict[str, str],
    refs: dict[str, str] | None,
    bound: dict[str, dict[str, str]],
) -> dict[str, Any]:
    event = {**event, "taskId": ids["taskId"]}
    if ids.get("sessionId"):
        event["sessionId"] = ids["sessionId"]
    if refs:
        metadata = dict(event.get("metadata") or {})
        for key, ref in refs.items():
            name, _, attr = ref.partition(".")
            value = bound.get(name, {}).get(attr)
            if value:
                metadata[key] = value
        event["metadata"] = metadata
    return event


def _check(resp: Response, step: Step, log: Callable[[str], None]) -> None:
    if resp.ok:
        return
    if resp.status in FINAL_FAILURES:
        log(_refused(step, resp))
        return
    raise Unreachable(f"HTTP {resp.status}")


def _stop_check(
    step: Step,
    bound: dict[str, dict[str, str]],
    transport: Transport,
    outcome: Outcome,
    log: Callable[[str], None],
) -> bool:
    """Ask whether the agent may stop; anything but a clear "no" allows it."""
    body: dict[str, Any] = {k: v for k, v in step.items() if k in ("runtimeSource", "runtimeSessionId")}
    ids = bound.get(step.get("session") or "")
    if ids and ids.get("sessionId"):
        body["sessionId"] = ids["sessionId"]
    try:
        resp = transport.post(STOP_CHECK, body)
    except Unreachable as exc:
        log(f"stop-check: no answer ({exc}); stop allowed")
        return False
    data = resp.data
    if not resp.ok or not isinstance(data, dict) or data.get("mayStop") is not False:
        if not resp.ok:
            log(f"stop-check: HTTP {resp.status}; stop allowed")
        return False
    reason = data.get("reason") or "A blocking rule is not satisfied yet."
    outcome.block_reason = str(reason)
    return True
