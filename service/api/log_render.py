"""Log rows on the wire: as WatchLog messages (gRPC) and as the NDJSON lines
of `/v1/log:watch`, each made once per row the feed shares (`cached`).

The NDJSON line is made from the row directly, not through a LogEntry and
the generic encoder: the stored `data` is already JSON text, embedded as it
is (`orjson.Fragment`), so a line costs a few microseconds. It is what the
generic path writes for the same entry (tests/unit/test_log_render.py
compares them): the fields in proto order with proto names, `recorded_at`
as RFC 3339 with 0, 3 or 6 fractional digits, and `data` with the numbers a
`google.protobuf.Struct` would carry (integral values as integers, integers
beyond 2^53 as doubles). Only the order of keys inside `data` may differ: a
Struct's map has no order, the line keeps the stored one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import orjson
from agentplane.v1 import log_pb2 as pb

from service.store.log_reads import LogRow

T = TypeVar("T")

# A JSON number in compact text that a Struct would not carry as written: a
# fraction or exponent, or 16 digits or more, after a key (`":`), a comma or
# a `[`. Strings may match too (the check runs on the whole text; times such
# as "10:30.5" do not); those rows just take the slower, exact path. One
# pattern per literal that starts it, because the engine finds a literal
# prefix fast and a character class slowly (a 323-byte row: 0.8 µs against
# 4 µs for one pattern starting with `[:,\[]`); array items only where a `[` is.
_NUMBER = r"-?[0-9](?:[0-9]{15}|[0-9]*[.eE])"
_VALUE_NUMBER = re.compile('":' + _NUMBER)
_FIRST_ITEM_NUMBER = re.compile(r"\[" + _NUMBER)
_NEXT_ITEM_NUMBER = re.compile("," + _NUMBER)
_EXACT = 2**53


def _unstruct_number(text: str) -> bool:
    return _VALUE_NUMBER.search(text) is not None or (
        "[" in text
        and (_FIRST_ITEM_NUMBER.search(text) is not None or _NEXT_ITEM_NUMBER.search(text) is not None)
    )


class Shared(Protocol):
    rendered: dict[Any, Any] | None


S = TypeVar("S", bound=Shared)


def cached(row: S, key: object, render: Callable[[S], T]) -> T:
    """`render(row)`, made once per shared row or batch of rows (those
    read for one stream alone have no `rendered` and are not kept)."""
    cache = getattr(row, "rendered", None)
    if cache is None:
        return render(row)
    found = cache.get(key, cache)
    if found is cache:
        found = cache[key] = render(row)
    return found


def _struct_number(v: Any) -> Any:
    t = type(v)
    if t is dict:
        return {k: _struct_number(x) for k, x in v.items()}
    if t is list:
        return [_struct_number(x) for x in v]
    if t is int:
        return v if -_EXACT < v < _EXACT else float(v)
    if t is float:
        return int(v) if v.is_integer() and abs(v) < _EXACT else v
    return v


def data_value(row: LogRow) -> Any:
    """The row's data as a Struct would give it back, ready for orjson."""
    text = row.data
    if text == "{}":
        return None  # an empty Struct is an unset field: null, as the generic path writes
    if not _unstruct_number(text):
        return orjson.Fragment(text)
    return _struct_number(orjson.loads(text))


def data_python(row: LogRow) -> dict[str, Any]:
    """The row's data as `struct_to_python` of its Struct gives it."""
    value = orjson.loads(row.data)
    return _struct_number(value) if _unstruct_number(row.data) else value


def datetime_json(dt: datetime) -> str:
    """What `Timestamp.FromDatetime(dt)` then `ToJsonString()` give (naive means UTC)."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    text = dt.isoformat()  # no fraction when the microseconds are 0
    us = dt.microsecond
    return text + "Z" if us % 1000 else text[:23] + "Z" if us else text + "Z"


def ndjson_line(row: LogRow) -> bytes:
    entry = {
        "seq": row.seq,
        "id": row.event_id,
        "type": row.type,
        "workspace": row.workspace,
        "session_id": row.session_id or "",
        "recorded_at": datetime_json(row.recorded_at),
        "occurred_at": row.occurred_at or "",
        "data": data_value(row),
    }
    return orjson.dumps({"result": {"entry": entry}}, option=orjson.OPT_APPEND_NEWLINE)


def ndjson_lines(rows: Sequence[LogRow]) -> bytes:
    """The NDJSON lines of `rows`, one chunk (one socket write)."""
    return b"".join([cached(r, ndjson_line, ndjson_line) for r in rows])


def response(row: LogRow) -> pb.WatchLogResponse:
    msg = pb.WatchLogResponse()
    entry = msg.entry
    entry.seq = row.seq
    entry.id = row.event_id
    entry.type = row.type
    entry.workspace = row.workspace
    entry.session_id = row.session_id or ""
    entry.occurred_at = row.occurred_at or ""
    entry.recorded_at.FromDatetime(row.recorded_at)
    entry.data.update(orjson.loads(row.data))
    return msg


def responses(rows: Sequence[LogRow]) -> list[pb.WatchLogResponse]:
    return [cached(r, response, response) for r in rows]
