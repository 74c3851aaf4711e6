"""Engines for the configured database, and migrations at start.

SQLite (the default) runs in WAL mode with one writer: the group-commit
writer holds the only write connection and opens its transactions with
BEGIN IMMEDIATE; readers use their own pool and never block it. PostgreSQL
is chosen by URL (`postgresql+psycopg://…`) for several replicas.

The engines are synchronous SQLAlchemy Core engines used from worker
threads (see `store.py`): a whole group commit, or a whole read, is one hop
off the event loop. Driving the same work statement by statement through
an async driver measured ten times slower here (211 vs 2,000+ events/s):
every statement paid a thread hop and a GIL hand-over.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).parent / "migrations"
# Threads (and pooled connections) for reads.
READ_THREADS = 4


def normalize_url(url: str) -> str:
    """The driver we use for a URL written the usual way (`sqlite:///…`,
    `postgresql://…`, or with an async driver named)."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        u = u.set(drivername="sqlite")
    elif u.get_backend_name() == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def libpq_dsn(url: str) -> str:
    """A PostgreSQL URL as psycopg takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def describe_database(url: str) -> str:
    """The database as people name it: a SQLite file's full path, or the
    server and database of a URL (never its password)."""
    path = sqlite_path(normalize_url(url))
    return f"SQLite file {path.resolve()}" if path else url.split("@")[-1]


@dataclass
class Engines:
    url: str
    write: Engine
    read: Engine

    @property
    def dialect(self) -> str:
        return self.write.dialect.name

    def dispose(self) -> None:
        self.write.dispose()
        self.read.dispose()


def _sqlite_engine(url: str, begin: str, pool_size: int) -> Engine:
    engine = create_engine(
        url, pool_size=pool_size, max_overflow=0, connect_args={"check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin, so
        # that SAVEPOINTs work and the writer can take the lock up front.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=10000"):
            cur.execute(f"PRAGMA {pragma}")
        # The writer runs each operation in a SAVEPOINT, whose statement journal
        # would otherwise be a temporary file written on every page an operation
        # first touches (15-25% of the insert time of a 100-event batch).
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # On the driver itself: every write batch and read begins here, and
        # SQLAlchemy's execute path costs more than the statement.
        conn.connection.driver_connection.execute(begin)

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
            read=_sqlite_engine(url, "BEGIN", pool_size=READ_THREADS),
        )
    write = create_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=True)
    read = create_engine(url, pool_size=READ_THREADS, max_overflow=0, pool_pre_ping=True)
    return Engines(url=url, write=write, read=read)


def migrate(url: str) -> None:
    """Bring the schema to the newest migration (synchronous; run it in a thread)."""
    # Imported here: alembic (with mako and pygments) takes half a second to
    # import, which a process that never migrates (the OTLP exporter) skips.
    from alembic import command
    from alembic.config import Config

    url = normalize_url(url)
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")
