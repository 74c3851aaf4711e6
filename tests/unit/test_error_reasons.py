"""Error reasons are typed: every reason the code raises is a member of a
family's enumeration (mypy refuses a plain string: DomainError.reason is a
Reason), and every member of the families whose JSON errors depend on the
reason has its entry in that family's table, so a new reason cannot fall back
to a generic answer unnoticed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from gateway import agh_errors, families, tracer_errors
from service.base.errors import CommonReason, DomainError, Reason
from service.domain.agh.reasons import AghReason
from service.domain.tracer.reasons import TracerReason
from service.domain.trenchcoat.reasons import TrenchcoatReason

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("reasons", "table"),
    [
        (AghReason, agh_errors.REASONS),
        (TracerReason, tracer_errors.REASONS),
        (TrenchcoatReason, families.TRENCHCOAT_REASON_CODES),
    ],
    ids=["agh", "tracer", "trenchcoat"],
)
def test_every_reason_of_a_family_has_its_wire_mapping(
    reasons: type[Reason], table: dict[str, object]
) -> None:
    missing = [r.name for r in reasons if r not in table]
    assert missing == [], f"no entry in the family's error table for: {missing}"
    assert all(isinstance(key, Reason) for key in table), "table keys must be Reason members, not strings"


def test_reason_values_are_their_names() -> None:
    for reasons in (CommonReason, AghReason, TracerReason, TrenchcoatReason, *Reason.__subclasses__()):
        for member in reasons:
            assert member.value == member.name


def _error_classes() -> set[str]:
    found, todo = set(), [DomainError]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo += cls.__subclasses__()
    return found


def test_no_reason_is_raised_as_a_plain_string() -> None:
    """No domain error is made with a string literal as its reason anywhere in the server."""
    errors = _error_classes()
    offenders = []
    for path in [*ROOT.glob("service/**/*.py"), *ROOT.glob("gateway/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            name = getattr(node, "func", None)
            name = getattr(name, "id", None) or getattr(name, "attr", None)
            if isinstance(node, ast.Call) and name in errors:
                for kw in node.keywords:
                    if (
                        kw.arg == "reason"
                        and isinstance(kw.value, ast.Constant)
                        and isinstance(kw.value.value, str)
                    ):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
