"""The export file's lines: what a reader accepts, and the line it names
when it refuses (the import stops there, having written what came before)."""

from __future__ import annotations

import orjson
import pytest

from service.base.errors import InvalidArgument
from service.domain.transfer.export_format import End, Header, Row, entry_lines, read_header, read_items

HEADER = Header(
    schema="0009",
    workspace=None,
    from_seq=1,
    to_seq=2,
    projections=True,
    seq_high=2,
    source="a test",
    exported_at="2026-12-01T10:00:00+00:00",
)
TIME = "2026-12-01T10:00:00.000001+00:00"
RAW = (1, "ev-1", "default", "session.created", None, "s", None, TIME, '{"session":{"session_id":"s"}}')


def test_what_is_written_reads_back() -> None:
    lines = [HEADER.line(), *entry_lines([RAW, (2, *RAW[1:])]).splitlines(keepends=True)]
    lines += [
        orjson.dumps({"row": "sessions", "values": {"session_id": "s"}}),
        b'{"end":{"entries":2,"rows":1}}',
    ]
    assert read_header(lines[0]) == HEADER
    items = list(read_items(lines[1:]))
    when = TIME
    data = {"session": {"session_id": "s"}}
    assert items == [
        (1, "ev-1", "default", "session.created", None, "s", None, when, data),
        (2, "ev-1", "default", "session.created", None, "s", None, when, data),
        Row("sessions", {"session_id": "s"}),
        End(2, 1),
    ]


def entry(seq: int) -> bytes:
    return entry_lines([(seq, *RAW[1:])]).rstrip()


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        ([b"{not json"], "line 1: not JSON"),
        ([orjson.dumps({"rows": 1})], "line 1: not an agentplane export"),
        ([orjson.dumps({"agentplane_export": 1})], "line 1: header without a valid 'from_seq'"),
        ([HEADER.line(), b"[1, 2]"], "line 2: not a JSON object"),
        ([HEADER.line(), orjson.dumps({"entry": {"seq": 1}})], "line 2: entry without a valid 'data'"),
        ([HEADER.line(), entry(2), entry(1)], "line 3: seq 1 after 2: entries must be in seq order"),
        ([HEADER.line(), orjson.dumps({"end": {}})], "line 2: an end line without its counts"),
        ([HEADER.line(), orjson.dumps({"what": 1})], "line 2: neither an entry, a row nor the end"),
    ],
    ids=[
        "not-json",
        "no-header",
        "header-incomplete",
        "not-an-object",
        "entry-incomplete",
        "out-of-order",
        "end-incomplete",
        "unknown-line",
    ],
)
def test_bad_lines_are_refused_by_number(lines: list[bytes], problem: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        read_header(lines[0])
        list(read_items(lines[1:]))
    assert problem in str(refused.value)
    assert refused.value.reason == "EXPORT_FORMAT_INVALID"
