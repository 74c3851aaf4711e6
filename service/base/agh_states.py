"""The AGH task queue's state vocabulary: the statuses a run and a task can
be in, and the groups the lease rules and the queue's SQL decide on.

The decisions on them live in the domain (service.domain.agh.states); the
store compiles the same groups into its statements (the claim's candidates,
active leases, the sweep). The store may not import the domain, so the words
both speak sit here, in the one layer below both.
"""

from __future__ import annotations

# A run's statuses.
QUEUED = "queued"
CLAIMED = "claimed"
STARTING = "starting"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
CANCELED = "canceled"
NEEDS_ATTENTION = "needs_attention"
# A run with one of these statuses holds a lease while `lease_until` is ahead.
ACTIVE = (CLAIMED, STARTING, RUNNING)
TERMINAL = (COMPLETED, FAILED, CANCELED)
# Runs not yet finished: what a cancel ends and what blocks queueing another.
UNFINISHED = (QUEUED, *ACTIVE)

# A task's statuses (derived from its runs, see service.domain.agh.states);
# `completed`, `failed` and `canceled` are also a task's.
DRAFT = "draft"
READY = "ready"
IN_PROGRESS = "in_progress"
BLOCKED = "blocked"
# Task statuses whose runs are never claimed.
UNCLAIMABLE_TASK = (DRAFT, BLOCKED, CANCELED)
