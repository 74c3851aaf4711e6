"""Verification rules (seed 000; migration 0006): the rules, their verdicts
per (turn, rule), and their enforcements per (event, rule, match kind).

Each is updated in the same transaction as the log entries that explain it
(`tracer.rules.changed`, `tracer.verdict.updated`,
`tracer.rule_enforcement.added`). Times are ISO 8601 text in UTC with
milliseconds, as the rest of the tracer's.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Index, Text, text
from sqlmodel import Field, SQLModel

from service.store.tables import BigId, NullableJson, OrderedText


class TracerRuleRow(SQLModel, table=True):
    """A rule. Deleted rules keep their row (`deleted_at`), so their verdicts
    and enforcements still name them."""

    __tablename__ = "tracer_rules"
    __table_args__ = (
        # The active rules of a task (and, with task_id NULL, the global ones):
        # what every turn close and every stored event batch looks up.
        Index(
            "ix_tracer_rules_active",
            "workspace",
            "task_id",
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("ix_tracer_rules_signature", "workspace", "signature"),
        # The workspace's rules version: its highest changed_seq.
        Index("ix_tracer_rules_changed", "workspace", "changed_seq"),
    )

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    id: str = Field(sa_column=Column(Text, primary_key=True))
    # The log position of its creation: the list's order, ties impossible.
    seq: int = Field(sa_column=Column(BigId, nullable=False))
    name: str = Field(sa_column=Column(Text, nullable=False))
    # The trigger phrases (a JSON list), NULL for a rule without a trigger.
    phrases: Any = Field(default=None, sa_column=Column(NullableJson))
    trigger_on: str | None = Field(default=None, sa_column=Column(Text))
    # The expectation: the action (`command`, `file-read`, …), the command
    # regexes (a JSON list) and the pattern.
    action: str | None = Field(default=None, sa_column=Column(Text))
    command_matches: Any = Field(default=None, sa_column=Column(NullableJson))
    pattern: str | None = Field(default=None, sa_column=Column(Text))
    scope: str = Field(sa_column=Column(Text, nullable=False))
    task_id: str | None = Field(default=None, sa_column=Column(Text))
    source: str = Field(sa_column=Column(Text, nullable=False))
    severity: str = Field(sa_column=Column(Text, nullable=False))
    rationale: str | None = Field(default=None, sa_column=Column(Text))
    signature: str = Field(sa_column=Column(Text, nullable=False))
    created_at: str = Field(sa_column=Column(OrderedText, nullable=False))
    deleted_at: str | None = Field(default=None, sa_column=Column(Text))
    # The log position of its latest change (creation, update, deletion).
    changed_seq: int = Field(sa_column=Column(BigId, nullable=False))


class TracerVerdictRow(SQLModel, table=True):
    """One rule's verdict on one closed turn."""

    __tablename__ = "tracer_verdicts"
    __table_args__ = (
        Index("ix_tracer_verdicts_task", "workspace", "task_id"),
        Index("ix_tracer_verdicts_rule", "workspace", "rule_id"),
    )

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    turn_id: str = Field(sa_column=Column(Text, primary_key=True))
    rule_id: str = Field(sa_column=Column(Text, primary_key=True))
    task_id: str = Field(sa_column=Column(Text, nullable=False))
    session_id: str = Field(sa_column=Column(Text, nullable=False))
    # `verified`, `contradicted` or `unverifiable`.
    status: str = Field(sa_column=Column(Text, nullable=False))
    # matchedPhrase, expectedPattern, actualToolCalls, matchedToolCalls.
    detail: Any = Field(default=None, sa_column=Column(NullableJson))
    evaluated_at: str = Field(sa_column=Column(Text, nullable=False))


class TracerEnforcementRow(SQLModel, table=True):
    """An event of an open turn that matched a rule's trigger or fulfilled
    its expectation (upstream's `rule_enforcements`)."""

    __tablename__ = "tracer_rule_enforcements"
    __table_args__ = (Index("ix_tracer_enforcements_rule", "workspace", "rule_id", "task_id"),)

    workspace: str = Field(sa_column=Column(Text, primary_key=True))
    event_id: str = Field(sa_column=Column(Text, primary_key=True))
    rule_id: str = Field(sa_column=Column(Text, primary_key=True))
    # `trigger` or `expect-fulfilled`.
    match_kind: str = Field(sa_column=Column(Text, primary_key=True))
    task_id: str = Field(sa_column=Column(Text, nullable=False))
    session_id: str | None = Field(default=None, sa_column=Column(Text))
    turn_id: str | None = Field(default=None, sa_column=Column(Text))
    decided_at: str = Field(sa_column=Column(Text, nullable=False))


tracer_rules = TracerRuleRow.__table__  # type: ignore[attr-defined]
tracer_verdicts = TracerVerdictRow.__table__  # type: ignore[attr-defined]
tracer_enforcements = TracerEnforcementRow.__table__  # type: ignore[attr-defined]
