"""The hook adapters' spool backlog, as they report it, for GET /metrics.

A hook (agentplane-hook, clients/python) keeps what the server did not take
in an on-disk spool on the developer's machine, which the server cannot see;
so each of its calls says how much is waiting: the `Agentplane-Hook-Spool`
header (gRPC metadata `agentplane-hook-spool`, the same name), as
`<plans waiting>; runtime=<runtime>`. This step of the call chain runs after
auth (a caller without a valid key reports nothing) and keeps the last
report per runtime. Runtimes are a closed set (anything else is `other`), so
the metric's labels stay few; parameters it does not know are ignored, so a
newer hook is never refused for saying more. A count that is not one is
INVALID_ARGUMENT, as a bad Idempotency-Key is.
"""

from __future__ import annotations

import time

from google.protobuf.descriptor import MethodDescriptor

from service.base import metrics
from service.base.errors import CommonReason, FieldViolation, InvalidArgument
from service.rpc.context import CallContext

HEADER = "agentplane-hook-spool"
RUNTIMES = frozenset({"claude-code", "codex"})
OTHER = "other"
# Far above any spool (16 MiB by default): a bound, so a figure stays a number.
MAX_ENTRIES = 10**9


def parse(raw: str) -> tuple[str, int]:
    """(runtime, plans waiting) of a report."""
    count, *params = (part.strip() for part in raw.split(";"))
    if not count.isascii() or not count.isdigit() or int(count) > MAX_ENTRIES:
        raise InvalidArgument(
            f"{HEADER} must be the number of plans waiting (0 to {MAX_ENTRIES}), then `; runtime=<name>`",
            reason=CommonReason.INVALID_HOOK_SPOOL_REPORT,
            violations=[FieldViolation(HEADER, "must start with a whole number of plans, 0 or more")],
        )
    runtime = OTHER
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "runtime" and value.strip() in RUNTIMES:
            runtime = value.strip()
    return runtime, int(count)


async def record_report(ctx: CallContext, method: MethodDescriptor) -> None:
    """The interceptor: keep the call's report, if it carries one."""
    raw = ctx.metadata.get(HEADER)
    if raw is not None:
        runtime, entries = parse(raw)
        metrics.hook_spools[runtime] = (entries, time.time())
