"""`agentplane export` and `import` at their edges, on both backends: one
workspace, a seq range (the log alone), a file cut short, a log whose seqs
are taken, a line that is not JSON. Each refused import says why and exits 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.transfer_support import run_here, running, table_counts

Capture = pytest.CaptureFixture[str]
TIME = "2026-12-01T10:00:00.000001+00:00"


def entry(seq: int, workspace: str, session_id: str) -> dict[str, Any]:
    session = {"session_id": session_id, "session_name": session_id, "status": "running", "created_at": TIME}
    return {
        "entry": {
            "seq": seq,
            "event_id": f"ev-{seq}",
            "workspace": workspace,
            "type": "session.updated",
            "name": None,
            "session_id": session_id,
            "occurred_at": None,
            "recorded_at": TIME,
            "data": {"session": session},
        }
    }


def session_row(workspace: str, session_id: str) -> dict[str, Any]:
    values = {"workspace": workspace, "session_id": session_id, "session_name": session_id}
    return {
        "row": "sessions",
        "values": {**values, "status": "running", "created_at": TIME, "updated_at": TIME},
    }


def write(path: Path, *lines: dict[str, Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


HEADER = {
    "agentplane_export": 1,
    "schema": "0009",
    "workspace": None,
    "from_seq": 1,
    "to_seq": 4,
    "projections": True,
    "seq_high": 6,
    "source": "a test",
    "exported_at": TIME,
}
# Two workspaces: a (seqs 1 and 4) and b (2 and 3), a session row each.
BODY = [entry(1, "a", "s-a"), entry(2, "b", "s-b"), entry(3, "b", "s-b"), entry(4, "a", "s-a")]
ROWS = [session_row("a", "s-a"), session_row("b", "s-b")]
END = {"end": {"entries": 4, "rows": 2}}


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def test_a_workspace_and_a_seq_range(database_url: str, tmp_path: Path, capsys: Capture) -> None:
    source = write(tmp_path / "two.ndjson", HEADER, *BODY, *ROWS, END)
    code, _, err = await run_here(capsys, "import", "--database-url", database_url, str(source))
    assert code == 0, err

    only_b = tmp_path / "b.ndjson"
    code, _, err = await run_here(
        capsys, "export", "--database-url", database_url, "--workspace", "b", "-o", str(only_b)
    )
    assert code == 0 and "Exported 2 entries and 1 rows (seqs 1..4 of workspace b)" in err, err
    header, *items, end = lines_of(only_b)
    assert (header["workspace"], header["projections"], header["seq_high"]) == ("b", True, 6)
    assert [i["entry"]["seq"] for i in items if "entry" in i] == [2, 3]
    assert [(i["row"], i["values"]["session_id"]) for i in items if "row" in i] == [("sessions", "s-b")]
    assert end == {"end": {"entries": 2, "rows": 1}}

    some = tmp_path / "range.ndjson"
    argv = ["export", "--database-url", database_url, "--from-seq", "2", "--to-seq", "3", "-o", str(some)]
    code, _, err = await run_here(capsys, *argv)
    assert code == 0 and "(the log alone: a seq range carries no rows)" in err, err
    header, *items, end = lines_of(some)
    assert (header["from_seq"], header["to_seq"], header["projections"]) == (2, 3, False)
    assert [i["entry"]["event_id"] for i in items] == ["ev-2", "ev-3"]
    assert end == {"end": {"entries": 2, "rows": 0}}

    # The imported log continues after the source's high-water mark, not after its last entry.
    async with running(database_url) as http:
        resp = await http.post("/sessions", json={"session_id": "next", "session_name": "next"})
        assert resp.status_code == 200
        watched = await http.get("/v1/log:watch?after_seq=4&stop_at_end=true")
        assert [orjson.loads(line)["result"]["entry"]["seq"] for line in watched.text.splitlines()] == [7]


async def test_a_file_cut_short_imports_what_it_holds_and_the_whole_file_completes_it(
    database_url: str, tmp_path: Path, capsys: Capture
) -> None:
    cut = write(tmp_path / "cut.ndjson", HEADER, *BODY[:3])
    code, _, err = await run_here(capsys, "import", "--database-url", database_url, str(cut))
    assert code == 1 and "the file stops before its end (3 entries and 0 rows read)" in err, err
    assert table_counts(database_url)["log_entries"] == 3

    whole = write(tmp_path / "whole.ndjson", HEADER, *BODY, *ROWS, END)
    code, _, err = await run_here(capsys, "import", "--database-url", database_url, str(whole))
    assert code == 0 and "1 of 4 entries and 2 of 2 rows written" in err, err
    counts = table_counts(database_url)
    assert (counts["log_entries"], counts["sessions"]) == (4, 2)


async def test_seqs_taken_by_other_entries_are_refused_whole(
    database_url: str, tmp_path: Path, capsys: Capture
) -> None:
    async with running(database_url) as http:
        for sid in ("here-1", "here-2"):
            assert (
                await http.post("/sessions", json={"session_id": sid, "session_name": sid})
            ).status_code == 200
    before = table_counts(database_url)
    source = write(tmp_path / "two.ndjson", HEADER, *BODY, *ROWS, END)
    code, _, err = await run_here(capsys, "import", "--database-url", database_url, str(source))
    assert code == 1, err
    assert "seq 1 (entry ev-1) already belongs to entry" in err and "import into a new database" in err
    assert table_counts(database_url) == before


async def test_a_file_from_a_newer_version_is_refused(
    database_url: str, tmp_path: Path, capsys: Capture
) -> None:
    """(The format's other checks are tests/unit/test_export_format.py's.)"""
    bad = write(tmp_path / "bad.ndjson", HEADER, {"row": "no_such_table", "values": {}}, END)
    code, _, err = await run_here(capsys, "import", "--database-url", database_url, str(bad))
    assert code == 1 and "the file holds rows of table 'no_such_table'" in err, err
    newer = write(tmp_path / "newer.ndjson", {**HEADER, "schema": "9999"}, *BODY, END)
    code, _, err = await run_here(capsys, "import", "--database-url", database_url, str(newer))
    assert code == 1 and "exported at schema 9999, which this agentplane does not know" in err, err
    assert table_counts(database_url)["log_entries"] == 0
