"""Proto messages to and from JSON-ready Python values.

Encoding follows grpc-gateway's marshaler with EmitUnpopulated: every field
is present, an unset message or proto3 `optional` field is `null`, and a
member of a real oneof is present only when set. Unlike protojson, 64-bit
integers are written as JSON numbers: the hook contracts we serve use plain
numbers. One encoder is compiled per (message type, naming) and cached.
Decoding uses json_format, which accepts both proto and JSON names and
ignores unknown fields (so hooks that send extra fields keep working).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)
Encoder = Callable[[Message], dict[str, Any]]

_WKT_VALUE = "google.protobuf.Value"
_WKT_STRUCT = "google.protobuf.Struct"
_WKT_LIST = "google.protobuf.ListValue"
_WKT_TIMESTAMP = "google.protobuf.Timestamp"
_WKT_DURATION = "google.protobuf.Duration"
_WRAPPERS = {
    f"google.protobuf.{n}Value"
    for n in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String")
}


def value_to_python(v: Any) -> Any:
    kind = v.WhichOneof("kind")
    if kind == "struct_value":
        return struct_to_python(v.struct_value)
    if kind == "list_value":
        return [value_to_python(x) for x in v.list_value.values]
    if kind in (None, "null_value"):
        return None
    num = getattr(v, kind)
    if kind == "number_value" and num.is_integer() and abs(num) < 2**53:
        return int(num)
    return num


def struct_to_python(s: Any) -> dict[str, Any]:
    return {k: value_to_python(v) for k, v in s.fields.items()}


def _message_encoder(md: Any, proto_names: bool) -> Callable[[Message], Any]:
    name = md.full_name
    if name == _WKT_STRUCT:
        return struct_to_python
    if name == _WKT_VALUE:
        return value_to_python
    if name == _WKT_LIST:
        return lambda m: [value_to_python(x) for x in m.values]  # type: ignore[attr-defined]
    if name in (_WKT_TIMESTAMP, _WKT_DURATION):
        return lambda m: m.ToJsonString()  # type: ignore[attr-defined]
    if name in _WRAPPERS:
        return lambda m: m.value  # type: ignore[attr-defined]
    return encoder(md, proto_names)


def _scalar_encoder(fd: Any) -> Callable[[Any], Any] | None:
    if fd.type == FieldDescriptor.TYPE_ENUM:
        values = fd.enum_type.values_by_number
        return lambda n: values[n].name if n in values else n
    if fd.type == FieldDescriptor.TYPE_BYTES:
        return lambda b: base64.b64encode(b).decode()
    return None


def _is_proto3_optional(fd: FieldDescriptor) -> bool:
    oneof = fd.containing_oneof
    return oneof is not None and len(oneof.fields) == 1 and oneof.name == f"_{fd.name}"


@cache
def encoder(md: Any, proto_names: bool) -> Encoder:
    """A function turning messages of type `md` into dicts."""
    plan: list[tuple[str, str, str, Callable[[Any], Any] | None]] = []
    for fd in md.fields:
        key = fd.name if proto_names else fd.json_name
        is_msg = fd.type == FieldDescriptor.TYPE_MESSAGE
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            value_fd = fd.message_type.fields_by_name["value"]
            conv = (
                _message_encoder(value_fd.message_type, proto_names)
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
                    _message_encoder(fd.message_type, proto_names) if is_msg else _scalar_encoder(fd),
                )
            )
        elif fd.containing_oneof is not None and not _is_proto3_optional(fd):
            plan.append(
                (
                    "oneof",
                    fd.name,
                    key,
                    _message_encoder(fd.message_type, proto_names) if is_msg else _scalar_encoder(fd),
                )
            )
        elif is_msg or _is_proto3_optional(fd):
            conv = _message_encoder(fd.message_type, proto_names) if is_msg else _scalar_encoder(fd)
            plan.append(("nullable", fd.name, key, conv))
        else:
            plan.append(("plain", fd.name, key, _scalar_encoder(fd)))

    def encode(msg: Message) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for how, attr, key, conv in plan:
            if how == "plain":
                v = getattr(msg, attr)
                out[key] = conv(v) if conv else v
            elif how == "nullable":
                out[key] = (
                    (conv(getattr(msg, attr)) if conv else getattr(msg, attr)) if msg.HasField(attr) else None
                )
            elif how == "list":
                items = getattr(msg, attr)
                out[key] = [conv(x) for x in items] if conv else list(items)
            elif how == "map":
                items = getattr(msg, attr)
                out[key] = {k: conv(v) for k, v in items.items()} if conv else dict(items)
            elif msg.HasField(attr):  # a member of a real oneof: present only when set
                v = getattr(msg, attr)
                out[key] = conv(v) if conv else v
        return out

    return encode


def to_dict(msg: Message, *, proto_names: bool = True) -> dict[str, Any]:
    return encoder(msg.DESCRIPTOR, proto_names)(msg)


class ParseError(ValueError):
    """The JSON does not fit the message; the text says where."""


def from_dict(data: Any, cls: type[M]) -> M:
    """Parse JSON-ready data into a new message of `cls`; unknown keys are ignored."""
    msg = cls()
    try:
        json_format.ParseDict(data, msg, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError, AttributeError) as exc:
        raise ParseError(str(exc)) from exc
    return msg


def merge_dict(data: Any, msg: Message) -> None:
    """Parse JSON-ready data into an existing message (or a sub-message of one)."""
    try:
        json_format.ParseDict(data, msg, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError, AttributeError) as exc:
        raise ParseError(str(exc)) from exc
