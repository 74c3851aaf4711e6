"""Secrets redacted from every write before a servicer sees it (AGENTPLANE_REDACT).

One place for every family: the call chain hands each write RPC's request
here, and every free-text string in it (titles, names, bodies, summaries,
messages, souls, rule texts, and whatever later features add) and every
free-form JSON value (Struct, Value, ListValue: metadata, tool input and
output, results) goes through `service.domain.secrets.redact`, in place,
before anything can be stored. What to walk is worked out once per message
type from its descriptor.

Left as sent, because they are not free text:
- identifiers and references (`id`, `*_id`, `*_ids`, `channel`,
  `workspace`, `agent_name`, `idempotency_key`): keys that must round-trip
  exactly; a redacted one would name another record, or none;
- `claim_token_hash`, the lease proof a caller presents, compared and never
  shown;
- times (`timestamp`, `ts`, `created_at`), which are validated formats.
Closed vocabularies (kinds, lanes, statuses, scopes) are walked like text:
a valid value never looks like a secret, and a clean text costs one lookup.

A write RPC is any RPC but a read (bound to GET, or, without an HTTP
binding, needing a `read:` scope): reads' filters and search texts are left
alone, and an RPC of a new kind is redacted. No request carries an API key
to store (the server makes new keys).
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from functools import cache
from typing import Any

from agentplane.v1 import options_pb2
from google.api import annotations_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message

from service.codec import (
    NOT_KEPT,
    free_form,
    keep_free_form_value,
    list_to_python,
    merge_dict,
    otlp_values,
    struct_to_python,
    value_to_python,
)
from service.domain.secrets import redact, redact_text
from service.rpc.dispatch import Rewriter
from service.rpc.service_config import config_scope

_NOT_TEXT = frozenset(
    {"id", "channel", "workspace", "agent_name", "idempotency_key", "claim_token_hash"}
    | {"timestamp", "ts", "created_at"}
)
_FREE_FORM: dict[str, Callable[[Any], Any]] = {
    "google.protobuf.Struct": struct_to_python,
    "google.protobuf.Value": value_to_python,
    "google.protobuf.ListValue": list_to_python,
}
# OTLP's free-form values (opentelemetry.proto.common.v1): attributes are
# key-value lists, as JSON objects are, so redacted the same way: keys kept,
# string values redacted, nested lists and maps followed. An export carries
# ~10,000 of them: they are converted once (service.codec.otlp_values) and
# redacted as Python values, which the servicer then reads.
_OTLP_ANY_VALUE = "opentelemetry.proto.common.v1.AnyValue"
_OTLP_KEY_VALUE = "opentelemetry.proto.common.v1.KeyValue"


def is_free_text(fd: FieldDescriptor) -> bool:
    """Whether a string field holds free text (see the module's docstring)."""
    return fd.name not in _NOT_TEXT and not fd.name.endswith(("_id", "_ids"))


# A step of a message type's walk: (how, field name, the sub-walk or the
# free-form reader).
_TEXT, _TEXTS, _JSON, _JSONS, _MESSAGE, _MESSAGES, _TEXT_MAP, _MESSAGE_MAP, _ANY, _KEY_VALUES = range(10)
Walk = list[tuple[int, str, Any]]


def _walk(md: Descriptor, walks: dict[str, Walk]) -> Walk:
    """The steps for a message type (empty: nothing in it to redact).
    Recursive types share their walk through `walks`."""
    found = walks.get(md.full_name)
    if found is not None:
        return found
    steps: Walk = []
    walks[md.full_name] = steps
    for fd in md.fields:
        sub = fd.message_type
        if sub is not None and sub.GetOptions().map_entry:
            value = sub.fields_by_name["value"]
            if value.type == FieldDescriptor.TYPE_STRING and is_free_text(fd):
                steps.append((_TEXT_MAP, fd.name, None))
            elif value.message_type is not None and _walk(value.message_type, walks):
                steps.append((_MESSAGE_MAP, fd.name, walks[value.message_type.full_name]))
        elif fd.type == FieldDescriptor.TYPE_STRING:
            if is_free_text(fd):
                steps.append((_TEXTS if fd.is_repeated else _TEXT, fd.name, None))
        elif sub is not None and sub.full_name in _FREE_FORM:
            steps.append((_JSONS if fd.is_repeated else _JSON, fd.name, _FREE_FORM[sub.full_name]))
        elif sub is not None and sub.full_name == _OTLP_KEY_VALUE and fd.is_repeated:
            steps.append((_KEY_VALUES, fd.name, None))
        elif sub is not None and sub.full_name == _OTLP_ANY_VALUE and not fd.is_repeated:
            steps.append((_ANY, fd.name, None))
        elif sub is not None and not sub.full_name.startswith("google.protobuf."):
            inner = _walk(sub, walks)
            steps.append((_MESSAGES if fd.is_repeated else _MESSAGE, fd.name, inner))
    # a sub-walk may still be filling (a recursive type): drop empty ones at use
    return steps


@cache
def _message_walk(md: Descriptor) -> Walk:
    return _walk(md, {})


def _json(m: Message, read: Callable[[Any], Any]) -> None:
    """A Struct, Value or ListValue (`read` gives its JSON): its JSON
    redacted, kept (see protojson.keeping_free_form) or written back when
    something changed."""
    value = read(m)
    new = redact(value)
    if new is value:
        return
    if free_form(m) is not NOT_KEPT:
        keep_free_form_value(m, new)
    else:
        m.Clear()
        merge_dict(new, m)


def _any_value(v: Any) -> None:
    """An OTLP AnyValue: its string redacted, its lists and maps followed."""
    kind = v.WhichOneof("value")
    if kind == "string_value":
        text = v.string_value
        new = redact_text(text)
        if new is not text:
            v.string_value = new
    elif kind == "array_value":
        for item in v.array_value.values:
            _any_value(item)
    elif kind == "kvlist_value":
        _proto_key_values(v.kvlist_value.values)


def _strings(value: Any) -> Any:
    """`value` with every string redacted (keys kept); the same object if none changed."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        items = [_strings(item) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if not isinstance(value, dict):
        return value
    changed: dict[str, Any] | None = None
    for key, item in value.items():
        if type(item) is str:  # most values: inline
            new = redact_text(item)
        elif isinstance(item, dict | list):
            new = _strings(item)
        else:
            continue
        if new is not item:
            changed = changed if changed is not None else dict(value)
            changed[key] = new
    return value if changed is None else changed


def _key_values(kvs: Any) -> None:
    values = otlp_values.attributes(kvs)
    new = _strings(values)
    if new is not values:  # rare: a secret; the message is changed too
        otlp_values.remember(kvs, new)
        _proto_key_values(kvs)


def _proto_key_values(kvs: Any) -> None:
    for kv in kvs:
        v = kv.value
        if v.WhichOneof("value") == "string_value":
            text = v.string_value
            new = redact_text(text)
            if new is not text:
                v.string_value = new
        else:
            _any_value(v)


def _redact(msg: Any, steps: Walk) -> None:
    for how, name, inner in steps:
        if how == _KEY_VALUES:
            _key_values(getattr(msg, name))
        elif how == _ANY:
            if msg.HasField(name):
                _any_value(getattr(msg, name))
        elif how == _TEXT:
            text = getattr(msg, name)
            if text:
                new = redact_text(text)
                if new is not text:
                    setattr(msg, name, new)
        elif how == _JSON:
            if msg.HasField(name):
                _json(getattr(msg, name), inner)
        elif how == _MESSAGES:
            if inner:
                for item in getattr(msg, name):
                    _redact(item, inner)
        elif how == _MESSAGE:
            if inner and msg.HasField(name):
                _redact(getattr(msg, name), inner)
        elif how == _TEXTS:
            texts = getattr(msg, name)
            for i, text in enumerate(texts):
                new = redact_text(text)
                if new is not text:
                    texts[i] = new
        elif how == _JSONS:
            for item in getattr(msg, name):
                _json(item, inner)
        elif how == _TEXT_MAP:
            entries = getattr(msg, name)
            new_map = redact(dict(entries))
            for key, text in new_map.items():
                if entries[key] != text:
                    entries[key] = text
        else:  # _MESSAGE_MAP
            if inner:
                entries = getattr(msg, name)
                for key in entries:
                    _redact(entries[key], inner)


def is_write(md: MethodDescriptor) -> bool:
    """Whether a request of this RPC may be stored: any RPC but a read, which
    is bound to GET, or has no binding and needs a `read:` scope (in doubt,
    redact: a read's request stores nothing, so redacting it costs little)."""
    options = md.GetOptions()
    scope = options.Extensions[options_pb2.required_scope] or config_scope(md)
    verb = options.Extensions[annotations_pb2.http].WhichOneof("pattern")
    if scope.startswith("write:"):
        return True
    return not scope.startswith("read:") if verb is None else verb != "get"


# Each walk compiled to straight-line code, by id of its (cached, never freed) steps.
_COMPILED: dict[int, Callable[[Any], None]] = {}


def _compiled(steps: Walk) -> Callable[[Any], None]:
    """`_redact(msg, steps)` as one function with a statement per step: the
    common steps (a text, a free-form value, a nested message) inline, the
    others through `_redact`. Every write runs it, so the loop over steps and
    its branches (~2 µs a runtime event) are worth removing."""
    found = _COMPILED.get(id(steps))
    if found is not None:
        return found
    env: dict[str, Any] = {"redact_text": redact_text, "_json": _json, "_redact": _redact, "C": _COMPILED}
    lines = ["def redact_message(msg):"]
    for i, (how, name, inner) in enumerate(steps):
        env[f"S{i}"], env[f"I{i}"] = [(how, name, inner)], inner
        if how == _TEXT:
            lines += [
                f"    t = msg.{name}" if not keyword.iskeyword(name) else f"    t = getattr(msg, {name!r})",
                "    if t:",
                "        n = redact_text(t)",
                "        if n is not t:",
                f"            setattr(msg, {name!r}, n)",
            ]
        elif how == _JSON:
            lines.append(f"    if msg.HasField({name!r}): _json(getattr(msg, {name!r}), I{i})")
        elif how == _MESSAGE and inner:
            lines.append(f"    if msg.HasField({name!r}): C[{id(inner)}](getattr(msg, {name!r}))")
        elif how != _MESSAGE:
            lines.append(f"    _redact(msg, S{i})")
    lines.append("    return None")
    exec("\n".join(lines), env)
    _COMPILED[id(steps)] = env["redact_message"]
    for how, _, inner in steps:  # nested walks after this one: recursive types end here
        if how == _MESSAGE and inner:
            _compiled(inner)
    return _COMPILED[id(steps)]


@cache
def _method_walk(md: MethodDescriptor) -> Callable[[Any], None] | None:
    steps = _message_walk(md.input_type) if is_write(md) else []
    return _compiled(steps) if steps else None


def redact_request(md: MethodDescriptor, request: Message) -> None:
    """Redact, in place, the free text of a write RPC's request."""
    redact_message = _method_walk(md)
    if redact_message is not None:
        redact_message(request)


def rewriters(enabled: bool) -> list[Rewriter]:
    """The call chain's request rewriters for AGENTPLANE_REDACT."""
    return [redact_request] if enabled else []
