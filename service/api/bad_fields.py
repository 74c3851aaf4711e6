"""Every offending field of a request body the JSON decoder refused.

A value of the wrong type stops decoding, so the service's own checks
(missing fields, enums, formats) never see the body. For the methods in
CHECKS, the body is decoded again without the wrongly typed values and the
service's checks run on what is left, without writing, so one answer names
every offending field of whatever kind."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from typing import Any

from agentplane.v1 import trenchcoat_pb2
from google.protobuf.message import Message

from service.api.trenchcoat import raw_event
from service.base.errors import FieldViolation
from service.codec import ParseError, from_dict, type_violations
from service.domain.trenchcoat import ingest as trenchcoat

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _trenchcoat_batch(req: Any) -> list[FieldViolation]:
    return trenchcoat.violations([raw_event(e) for e in req.events])


# method path -> the service's checks of a decoded request (pure: no writes)
CHECKS: dict[str, Callable[[Any], list[FieldViolation]]] = {
    f"/{trenchcoat_pb2.DESCRIPTOR.services_by_name['TrenchcoatService'].full_name}/IngestTrenchcoatEvents": (
        _trenchcoat_batch
    ),
}


def _without(data: Any, paths: Sequence[str]) -> Any:
    """A copy of `data` without the values at `paths` (a list item becomes {},
    so the indices of the others stay)."""
    out = copy.deepcopy(data)
    for path in paths:
        steps = [name or int(index) for name, index in _STEP.findall(path)]
        node = out
        for step in steps[:-1]:
            node = node[step] if isinstance(node, (dict, list)) else None
        last = steps[-1] if steps else None
        if isinstance(node, dict) and isinstance(last, str):
            node.pop(last, None)
        elif isinstance(node, list) and isinstance(last, int) and last < len(node):
            node[last] = {}
    return out


def _item(path: str) -> int:
    """The list index a path starts with (its item), -1 for none: the answer's order."""
    found = re.search(r"\[(\d+)\]", path)
    return int(found.group(1)) if found else -1


def every_violation(method: str, data: Any, cls: type[Message]) -> list[tuple[str, str]]:
    """(path, what is wrong) for every offending field: the wrongly typed
    values, then by item what the service's checks find in the rest."""
    found = type_violations(data, cls)
    check = CHECKS.get(method)
    if check is None or not found:
        return found
    try:
        rest = from_dict(_without(data, [path for path, _ in found]), cls)
    except ParseError:
        return found
    typed = [path for path, _ in found]
    more = [
        (v.field, v.description)
        for v in check(rest)
        if not any(v.field == p or v.field.startswith((f"{p}.", f"{p}[")) for p in typed)
    ]
    return sorted(found + more, key=lambda v: _item(v[0]))
