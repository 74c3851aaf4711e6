"""`agentplane keys`: create, list and revoke API keys in the configured
database (AGENTPLANE_DATABASE_URL or --database-url), without a running
server; this is how a deployment gets its first `admin` key.

`create` prints the new key as the last line of its output: it is shown
this once, and only its SHA-256 is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TextIO

from service.base.config import Settings
from service.base.errors import DomainError, NotFound
from service.domain import apikeys
from service.store.apikeys import ApiKeyRecord
from service.store.database import describe_database, normalize_url, sqlite_path
from service.store.store import Store
from service.store.tables import DEFAULT_WORKSPACE


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("keys", help="create, list and revoke API keys (in the configured database)")
    p.add_argument("--database-url", help="SQLAlchemy URL (AGENTPLANE_DATABASE_URL, default a SQLite file)")
    commands = p.add_subparsers(dest="keys_command", required=True)

    create = commands.add_parser("create", help="create a key and print it (shown only once)")
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument("--scopes", required=True, help=f"comma-separated, from: {', '.join(apikeys.SCOPES)}")
    create.add_argument(
        "--workspace", default=DEFAULT_WORKSPACE, help=f"the key's workspace (default {DEFAULT_WORKSPACE})"
    )
    create.add_argument("--expires-in", metavar="DURATION", help="for example 30d, 12h, 90m (default: never)")

    listing = commands.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--workspace", help="only this workspace (default: every workspace)")

    revoke = commands.add_parser("revoke", help="revoke a key; servers refuse it within seconds")
    revoke.add_argument("key_id", help="the key's id (key_…), as `keys list` shows it")


def _when(moment: datetime | None, never: str = "never") -> str:
    return moment.isoformat(timespec="seconds") if moment else never


def _state(record: ApiKeyRecord, now: datetime) -> str:
    if record.revoked_at is not None:
        return f"revoked {_when(record.revoked_at)}"
    if record.expires_at is not None and record.expires_at <= now:
        return "expired"
    return "active"


def _table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(), file=out)


async def _create(store: Store, args: argparse.Namespace, out: TextIO) -> int:
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    expires_in = apikeys.parse_duration(args.expires_in) if args.expires_in else None
    record, secret = await apikeys.create_key(store, args.workspace, args.name, scopes, expires_in)
    print(f"Created API key {record.key_id} ({record.name}) in workspace {record.workspace}", file=out)
    print(f"scopes: {', '.join(record.scopes)}; expires: {_when(record.expires_at)}", file=out)
    print("Store the key now: it is shown only this once.", file=out)
    print(secret, file=out)
    return 0


async def _list(store: Store, args: argparse.Namespace, out: TextIO) -> int:
    records = await apikeys.list_keys(store, args.workspace)
    if not records:
        print(f"no API keys in {describe_database(store.url)}", file=out)
        return 0
    now = datetime.now(UTC)
    rows = [["KEY ID", "NAME", "WORKSPACE", "SCOPES", "PREFIX", "CREATED", "EXPIRES", "STATE"]]
    rows += [
        [
            r.key_id,
            r.name,
            r.workspace,
            ",".join(r.scopes),
            f"{r.prefix}…",
            _when(r.created_at),
            _when(r.expires_at),
            _state(r, now),
        ]
        for r in records
    ]
    _table(rows, out)
    return 0


async def _revoke(store: Store, args: argparse.Namespace, out: TextIO) -> int:
    record = await apikeys.revoke_key(store, None, args.key_id)
    print(
        f"Revoked {record.key_id} ({record.name}, workspace {record.workspace}); running servers "
        f"refuse it within AGENTPLANE_KEY_CACHE_SECONDS (default 5).",
        file=out,
    )
    return 0


_COMMANDS: dict[str, Callable[[Store, argparse.Namespace, TextIO], Awaitable[int]]] = {
    "create": _create,
    "list": _list,
    "revoke": _revoke,
}


# Commands that only read or change existing keys: they never create a database.
_NEEDS_EXISTING = frozenset({"list", "revoke"})


async def _run(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    path = sqlite_path(normalize_url(settings.database_url))
    if args.keys_command in _NEEDS_EXISTING and path is not None and not path.exists():
        print(
            f"agentplane keys: no database at {path.resolve()}: start the server there first "
            "(agentplane serve), or point AGENTPLANE_DATABASE_URL (--database-url) at the server's database",
            file=sys.stderr,
        )
        return 1
    store = Store(settings.database_url)
    await store.open()
    try:
        return await _COMMANDS[args.keys_command](store, args, out)
    finally:
        await store.close()


def run(settings: Settings, args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Exit status: 0, 1 for an unknown key, 2 for bad input."""
    try:
        return asyncio.run(_run(settings, args, out or sys.stdout))
    except NotFound as exc:
        print(f"agentplane keys: {exc}", file=sys.stderr)
        return 1
    except DomainError as exc:
        print(f"agentplane keys: {exc}", file=sys.stderr)
        return 2
