"""`agentplane keys` against the configured database, and `agentplane serve`
refusing to run open beyond loopback."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from agentplane_cli.main import main
from service.base.config import Settings
from service.store.database import migrate, normalize_url
from service.store.tables import api_keys
from tests.auth_support import with_keys
from tests.conftest import Server

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(database_url: str, capsys: pytest.CaptureFixture[str]) -> Run:
    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["keys", "--database-url", database_url, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def stored_hashes(database_url: str) -> list[str]:
    engine = create_engine(normalize_url(database_url))
    try:
        with engine.connect() as conn:
            return [r.key_hash for r in conn.execute(select(api_keys.c.key_hash))]
    finally:
        engine.dispose()


def test_create_list_revoke(cli: Run, database_url: str) -> None:
    code, out, err = cli(
        "create", "--name", "hooks", "--scopes", "write:events, read:events", "--expires-in", "30d"
    )
    assert (code, err) == (0, "")
    lines = out.splitlines()
    key = lines[-1]  # the key is the last line
    assert key.startswith("ap_") and len(key) == 43 and key.isascii()
    key_id = lines[0].split()[3]
    assert lines[0] == f"Created API key {key_id} (hooks) in workspace default"
    assert lines[1].startswith("scopes: write:events, read:events; expires: ")
    # only the SHA-256 is stored
    assert stored_hashes(database_url) == [hashlib.sha256(key.encode()).hexdigest()]

    code, out, _ = cli("create", "--name", "ops", "--scopes", "admin", "--workspace", "team-b")
    assert code == 0
    code, out, _ = cli("list")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == [
        "KEY",
        "ID",
        "NAME",
        "WORKSPACE",
        "SCOPES",
        "PREFIX",
        "CREATED",
        "EXPIRES",
        "STATE",
    ]
    assert [r.split()[1:4] for r in rows] == [
        ["hooks", "default", "write:events,read:events"],
        ["ops", "team-b", "admin"],
    ]
    assert key not in out and key[:11] in out
    code, out, _ = cli("list", "--workspace", "team-b")
    assert len(out.splitlines()) == 2

    code, out, _ = cli("revoke", key_id)
    assert code == 0 and out.startswith(f"Revoked {key_id} (hooks, workspace default)")
    code, out, _ = cli("list", "--workspace", "default")
    assert out.splitlines()[1].split()[-2] == "revoked"
    assert cli("revoke", key_id)[0] == 0  # again: a no-op


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["create", "--name", "x", "--scopes", "root"], 2, "scopes[0]: unknown scope 'root'"),
        (["create", "--name", "x", "--scopes", ","], 2, "scopes: is required"),
        (["create", "--name", " ", "--scopes", "admin"], 2, "name: is required"),
        (["create", "--name", "x", "--scopes", "admin", "--workspace", "a b"], 2, "workspace: must be"),
        (
            ["create", "--name", "x", "--scopes", "admin", "--expires-in", "soon"],
            2,
            "'soon' is not a duration",
        ),
        (
            ["create", "--name", "x", "--scopes", "admin", "--expires-in", "0d"],
            2,
            "expires_in: must be positive",
        ),
        (["revoke", "key_nope"], 1, "API key key_nope not found"),
    ],
)
def test_bad_input(cli: Run, database_url: str, argv: list[str], code: int, message: str) -> None:
    migrate(database_url)  # a server's database (revoke and list never create one)
    result, out, err = cli(*argv)
    assert (result, out) == (code, "")
    assert err.startswith("agentplane keys: ") and message in err, err
    assert stored_hashes(database_url) == []


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_keys(settings)


async def test_a_cli_key_on_a_running_server(server: Server, database_url: str) -> None:
    """Created and revoked by the CLI while the server runs: the server sees the
    revocation once its cache entry expires (its clock is the test's)."""
    now = [0.0]
    server.core.auth.keys.clock = lambda: now[0]

    proc = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "agentplane_cli.main",
            "keys",
            "create",
            "--name",
            "w",
            "--scopes",
            "read:sessions",
        ],
        env={**os.environ, "AGENTPLANE_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
    )
    key = proc.stdout.splitlines()[-1]
    key_id = proc.stdout.split()[3]
    assert (await server.http.get("/sessions", headers={"X-API-Key": key})).status_code == 200
    assert await asyncio.to_thread(main, ["keys", "--database-url", database_url, "revoke", key_id]) == 0
    assert (await server.http.get("/sessions", headers={"X-API-Key": key})).status_code == 200  # cached
    now[0] += server.core.auth.keys.ttl
    assert (await server.http.get("/sessions", headers={"X-API-Key": key})).status_code == 401


def serve_exit(*argv: str, **env: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "agentplane_cli.main", "serve", *argv],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, proc.stderr


def test_serve_refuses_to_run_open_beyond_loopback() -> None:
    code, err = serve_exit("--http-host", "0.0.0.0", "--auth", "off")
    assert code == 2
    assert "refusing to serve without authentication on 0.0.0.0" in err and "--allow-unauthenticated" in err
    code, err = serve_exit(AGENTPLANE_GRPC_HOST="::", AGENTPLANE_AUTH="off")
    assert code == 2 and "on ::" in err
    code, err = serve_exit(AGENTPLANE_AUTH="sometimes")
    assert code == 2 and "AGENTPLANE_AUTH must be one of keys, off" in err


def test_reading_commands_find_the_per_user_database_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no AGENTPLANE_DATABASE_URL, every command uses one database per
    user, wherever it runs; a reading command never creates an empty one."""
    monkeypatch.delenv("AGENTPLANE_DATABASE_URL", raising=False)
    monkeypatch.setenv("AGENTPLANE_HOME", str(tmp_path / "data"))
    database = tmp_path / "data" / "agentplane.db"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def keys(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "agentplane_cli.main", "keys", *argv],
            cwd=cwd,
            capture_output=True,
            text=True,
            env=os.environ,
            timeout=60,
        )

    missing = keys("list", cwd=elsewhere)
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f"agentplane keys: no database at {database}: start the server there first (agentplane serve), "
        "or point AGENTPLANE_DATABASE_URL (--database-url) at the server's database"
    )
    assert not database.exists() and not (elsewhere / ".agentplane").exists()

    assert keys("create", "--name", "ops", "--scopes", "admin", cwd=tmp_path).returncode == 0
    listed = keys("list", cwd=elsewhere)
    assert listed.returncode == 0 and "ops" in listed.stdout, listed.stderr
    assert not (elsewhere / ".agentplane").exists()
