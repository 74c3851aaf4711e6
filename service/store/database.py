"""Engines for the configured database, and migrations at start.

SQLite (the default) runs in WAL mode with one writer: the group-commit
writer holds the only write connection and opens its transactions with
BEGIN IMMEDIATE; readers use their own pool and never block it. PostgreSQL
is chosen by URL (`postgresql+psycopg://…`) for several replicas.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

DEFAULT_SQLITE_PATH = Path(".agentplane") / "agentplane.db"
MIGRATIONS = Path(__file__).parent / "migrations"


def default_url() -> str:
    return f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}"


def normalize_url(url: str) -> str:
    """Pick the async driver for a URL written the usual way."""
    u = make_url(url)
    if u.drivername in ("sqlite", "sqlite+pysqlite"):
        u = u.set(drivername="sqlite+aiosqlite")
    elif u.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+asyncpg"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    """The same database through a synchronous driver (for Alembic)."""
    u = make_url(url)
    if u.drivername == "sqlite+aiosqlite":
        u = u.set(drivername="sqlite")
    return u.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


@dataclass
class Engines:
    url: str
    write: AsyncEngine
    read: AsyncEngine

    @property
    def dialect(self) -> str:
        return self.write.dialect.name

    async def dispose(self) -> None:
        await self.write.dispose()
        await self.read.dispose()


def _sqlite_engine(url: str, begin: str, pool_size: int) -> AsyncEngine:
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=0)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin, so
        # that SAVEPOINTs work and the writer can take the lock up front.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=10000"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine


def create_engines(url: str) -> Engines:
    url = normalize_url(url)
    if is_sqlite(url):
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        return Engines(
            url=url,
            write=_sqlite_engine(url, "BEGIN IMMEDIATE", pool_size=1),
            read=_sqlite_engine(url, "BEGIN", pool_size=max(4, os.cpu_count() or 2)),
        )
    write = create_async_engine(url, pool_size=2, max_overflow=0, pool_pre_ping=True)
    read = create_async_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)
    return Engines(url=url, write=write, read=read)


def migrate(url: str) -> None:
    """Bring the schema to the newest migration (synchronous; run it in a thread)."""
    url = normalize_url(url)
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    command.upgrade(cfg, "head")
