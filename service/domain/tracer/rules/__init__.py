"""Verification rules of the Agent Tracer (seed 000, reference §8).

- `evaluator`: pure matching: trigger phrases with negation, tool calls
  inferred from events, verdicts, per-event enforcement (`Enforcer`);
- `spec`: rule input validation, the signature, the JSON view;
- `catalog`: create, suggest, update, delete, promote, demote, list;
- `live`: the hooks that run inside tracer writes: enforcements for newly
  stored events of open turns, verdicts when a turn closes; `active` (the
  active rules of a task, cached per rules version) and `seen_turns` (what
  was stored into each open turn) keep them cheap;
- `replay`: re-evaluating a rule over stored turns (re-evaluate, and after
  create, promote, demote and suggest);
- `reads`: verdict counts, evidence, the timeline's `rule` lane;
- `stop`: the Stop hook check for `severity: block` rules;
- `messages`: the log entries behind the live feed's rule messages.
"""
