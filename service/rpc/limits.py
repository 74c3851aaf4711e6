"""Limits every request is held to, whatever its transport or backend.

- A string field the proto bounds with `(agentplane.v1.max_bytes)` (ids and
  keys) holds at most that many UTF-8 bytes: the same figure on SQLite and
  PostgreSQL, well under PostgreSQL's index-row limit.
- No string field holds U+0000: PostgreSQL can neither store nor compare it,
  so it is refused on every backend and every route, reads included. The
  gateway refuses it in the path, query and body before it builds a request
  (gateway.input_checks), so for its calls only the bounded fields are left.

Free-form JSON (Struct, Value, ListValue, and OTLP's attribute values,
opentelemetry.proto.common.v1) is not walked here: the domain checks it
where it stores it (service.domain.validation, service.domain.telemetry). The checks run on
every call, batches of a thousand events included, so each message type gets
a quick test compiled once (does anything look wrong?); the walk that names
the fields runs only when it says yes.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from agentplane.v1 import options_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from service.base.config import Settings
from service.base.errors import CommonReason, FieldViolation, InvalidArgument
from service.domain.agh import soul
from service.domain.agh import tasks as agh_tasks
from service.domain.agh.channels import message_validation as channel_rules
from service.domain.tracer import model as tracer_model
from service.domain.trenchcoat import ingest as trenchcoat

NUL = "must not contain the character U+0000"
# The figure the protos give every id and key (`max_bytes`), as OpenAPI states it.
ID_MAX_BYTES = 256

# True within `strings_checked()`: only the bounded fields are left to check.
_strings_checked: ContextVar[bool] = ContextVar("strings_checked", default=False)


class strings_checked:
    """Within: calls are not scanned for U+0000; the gateway enters it for
    each request, as it refuses U+0000 in the path and query itself and
    scans the body (`strings_unchecked` when it holds one). A class, not a
    @contextmanager: it runs on every request, and the generator cost ~2 µs."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _strings_checked.set(True)

    def __exit__(self, *exc: object) -> None:
        _strings_checked.reset(self._token)


def strings_unchecked() -> None:
    """Within `strings_checked()`: this call's strings are scanned after all."""
    _strings_checked.set(False)


def max_bytes(fd: FieldDescriptor) -> int:
    """The field's `(agentplane.v1.max_bytes)`, 0 if it has none."""
    return int(fd.GetOptions().Extensions[options_pb2.max_bytes])


def max_items(fd: FieldDescriptor) -> int:
    """The field's `(agentplane.v1.max_items)`, 0 if it has none."""
    return int(fd.GetOptions().Extensions[options_pb2.max_items])


# Message packages holding free-form values: JSON's, and OTLP's attributes.
_FREE_FORM_PACKAGES = ("google.protobuf.", "opentelemetry.proto.common.v1.")


def _free_form(md: Any) -> bool:
    return md is None or md.full_name.startswith(_FREE_FORM_PACKAGES)


def _to_check(md: Any, nul: bool, seen: frozenset[str] = frozenset()) -> bool:
    """Whether a message type has strings to check, itself or nested (any
    string when U+0000 is looked for, else the bounded ones); recursive types
    are followed once."""
    if _free_form(md) or md.full_name in seen:
        return False
    seen = seen | {md.full_name}
    return any(
        (fd.type == FieldDescriptor.TYPE_STRING and (nul or max_bytes(fd) > 0))
        or (fd.type == FieldDescriptor.TYPE_MESSAGE and _to_check(fd.message_type, nul, seen))
        for fd in md.fields
    )


Suspect = Callable[[Any], bool]
# The quick test of each message type, by (full name, whether it looks for U+0000).
_SUSPECTS: dict[tuple[str, bool], Suspect] = {}


def _suspect(md: Any, nul: bool) -> Suspect:
    """True when a message of type `md` may break a limit: a string holds
    U+0000 (if `nul`), or holds more characters than a quarter of its limit
    (a character is 1 to 4 bytes). Straight-line code, one statement per
    field worth a look (measured per event: tracer 0.7 µs bounded fields
    only, 1.9 µs with the U+0000 scan; Trenchcoat 0.2 and 0.5 µs)."""
    found = _SUSPECTS.get((md.full_name, nul))
    if found is not None:
        return found
    env: dict[str, Any] = {"K": _SUSPECTS, "map_suspect": _map_suspect}
    lines = ["def suspect(msg):"]
    nested: list[Descriptor] = []
    for fd in md.fields:
        name, sub, limit = fd.name, fd.message_type, max_bytes(fd)
        if fd.type == FieldDescriptor.TYPE_STRING and (nul or limit):
            test = " or ".join(
                (['"\\x00" in v'] if nul else []) + ([f"len(v) > {limit // 4}"] if limit else [])
            )
            if fd.is_repeated:
                lines += [f"    for v in msg.{name}:", f"        if {test}:", "            return True"]
            else:
                lines += [f"    v = msg.{name}", f"    if {test}:", "        return True"]
        elif sub is not None and sub.GetOptions().map_entry:
            if nul and _to_check(sub, nul):  # map keys and values are never bounded
                lines += [f"    if msg.{name} and map_suspect(msg.{name}):", "        return True"]
        elif sub is not None and _to_check(sub, nul):
            nested.append(sub)
            key = (sub.full_name, nul)
            if fd.is_repeated:
                lines += [f"    c = K[{key!r}]", f"    for m in msg.{name}:", "        if c(m):"]
                lines += ["            return True"]
            else:
                lines += [f"    if msg.HasField({name!r}) and K[{key!r}](msg.{name}):", "        return True"]
    lines.append("    return False")
    exec("\n".join(lines), env)  # the source is built above from descriptor names
    suspect: Suspect = env["suspect"]
    _SUSPECTS[(md.full_name, nul)] = suspect
    for sub in nested:  # after this type is registered: a recursive type ends here
        _suspect(sub, nul)
    return suspect


def _map_suspect(mapping: Any) -> bool:
    for k, v in mapping.items():
        if "\x00" in str(k) or (isinstance(v, str) and "\x00" in v):
            return True
        if isinstance(v, Message) and not _free_form(v.DESCRIPTOR) and _suspect(v.DESCRIPTOR, True)(v):
            return True
    return False


def _check_string(value: str, limit: int, nul: bool, path: str, found: list[FieldViolation]) -> None:
    if nul and "\x00" in value:
        found.append(FieldViolation(path, NUL))
    if limit and len(value) * 4 > limit and len(value.encode()) > limit:
        found.append(FieldViolation(path, f"must be at most {limit} bytes (UTF-8)"))


def _walk(msg: Message, nul: bool, prefix: str, found: list[FieldViolation]) -> None:
    """The violations in `msg`, each named by its field path (the slow path)."""
    for fd, value in msg.ListFields():
        path, sub = prefix + fd.name, fd.message_type
        if fd.type == FieldDescriptor.TYPE_STRING:
            for i, item in enumerate(value) if fd.is_repeated else [(None, value)]:
                where = path if i is None else f"{path}[{i}]"
                _check_string(item, max_bytes(fd), nul, where, found)
        elif sub is not None and sub.GetOptions().map_entry:
            for k, v in value.items():
                if nul and ("\x00" in str(k) or (isinstance(v, str) and "\x00" in v)):
                    found.append(FieldViolation(f"{path}[{k!r}]", NUL))
                elif isinstance(v, Message) and not _free_form(v.DESCRIPTOR):
                    _walk(v, nul, f"{path}[{k!r}].", found)
        elif sub is not None and not _free_form(sub):
            for i, item in enumerate(value) if fd.is_repeated else [(None, value)]:
                _walk(item, nul, (path if i is None else f"{path}[{i}]") + ".", found)


def violations(msg: Message) -> list[FieldViolation]:
    """What in `msg` breaks a limit, each named by its field path."""
    nul = not _strings_checked.get()
    found: list[FieldViolation] = []
    if _suspect(msg.DESCRIPTOR, nul)(msg):
        _walk(msg, nul, "", found)
    return found


def check_limits(msg: Message) -> None:
    """INVALID_ARGUMENT naming every field of `msg` that holds U+0000 or is
    longer than its `max_bytes`: such a call reads and writes nothing."""
    found = violations(msg)
    if found:
        # U+0000 keeps the reason the domain's own checks of it give.
        reason = (
            CommonReason.INVALID_ARGUMENT
            if all(v.description == NUL for v in found)
            else CommonReason.FIELD_TOO_LONG
        )
        raise InvalidArgument(
            "; ".join(f"{v.field}: {v.description}" for v in found[:5]), reason=reason, violations=found
        )


def stated(settings: Settings) -> dict[str, int]:
    """The limits the server enforces beyond the protos' field options, as
    OpenAPI states them (`info.x-agentplane-limits`)."""
    return {
        "max_id_bytes": ID_MAX_BYTES,
        "max_body_bytes": settings.max_body_bytes,
        "max_tool_output_bytes": settings.max_tool_output_bytes,
        "max_trenchcoat_batch": trenchcoat.MAX_BATCH,
        "max_tracer_batch": tracer_model.MAX_EVENTS,
        "max_task_result_bytes": agh_tasks.MAX_PAYLOAD_BYTES,
        "max_channel_message_bytes": channel_rules.MAX_MESSAGE_BYTES,
        "max_soul_bytes": soul.MAX_BODY_BYTES,
    }
