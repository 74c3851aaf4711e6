"""The README's examples, run as a newcomer runs them: every ```sh and
```python block, in the order written, against a fresh `agentplane serve`
(a real process on the default per-user SQLite database), with the
`agentplane` commands on PATH as `. .venv/bin/activate` puts them.

A block that cannot run here says so in the README, on the line before it:
`<!-- not run: REASON -->`. Shell variables set by one block are kept for the
next ones (the examples build on each other); `curl` fails on any HTTP error
status, so an example that answers 401 or 404 fails the test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.test_serve_process import serve

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
_FENCE = re.compile(r"^```(\w*)\s*$")
_SKIP = re.compile(r"^<!-- not run: (.+) -->$")
_ASSIGNED = re.compile(r"(?:^|;)\s*([A-Za-z_][A-Za-z0-9_]*)=", re.MULTILINE)

# curl as the README's readers see it, except that an HTTP error status is a
# failure; 28 (--max-time reached) is how a follow example ends.
_PRELUDE = """set -eo pipefail
curl() { local rc=0; command curl --fail-with-body "$@" || rc=$?; [ "$rc" -eq 28 ] && rc=0; return "$rc"; }
[ -f "$README_STATE" ] && source "$README_STATE"
"""


@dataclass
class Block:
    language: str
    line: int
    text: str
    skip: str | None


def blocks(markdown: str) -> list[Block]:
    """The fenced sh and python blocks, with the reason given to skip each one."""
    found: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m or not m.group(1):
            i += 1
            continue
        start, language = i, m.group(1)
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        skip = _SKIP.match(before.strip())
        if language in ("sh", "python"):
            found.append(
                Block(language, start + 1, "\n".join(lines[start + 1 : end]), skip and skip.group(1))
            )
        i = end + 1
    return found


def _local(text: str, http_port: int, grpc_port: int) -> str:
    """The block aimed at this test's server instead of the default ports."""
    for host in ("localhost", "127.0.0.1"):
        text = text.replace(f"{host}:8765", f"{host}:{http_port}").replace(
            f"{host}:50051", f"{host}:{grpc_port}"
        )
    return text


def test_every_block_is_run_or_says_why_not() -> None:
    found = blocks(README.read_text())
    assert sum(b.skip is None for b in found) >= 10, "the README's examples are not being collected"
    for b in found:
        assert b.skip is None or len(b.skip) > 10, f"README line {b.line}: say why the block is not run"


def test_readme_examples_run_in_order(tmp_path: Path) -> None:
    http_port, grpc_port = free_port(), free_port()
    home = tmp_path / "home"
    home.mkdir()
    # The examples run where a newcomer stands: beside the checkout's .venv.
    workdir = tmp_path / "checkout"
    workdir.mkdir()
    (workdir / ".venv").symlink_to(Path(sys.executable).parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTPLANE_") and k != "VIRTUAL_ENV"}
    env |= {
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "AGENTPLANE_HTTP_PORT": str(http_port),
        "AGENTPLANE_GRPC_PORT": str(grpc_port),
        "AGENTPLANE_URL": f"http://127.0.0.1:{http_port}",
        "README_STATE": str(tmp_path / "state.sh"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    database = home / ".local" / "share" / "agentplane" / "agentplane.db"
    with serve(workdir, "", health=f"http://127.0.0.1:{http_port}/healthz", env=env) as proc:
        assert database.exists(), "the server did not use the per-user data directory"
        for block in blocks(README.read_text()):
            if block.skip is not None:
                continue
            code = _local(block.text, http_port, grpc_port)
            if block.language == "python":
                run = subprocess.run(
                    [sys.executable, "-c", code], cwd=workdir, env=env, capture_output=True, timeout=60
                )
            else:
                names = sorted(set(_ASSIGNED.findall(code)))
                keep = f'\ndeclare -p {" ".join(names)} > "$README_STATE"\n' if names else "\n"
                run = subprocess.run(
                    ["bash", "-c", _PRELUDE + code + keep],
                    cwd=workdir,
                    env=env,
                    capture_output=True,
                    timeout=60,
                )
            if run.returncode != 0:
                pytest.fail(
                    f"README line {block.line} ({block.language}) failed with {run.returncode}:\n"
                    f"{block.text}\n--- stdout\n{run.stdout.decode()[-3000:]}\n--- stderr\n"
                    f"{run.stderr.decode()[-3000:]}"
                )
        assert proc.poll() is None, "the server died while the examples ran"
