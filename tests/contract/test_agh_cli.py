"""`agentplane tasks create|list|show` against a running server (over gRPC)."""

from __future__ import annotations

import asyncio
import json

import pytest

from agentplane_cli.main import main
from tests.conftest import Server, free_port


async def cli(server: Server, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the command in a thread (it blocks; the server runs on this loop)."""
    code = await asyncio.to_thread(main, ["tasks", "--server", server.grpc_target, *args])
    out, err = capsys.readouterr()
    return code, out, err


async def test_create_list_show(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await cli(server, capsys, "create", "Fix the build", "--priority", "high")
    assert code == 0
    assert out.startswith("Created TASK-1 ") and out.rstrip().endswith("queued")
    code, out, _ = await cli(
        server, capsys, "--json", "create", "Draft it", "--draft", "--metadata", '{"k": 1}'
    )
    draft = json.loads(out)
    assert code == 0 and draft["task"]["status"] == "draft" and draft["task"]["metadata"] == {"k": 1}
    assert "run" not in draft
    code, out, _ = await cli(server, capsys, "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["TASK", "STATUS", "PRIORITY", "SCOPE", "CREATED", "ID", "TITLE"]
    assert [line.split()[0] for line in lines[1:]] == ["TASK-2", "TASK-1"]
    assert lines[2].split()[1:3] == ["ready", "high"]
    code, out, _ = await cli(server, capsys, "--json", "list", "--status", "draft")
    assert [t["title"] for t in json.loads(out)["tasks"]] == ["Draft it"]
    task_id = json.loads((await cli(server, capsys, "--json", "list", "--priority", "high"))[1])["tasks"][0][
        "id"
    ]
    code, out, _ = await cli(server, capsys, "show", task_id)
    assert code == 0
    assert out.splitlines()[0] == "TASK-1  Fix the build"
    assert "status: ready; priority high; scope global" in out
    assert out.splitlines()[-1].split()[:2] == ["1", "queued"]
    code, out, _ = await cli(server, capsys, "--json", "show", task_id)
    assert [r["status"] for r in json.loads(out)["runs"]] == ["queued"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("show", "nope"), 1, 'agentplane tasks: task "nope" not found\n'),
        (
            ("create", "x", "--max-attempts", "11"),
            2,
            "agentplane tasks: task: validation failed: max_attempts must be between 1 and 10\n",
        ),
        (("create", "x", "--metadata", "[1]"), 2, "agentplane tasks: --metadata must be a JSON object\n"),
        (
            ("list", "--limit", "501"),
            2,
            "agentplane tasks: task: validation failed: page_size must be between 1 and 500\n",
        ),
    ],
)
async def test_errors(
    server: Server, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], code: int, message: str
) -> None:
    got, out, err = await cli(server, capsys, *args)
    assert (got, out, err) == (code, "", message)


async def test_show_takes_the_identifier_list_prints(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    await cli(server, capsys, "create", "Fix the build")
    code, out, _ = await cli(server, capsys, "list")
    assert code == 0 and out.splitlines()[1].split()[0] == "TASK-1"
    for identifier in ("TASK-1", "task-1"):
        code, out, err = await cli(server, capsys, "show", identifier)
        assert (code, err) == (0, "") and out.splitlines()[0] == "TASK-1  Fix the build"
    assert await cli(server, capsys, "show", "TASK-2") == (
        1,
        "",
        'agentplane tasks: task "TASK-2" not found\n',
    )
    # the JSON API takes it too
    resp = await server.http.get("/api/tasks/TASK-1")
    assert resp.status_code == 200 and resp.json()["task"]["identifier"] == "TASK-1"


async def test_options_go_before_or_after_the_command(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    await cli(server, capsys, "create", "Fix the build")
    code = await asyncio.to_thread(main, ["tasks", "list", "--server", server.grpc_target, "--json"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "") and [t["identifier"] for t in json.loads(out)["tasks"]] == ["TASK-1"]
    # given before the command and not after, it is kept
    code = await asyncio.to_thread(
        main, ["tasks", "--server", server.grpc_target, "--json", "show", "TASK-1"]
    )
    out, _ = capsys.readouterr()
    assert code == 0 and json.loads(out)["task"]["title"] == "Fix the build"


async def test_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    target = f"127.0.0.1:{free_port()}"
    code = await asyncio.to_thread(main, ["tasks", "--server", target, "list"])
    _, err = capsys.readouterr()
    assert code == 3 and err.startswith("agentplane tasks: ") and err.rstrip().endswith(f"({target})")
