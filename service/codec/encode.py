"""Proto messages to JSON-ready Python values.

Encoding follows grpc-gateway's marshaler with EmitUnpopulated: every field
is present, an unset message or proto3 `optional` field is `null`, and a
member of a real oneof is present only when set. Unlike protojson, 64-bit
integers are written as JSON numbers: the hook contracts we serve use plain
numbers. One encoder is compiled per (message type, naming) and cached.
"""

from __future__ import annotations

import base64
import keyword
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache, lru_cache
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from service.codec.free_form import (
    WKT_DURATION,
    WKT_LIST,
    WKT_STRUCT,
    WKT_TIMESTAMP,
    WKT_VALUE,
    WRAPPERS,
    list_to_python,
    struct_to_python,
    value_to_python,
)

Encoder = Callable[[Message], dict[str, Any]]

_EPOCH = datetime(1970, 1, 1)
_MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z, Timestamp's last second


@lru_cache(maxsize=4096)
def _utc_second(seconds: int) -> str:
    """A second since the epoch as RFC 3339 text without zone, cached: the
    times of a response fall in few seconds, and formatting is the costly step."""
    return (_EPOCH + timedelta(seconds=seconds)).isoformat()


def timestamp_json(ts: Any) -> str:
    """What `Timestamp.ToJsonString` returns (3, 6 or 9 fractional digits,
    as needed), several times faster. Times before 1970 or invalid ones take
    the library's path, with its errors."""
    seconds, nanos = ts.seconds, ts.nanos
    if not (0 <= seconds <= _MAX_SECONDS and 0 <= nanos < 1_000_000_000):
        return str(ts.ToJsonString())
    text = _utc_second(seconds)
    if nanos == 0:
        return text + "Z"
    if nanos % 1_000_000 == 0:
        return f"{text}.{nanos // 1_000_000:03d}Z"
    if nanos % 1000 == 0:
        return f"{text}.{nanos // 1000:06d}Z"
    return f"{text}.{nanos:09d}Z"


def _message_encoder(md: Any, proto_names: bool, omit_unset: bool = False) -> Callable[[Message], Any]:
    name = md.full_name
    if name == WKT_STRUCT:
        return struct_to_python
    if name == WKT_VALUE:
        return value_to_python
    if name == WKT_LIST:
        return list_to_python
    if name == WKT_TIMESTAMP:
        return timestamp_json
    if name == WKT_DURATION:
        return lambda m: m.ToJsonString()  # type: ignore[attr-defined]
    if name in WRAPPERS:
        return lambda m: m.value  # type: ignore[attr-defined]
    return encoder(md, proto_names, omit_unset)


def _scalar_encoder(fd: Any) -> Callable[[Any], Any] | None:
    if fd.type == FieldDescriptor.TYPE_ENUM:
        values = fd.enum_type.values_by_number
        return lambda n: values[n].name if n in values else n
    if fd.type == FieldDescriptor.TYPE_BYTES:
        return lambda b: base64.b64encode(b).decode()
    return None


def is_proto3_optional(fd: FieldDescriptor) -> bool:
    oneof = fd.containing_oneof
    return oneof is not None and len(oneof.fields) == 1 and oneof.name == f"_{fd.name}"


@cache
def _explicit_json_names(file: Any) -> frozenset[str]:
    """Full names of the file's fields whose proto sets `json_name` itself
    (protoc records json_name in the descriptor only then)."""
    fdp = descriptor_pb2.FileDescriptorProto.FromString(file.serialized_pb)
    found: set[str] = set()
    pending = [(fdp.package, m) for m in fdp.message_type]
    while pending:
        scope, m = pending.pop()
        name = f"{scope}.{m.name}" if scope else m.name
        found.update(f"{name}.{f.name}" for f in m.field if f.HasField("json_name"))
        pending += [(name, n) for n in m.nested_type]
    return frozenset(found)


def field_key(fd: Any, proto_names: bool) -> str:
    """A field's JSON key: its proto name in a snake_case family, else its JSON
    name; a json_name the proto sets is kept in both (a contract's own name)."""
    if not proto_names or fd.full_name in _explicit_json_names(fd.file):
        return fd.json_name
    return fd.name


@cache
def encoder(md: Any, proto_names: bool, omit_unset: bool = False) -> Encoder:
    """A function turning messages of type `md` into dicts. `omit_unset`: leave
    unset messages and `optional` fields out instead of writing null."""
    plan: list[tuple[str, str, str, Callable[[Any], Any] | None]] = []
    for fd in md.fields:
        key = field_key(fd, proto_names)
        is_msg = fd.type == FieldDescriptor.TYPE_MESSAGE
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            value_fd = fd.message_type.fields_by_name["value"]
            conv = (
                _message_encoder(value_fd.message_type, proto_names, omit_unset)
                if value_fd.type == FieldDescriptor.TYPE_MESSAGE
                else _scalar_encoder(value_fd)
            )
            plan.append(("map", fd.name, key, conv))
        elif fd.is_repeated:
            plan.append(
                (
                    "list",
                    fd.name,
                    key,
                    _message_encoder(fd.message_type, proto_names, omit_unset)
                    if is_msg
                    else _scalar_encoder(fd),
                )
            )
        elif fd.containing_oneof is not None and not is_proto3_optional(fd):
            plan.append(
                (
                    "oneof",
                    fd.name,
                    key,
                    _message_encoder(fd.message_type, proto_names, omit_unset)
                    if is_msg
                    else _scalar_encoder(fd),
                )
            )
        elif is_msg or is_proto3_optional(fd):
            conv = (
                _message_encoder(fd.message_type, proto_names, omit_unset) if is_msg else _scalar_encoder(fd)
            )
            # omitted when unset, as a oneof member is
            plan.append(("oneof" if omit_unset else "nullable", fd.name, key, conv))
        else:
            plan.append(("plain", fd.name, key, _scalar_encoder(fd)))

    return _straight_line(plan)


def _straight_line(plan: list[tuple[str, str, str, Callable[[Any], Any] | None]]) -> Encoder:
    """The plan as straight-line code, one statement per field: 3-4x faster
    than a loop that dispatches on each field's kind."""
    env: dict[str, Any] = {}
    lines = ["def encode(msg):", "    out = {}"]
    for i, (how, attr, key, conv) in enumerate(plan):
        k = repr(key)
        value = f"msg.{attr}" if not keyword.iskeyword(attr) else f"getattr(msg, {attr!r})"
        converted = value
        if conv is not None:
            env[f"c{i}"] = conv
            converted = f"c{i}({value})"
        if how == "plain":
            lines.append(f"    out[{k}] = {converted}")
        elif how == "nullable":
            lines.append(f"    out[{k}] = {converted} if msg.HasField({attr!r}) else None")
        elif how == "list":
            lines.append(
                f"    out[{k}] = [c{i}(x) for x in {value}]" if conv else f"    out[{k}] = list({value})"
            )
        elif how == "map":
            each = f"{{k: c{i}(v) for k, v in {value}.items()}}"
            lines.append(f"    out[{k}] = {each}" if conv else f"    out[{k}] = dict({value})")
        else:  # a member of a real oneof (or omitted when unset): present only when set
            lines.append(f"    if msg.HasField({attr!r}):")
            lines.append(f"        out[{k}] = {converted}")
    lines.append("    return out")
    exec("\n".join(lines), env)  # the source is built above from descriptor names
    encode: Encoder = env["encode"]
    return encode


def to_dict(msg: Message, *, proto_names: bool = True, omit_unset: bool = False) -> dict[str, Any]:
    return encoder(msg.DESCRIPTOR, proto_names, omit_unset)(msg)
