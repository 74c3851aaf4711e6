"""OTLP attribute lists (opentelemetry.proto.common.v1 KeyValue, AnyValue) as
Python values, converted once per call.

An OTLP export carries ~20 attributes per record, ~10,000 per export, and two
steps of a call read every one: redaction (service.rpc.redaction) and the
servicer that hands them to the domain. Within `converting()` (the call
chain opens it for each unary call) the first reader converts a list and
the table keeps the result, keyed by the repeated field (kept alive by the
table, so the runtime hands out that same object for it); redaction replaces
it with its redacted copy (`remember`), and the servicer reads that. Outside
it, every read converts.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

_table: ContextVar[dict[int, tuple[Any, dict[str, Any]]] | None] = ContextVar("otlp_values", default=None)


class _Converting:
    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _table.set({})

    def __exit__(self, *exc: object) -> None:
        _table.reset(self._token)


def converting() -> _Converting:
    return _Converting()


def value_of(v: Any) -> Any:
    """An AnyValue as a JSON value (bytes as hex, as OTLP JSON writes ids)."""
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind == "int_value":
        return v.int_value
    if kind == "double_value":
        return v.double_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "array_value":
        return [value_of(item) for item in v.array_value.values]
    if kind == "kvlist_value":
        return convert(v.kvlist_value.values)
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return None


def convert(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:
        v = kv.value
        # Most attributes are non-empty strings (Claude Code sends even numbers
        # as text): a oneof's unset members read as "", so a non-empty
        # string_value is the value, without asking which member is set.
        text = v.string_value
        out[kv.key] = text if text else value_of(v)
    return out


def attributes(kvs: Any) -> dict[str, Any]:
    """A KeyValue list as a dict (the last value of a repeated key wins)."""
    table = _table.get()
    if table is None:
        return convert(kvs)
    hit = table.get(id(kvs))
    if hit is not None and hit[0] is kvs:
        return hit[1]
    values = convert(kvs)
    table[id(kvs)] = (kvs, values)
    return values


def remember(kvs: Any, values: dict[str, Any]) -> bool:
    """Make `values` what `attributes(kvs)` returns from now on; False when no
    table is open (the caller must then change the message itself)."""
    table = _table.get()
    if table is None:
        return False
    table[id(kvs)] = (kvs, values)
    return True
