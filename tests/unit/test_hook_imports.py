"""The hook commands start fast: `agentplane hook` and `agentplane-hook` run
on every event of a coding agent, so neither they nor the `agentplane`
command's module may import the server's or the client's heavy packages."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    *("grpc", "google.protobuf", "sqlalchemy", "fastapi", "pydantic", "uvicorn", "asyncio", "agentplane.v1"),
    # the standard library's slow imports, replaced on the hook path
    *("typing", "dataclasses", "http.client", "email", "ssl", "urllib", "uuid", "inspect"),
)


def test_the_hook_path_imports_nothing_heavy() -> None:
    # (modules Python loads at start-up, e.g. for an editable install, do not count)
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import agentplane_cli.main, agentplane_client.hooks.cli, agentplane_client.hooks.run\n"
        "import agentplane_client.redaction\n"
        "new = set(sys.modules) - before\n"
        f"print(sorted(m for m in new if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
