"""What the gateway refuses before it builds a request, on every route:

- U+0000 in the path or the query string (PostgreSQL can neither store nor
  compare it, so a read with it would fail there and succeed on SQLite); a
  body is scanned once, so that the call chain scans the request's strings
  again only when the body may hold one (`service.rpc.limits.strings_checked`);
- a missing body on a route that needs one (`needs_body`): `curl -XPOST`
  without `-d` must not create a record. Routes whose body is all optional
  (claim-next, cancel, release and the like) keep working without one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from agentplane.v1 import options_pb2
from google.api import field_behavior_pb2

from gateway.httprule import Binding
from service.base.errors import CommonReason, FieldViolation, InvalidArgument
from service.rpc.limits import strings_unchecked

_NUL = "must not contain the character U+0000"


def nul_in_target(path_params: Mapping[str, str], query: Iterable[tuple[str, str]]) -> InvalidArgument | None:
    """The error for U+0000 in a path parameter or a query key or value, if any."""
    found = [FieldViolation(name, _NUL) for name, value in path_params.items() if "\x00" in value]
    found += [FieldViolation(key.replace("\x00", ""), _NUL) for key, value in query if "\x00" in key + value]
    if not found:
        return None
    return InvalidArgument(
        "; ".join(f"{v.field}: {v.description}" for v in found),
        reason=CommonReason.INVALID_ARGUMENT,
        violations=found,
    )


def check_body_strings(raw: bytes) -> None:
    """Have the call chain scan the request for U+0000 if the body may hold
    one: the raw bytes hold `\\u0000` whenever a string does (JSON cannot carry
    a raw NUL), so most bodies are cleared by one scan. The chain then refuses
    it in typed fields, and the domain in free-form JSON, each in the words of
    its family, before anything is stored."""
    if b"\\u0000" in raw:
        strings_unchecked()


def _required(fd: Any) -> bool:
    return field_behavior_pb2.REQUIRED in fd.GetOptions().Extensions[field_behavior_pb2.field_behavior]


@cache
def needs_body(b: Binding) -> bool:
    """Whether a call must carry a body: a PUT or PATCH (it says what to set),
    an RPC that says so (`agentplane.v1.body_required`: it creates a record),
    or a body with a required field the path does not fill."""
    if not b.body:
        return False
    return b.verb in ("PUT", "PATCH") or _marked(b) or _carries_required(b)


@cache
def refuses_empty_body(b: Binding) -> bool:
    """Whether the gateway itself refuses a call without a body: one that
    needs it, unless the check of REQUIRED fields will name what is missing
    (a `body: "*"` with required fields; a body bound to one field takes the
    empty body as that field's value, so the check would not see it missing)."""
    return needs_body(b) and not (b.body == "*" and _carries_required(b))


def _marked(b: Binding) -> bool:
    return bool(b.method.GetOptions().Extensions[options_pb2.body_required])


def _carries_required(b: Binding) -> bool:
    md: Any = b.input.DESCRIPTOR
    bound = {path.split(".")[0] for _, path in b.path_fields}
    if b.body == "*":
        return any(_required(fd) and fd.name not in bound for fd in md.fields)
    fd = md.fields_by_name[b.body]
    if _required(fd):
        return True
    sub = fd.message_type
    return sub is not None and not fd.is_repeated and any(_required(f) for f in sub.fields)
