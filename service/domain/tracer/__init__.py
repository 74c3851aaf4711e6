"""The Agent Tracer API (seed 000): tasks, runtime sessions, typed event
ingest, turns and the timeline.

- `model`: the vocabulary (statuses, kinds, lanes), the JSON views and the
  validation helpers shared by the rest;
- `lifecycle`: tasks and monitor sessions (start, link, finalize, ensure,
  end and the completion policy, the stale-task reaper);
- `timeline`: writing timeline events (log entry, projection row, derived
  events, deduplication) and `turns`, the turn state machine;
- `ingest`: the seven event endpoints;
- `reads`: the task list, a task's detail and its timeline.

Every write is one `store.write` operation: a request is one transaction.
"""
