"""Free-form JSON (Struct, Value and ListValue fields) as Python values, and
kept as parsed for requests served in this process (`keeping_free_form`)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

WKT_VALUE = "google.protobuf.Value"
WKT_STRUCT = "google.protobuf.Struct"
WKT_LIST = "google.protobuf.ListValue"
WKT_TIMESTAMP = "google.protobuf.Timestamp"
WKT_DURATION = "google.protobuf.Duration"
WRAPPERS = {
    f"google.protobuf.{n}Value"
    for n in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String")
}


# Free-form JSON kept as parsed. A request served in this process need not
# turn each JSON object into a Struct (a Python call per key) only for the
# servicer to turn it back into the same dict: within `keeping_free_form()`,
# `from_dict(..., keep_free_form=True)` sets a singular Struct, Value or
# ListValue field present but empty and remembers the parsed value, keyed by
# the sub-message (kept alive by the table, so the runtime hands out that
# same object for the field); `free_form` and every reader here
# (struct_to_python, value_to_python, to_dict) return it. The JSON is still
# checked as decoding checks it (shape, depth). Only requests are decoded
# so: a servicer reads its request, but may copy the messages it builds.
kept_table: ContextVar[dict[int, tuple[Message, Any]] | None] = ContextVar("protojson_kept", default=None)
# The table a running `from_dict(..., keep_free_form=True)` fills (codec.decode).
keep_into: ContextVar[dict[int, tuple[Message, Any]] | None] = ContextVar("protojson_keep_into", default=None)


class _Keeping:
    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = kept_table.set({})

    def __exit__(self, *exc: object) -> None:
        kept_table.reset(self._token)


def keeping_free_form() -> _Keeping:
    """Within: requests decoded with `keep_free_form` keep their free-form
    JSON as parsed, and the readers here return it. Only for a request that
    stays in this process and is read within: serialised, copied or sent
    on, it carries empty free-form fields."""
    return _Keeping()


NOT_KEPT = object()


def free_form(m: Message) -> Any:
    """The JSON kept for the Struct, Value or ListValue message `m`, or
    NOT_KEPT (see `keeping_free_form`)."""
    kept = kept_table.get()
    if kept:
        hit = kept.get(id(m))
        if hit is not None and hit[0] is m:
            return hit[1]
    return NOT_KEPT


def keep_free_form_value(m: Message, value: Any) -> None:
    """Replace the JSON kept for `m` (a request rewriter's change, such as
    redaction): the readers here return `value` from now on."""
    kept = kept_table.get()
    if kept is None:
        raise RuntimeError("not within keeping_free_form()")
    kept[id(m)] = (m, value)


def value_to_python(v: Any) -> Any:
    found = free_form(v)
    return _value_py(v) if found is NOT_KEPT else found


def struct_to_python(s: Any) -> dict[str, Any]:
    found = free_form(s)
    return _struct_py(s) if found is NOT_KEPT else found


def list_to_python(lv: Any) -> list[Any]:
    found = free_form(lv)
    return [_value_py(x) for x in lv.values] if found is NOT_KEPT else found


def _value_py(v: Any) -> Any:
    # The kinds by how often payloads hold them; each read by its own attribute.
    kind = v.WhichOneof("kind")
    if kind == "string_value":
        return v.string_value
    if kind == "number_value":
        num = v.number_value
        return int(num) if num.is_integer() and abs(num) < 2**53 else num
    if kind == "bool_value":
        return v.bool_value
    if kind == "struct_value":
        return _struct_py(v.struct_value)
    if kind == "list_value":
        return [_value_py(x) for x in v.list_value.values]
    return None


def _struct_py(s: Any) -> dict[str, Any]:
    # By key: the map's items() goes through a Python ABC, twice as slow.
    fields = s.fields
    return {k: _value_py(fields[k]) for k in fields}


def fill_free_form() -> None:
    """Write the free-form JSON kept in this context into its (empty) messages,
    so that a request decoded with `keep_free_form` serialises whole, to the
    same bytes as the request sent over gRPC (to compare a resend with it).
    The readers here go on returning the kept JSON."""
    kept = kept_table.get()
    for m, value in kept.values() if kept else ():
        if m.ByteSize() == 0 and value not in ({}, []):
            json_format.ParseDict(value, m)
