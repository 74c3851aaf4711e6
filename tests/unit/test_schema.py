"""The migrations and the tables the code declares describe one schema: every
family's tables module is registered in service.store.schema (what Alembic's
env compares against), and a migrated database has exactly those tables and
columns."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from sqlalchemy import Connection, inspect

from service.store.store import Store

# In a fresh interpreter: here, the whole app is imported, so every table is
# already in SQLModel.metadata whether or not schema.py names its module.
_DECLARED = """
import json
from service.store import schema
print(json.dumps({t.name: sorted(c.name for c in t.columns) for t in schema.metadata.sorted_tables}))
"""


async def test_migrated_database_has_every_declared_table_and_column(store: Store) -> None:
    def columns(conn: Connection) -> dict[str, list[str]]:
        found = inspect(conn)
        return {t: sorted(c["name"] for c in found.get_columns(t)) for t in found.get_table_names()}

    migrated = await store.read(columns)
    migrated.pop("alembic_version")
    declared = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", _DECLARED], capture_output=True, text=True, check=True
    )
    assert migrated == json.loads(declared.stdout)
