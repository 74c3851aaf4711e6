"""The export file: NDJSON, one JSON object a line.

    {"agentplane_export": 1, "schema": "0009", "workspace": null, "from_seq": 1, "to_seq": 812, ...}
    {"entry": {"seq": 1, "event_id": "…", "workspace": "default", "type": "session.created",
               "name": null, "session_id": "abc", "occurred_at": null,
               "recorded_at": "2026-12-05T21:00:00.123456+00:00", "data": {…}}}
    …                                   every log entry in the range, in seq order, data whole
    {"row": "sessions", "values": {"workspace": "default", "session_id": "abc", …}}
    …                                   the projection rows (whole exports only), parents first
    {"end": {"entries": 812, "rows": 240}}

The closing line tells a complete file from one cut short. Entries are
written from the stored JSON text as it is (no parse and re-encode), which
is what makes an export cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from service.base.errors import InvalidArgument
from service.domain.transfer.reasons import TransferReason
from service.store.transfer.import_writes import ImportEntry
from service.store.transfer.snapshot_reads import RawEntry

VERSION = 1


@dataclass(frozen=True)
class Header:
    """What the first line says about the file."""

    schema: str | None
    workspace: str | None
    from_seq: int
    to_seq: int
    # Whether the projection rows follow the entries (a whole log, not a seq range).
    projections: bool
    # The highest seq the source ever handed out: the import's log continues after it.
    seq_high: int
    source: str
    exported_at: str

    def line(self) -> bytes:
        return orjson.dumps({"agentplane_export": VERSION, **self.__dict__}) + b"\n"


def entry_lines(page: Sequence[RawEntry]) -> bytes:
    """Entry lines, the stored data text spliced in as it is."""
    dumps = orjson.dumps
    out = []
    for seq, event_id, workspace, type, name, session_id, occurred_at, recorded_at, data in page:
        fields = dumps(
            {
                "seq": seq,
                "event_id": event_id,
                "workspace": workspace,
                "type": type,
                "name": name,
                "session_id": session_id,
                "occurred_at": occurred_at,
                "recorded_at": recorded_at,
            }
        )
        out.append(b'{"entry":' + fields[:-1] + b',"data":' + data.encode() + b"}}\n")
    return b"".join(out)


def row_line(table: str, values: dict[str, Any]) -> bytes:
    return orjson.dumps({"row": table, "values": values}) + b"\n"


def end_line(entries: int, rows: int) -> bytes:
    return orjson.dumps({"end": {"entries": entries, "rows": rows}}) + b"\n"


# ------------------------------------------------------------------ reading


@dataclass(frozen=True)
class Row:
    table: str
    values: dict[str, Any]


@dataclass(frozen=True)
class End:
    entries: int
    rows: int


Item = ImportEntry | Row | End


def bad_line(number: int, problem: str) -> InvalidArgument:
    return InvalidArgument(f"line {number}: {problem}", reason=TransferReason.EXPORT_FORMAT_INVALID)


def _object(number: int, line: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise bad_line(number, f"not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise bad_line(number, "not a JSON object")
    return value


def read_header(line: bytes) -> Header:
    value = _object(1, line)
    if value.get("agentplane_export") != VERSION:
        raise bad_line(1, f"not an agentplane export (version {VERSION}): the first line names none")
    try:
        return Header(
            schema=value.get("schema"),
            workspace=value.get("workspace"),
            from_seq=int(value["from_seq"]),
            to_seq=int(value["to_seq"]),
            projections=bool(value["projections"]),
            seq_high=int(value.get("seq_high", 0)),
            source=str(value.get("source", "")),
            exported_at=str(value.get("exported_at", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise bad_line(1, f"header without a valid {exc}") from None


def _time(text: Any) -> str:
    """An RFC 3339 time, checked and kept as written (the store converts it
    once, as its backend takes it)."""
    datetime.fromisoformat(text)
    return str(text)


def _entry(number: int, e: Any) -> ImportEntry:
    try:
        data = e["data"]
        if not isinstance(data, dict):
            raise TypeError("data is not an object")
        return (
            int(e["seq"]),
            str(e["event_id"]),
            str(e["workspace"]),
            str(e["type"]),
            e.get("name"),
            e.get("session_id"),
            e.get("occurred_at"),
            _time(e["recorded_at"]),
            data,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise bad_line(number, f"entry without a valid {exc}") from None


def read_items(lines: Iterable[bytes], first_number: int = 2) -> Iterator[Item]:
    """The items after the header, checked line by line (entries in seq order)."""
    last_seq = 0
    for number, line in enumerate(lines, first_number):
        if not line.strip():
            continue
        value = _object(number, line)
        if "entry" in value:
            entry = _entry(number, value["entry"])
            if entry[0] <= last_seq:
                raise bad_line(number, f"seq {entry[0]} after {last_seq}: entries must be in seq order")
            last_seq = entry[0]
            yield entry
        elif "row" in value and isinstance(value.get("values"), dict):
            yield Row(str(value["row"]), value["values"])
        elif isinstance(value.get("end"), dict):
            try:
                yield End(int(value["end"]["entries"]), int(value["end"]["rows"]))
            except (KeyError, TypeError, ValueError):
                raise bad_line(number, "an end line without its counts") from None
            return
        else:
            raise bad_line(number, "neither an entry, a row nor the end")
