"""The databases a chaos run writes to, and reading them directly (not
through the server) to account for what was stored.

SQLite: a file per check. PostgreSQL: one database of the run's own, created
next to the one the URL names as tests/conftest.py does, its schema emptied
before each check and the database dropped at the end."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.conftest import _dsn, reset_postgres


@contextmanager
def postgres_database(base_url: str) -> Iterator[str]:
    import psycopg

    name = f"agentplane_chaos_{os.getpid()}"
    with psycopg.connect(_dsn(base_url), autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_dsn(base_url), autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_database(backend_url: str | None, workdir: Path) -> str:
    """An empty database for one check: backend_url is the run's PostgreSQL
    database, None for SQLite."""
    if backend_url is None:
        return f"sqlite:///{workdir / 'chaos.db'}"
    reset_postgres(backend_url)
    return backend_url


class Reader:
    """Direct reads of the server's database (one connection, kept)."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, pool_size=1)

    def close(self) -> None:
        self.engine.dispose()

    def scalar(self, sql: str, **params: object) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(sql), params).scalar() or 0)

    def head(self) -> int:
        """The log's last seq (0 when empty)."""
        return self.scalar("SELECT coalesce(max(seq), 0) FROM log_entries")

    def seqs_after(self, seq: int) -> list[int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT seq FROM log_entries WHERE seq > :s ORDER BY seq"), {"s": seq}
            )
            return [int(r[0]) for r in rows]

    def marker_rows(self, entry_type: str, pattern: str) -> Counter[str]:
        """How many log entries of entry_type carry each marker (a match of
        pattern in the entry's data), counting an entry once per marker."""
        found: Counter[str] = Counter()
        compiled = re.compile(pattern)
        sql = sa.text("SELECT CAST(data AS TEXT) FROM log_entries WHERE type = :t")
        with self.engine.connect() as conn:
            for (data,) in conn.execute(sql, {"t": entry_type}):
                found.update(set(compiled.findall(data)))
        return found
