"""Migrated, empty databases for tests, without migrating each one.

A server's first start migrates its database: about a hundred DDL statements,
each its own commit (fsync) on SQLite, 0.5-1.5 s per test on a busy machine,
which was most of the suite's time. Tests that only need the state a first
start leaves get it faster, and their server still runs its migrations at
start (finding the schema current, as every restart does):

- SQLite: a copy of a file migrated once per test process.
- PostgreSQL: the test process's database keeps its migrated schema between
  tests; the tables the last test wrote to are truncated. When a test left the
  schema different (an older revision, a restore), it is dropped and migrated
  again, as before.

Migrating from nothing stays covered where it is the point: tests that start
`agentplane serve` on a database of their own, tests/unit/test_schema.py,
and the backup and import tests."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import psycopg

from service.store.database import libpq_dsn, migrate

# The shape of a schema: everything a test could have changed that a migrated
# database defines (relations and their columns, indexes, constraints,
# triggers, functions) and the revision it is at.
_SHAPE = [
    """SELECT c.relname, c.relkind, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       WHERE n.nspname = 'public' ORDER BY 1, 3""",
    "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
    """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
       WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2""",
    "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1",
    "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY 1",
    "SELECT version_num FROM alembic_version",
]


def copy_sqlite(template: Path, url: str) -> None:
    """Put the migrated template at the path of `url` (sqlite:///PATH)."""
    shutil.copyfile(template, url.removeprefix("sqlite:///"))


def migrated_sqlite(directory: Path) -> Path:
    """A SQLite file migrated to the newest revision, in `directory`."""
    path = directory / "migrated.db"
    migrate(f"sqlite:///{path}")
    return path


class PostgresReset:
    """Empties one PostgreSQL database to the state a first migration leaves."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.shape: list[list[tuple[Any, ...]]] | None = None

    def __call__(self) -> None:
        with psycopg.connect(libpq_dsn(self.url), autocommit=True, connect_timeout=5) as conn:
            if self.shape is not None and self._shape(conn) == self.shape:
                self._truncate_written(conn)
                return
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
        migrate(self.url)
        with psycopg.connect(libpq_dsn(self.url), autocommit=True, connect_timeout=5) as conn:
            self.shape = self._shape(conn)

    @staticmethod
    def _shape(conn: psycopg.Connection[Any]) -> list[list[tuple[Any, ...]]] | None:
        try:
            return [conn.execute(sql).fetchall() for sql in _SHAPE]
        except psycopg.errors.UndefinedTable:  # no alembic_version: not a migrated database
            return None

    @staticmethod
    def _truncate_written(conn: psycopg.Connection[Any]) -> None:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
        ]
        # One round trip finds the tables with rows: truncating an empty table
        # still costs new files and a WAL flush (all 29: 0.5 s on a busy machine).
        probe = " UNION ALL ".join(f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM \"{t}\")" for t in tables)
        written = [r[0] for r in conn.execute(probe)]
        used = [
            r[0]
            for r in conn.execute(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' AND last_value IS NOT NULL"
            )
        ]
        with conn.transaction():
            # A test's database: no need to wait for the disk. A connection a
            # test left open holding a lock fails the next setup, not hangs it.
            conn.execute("SET LOCAL synchronous_commit = off")
            conn.execute("SET LOCAL lock_timeout = '30s'")
            if written:
                names = ", ".join(f'"{t}"' for t in written)
                conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
            for seq in used:
                conn.execute(f'ALTER SEQUENCE "{seq}" RESTART')
