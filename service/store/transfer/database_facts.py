"""What `agentplane db status` shows: the schema version against the newest
migration, each table's rows and bytes, each workspace's share and the log
head. Counting reads every table once: seconds on a large database."""

from __future__ import annotations

from dataclasses import dataclass, field

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, LargeBinary, cast, func, inspect, select, text

from service.store.database import MIGRATIONS
from service.store.schema import metadata
from service.store.tables import log_entries


def newest_migration() -> str:
    """The head revision of the migrations this code carries."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    return str(head)


def known_revisions() -> set[str]:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return {script.revision for script in ScriptDirectory.from_config(cfg).walk_revisions()}


def schema_version(conn: Connection) -> str | None:
    """The database's migration revision (None before the first migration)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


@dataclass
class TableFacts:
    name: str
    rows: int
    # Table and index pages on disk; None where the backend cannot tell (SQLite without dbstat).
    bytes: int | None


@dataclass
class WorkspaceFacts:
    workspace: str
    entries: int = 0
    # The log entries' data, as stored.
    log_bytes: int = 0
    # Rows of the projection tables.
    rows: int = 0
    # Retention's horizon: every entry of the workspace at or below it was removed (0: none).
    horizon_seq: int = 0


@dataclass
class DatabaseFacts:
    schema: str | None
    newest: str
    head: int
    oldest_seq: int | None
    tables: list[TableFacts] = field(default_factory=list)
    workspaces: list[WorkspaceFacts] = field(default_factory=list)
    total_bytes: int | None = None


def _table_bytes(conn: Connection, present: set[str]) -> dict[str, int] | None:
    if conn.dialect.name == "postgresql":
        size = text("SELECT pg_total_relation_size(:t)")
        return {name: int(conn.execute(size, {"t": name}).scalar_one()) for name in present}
    try:
        pages = conn.execute(
            text(
                "SELECT coalesce(m.tbl_name, d.name), sum(d.pgsize) FROM dbstat d "
                "LEFT JOIN sqlite_master m ON m.name = d.name GROUP BY 1"
            )
        ).all()
    except Exception:  # SQLite built without the dbstat table
        return None
    return {name: int(size) for name, size in pages}


def _database_bytes(conn: Connection) -> int | None:
    if conn.dialect.name == "postgresql":
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    pages = conn.execute(text("PRAGMA page_count")).scalar_one()
    size = conn.execute(text("PRAGMA page_size")).scalar_one()
    return int(pages) * int(size)


def database_facts(conn: Connection) -> DatabaseFacts:
    schema = schema_version(conn)
    present = set(inspect(conn).get_table_names())
    head, oldest = conn.execute(
        select(func.coalesce(func.max(log_entries.c.seq), 0), func.min(log_entries.c.seq))
    ).one()
    facts = DatabaseFacts(schema, newest_migration(), int(head), oldest, total_bytes=_database_bytes(conn))
    sizes = _table_bytes(conn, present) or {}
    spaces: dict[str, WorkspaceFacts] = {}
    # Bytes as stored: SQLite's JSON text (length() of text counts characters), PostgreSQL's JSONB.
    data_bytes = (
        func.length(cast(log_entries.c.data, LargeBinary))
        if conn.dialect.name == "sqlite"
        else func.pg_column_size(log_entries.c.data)
    )
    for ws, count, size in conn.execute(
        select(log_entries.c.workspace, func.count(), func.coalesce(func.sum(data_bytes), 0)).group_by(
            log_entries.c.workspace
        )
    ):
        spaces[ws] = WorkspaceFacts(ws, int(count), int(size))
    for table in metadata.sorted_tables:
        if table.name not in present:
            continue
        rows = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
        facts.tables.append(TableFacts(table.name, rows, sizes.get(table.name)))
        if table.name == log_entries.name or "workspace" not in table.c:
            continue
        for ws, count in conn.execute(select(table.c.workspace, func.count()).group_by(table.c.workspace)):
            spaces.setdefault(ws, WorkspaceFacts(ws)).rows += int(count)
    if "workspace_usage" in present:
        usage = metadata.tables["workspace_usage"]
        for ws, horizon in conn.execute(select(usage.c.workspace, usage.c.horizon_seq)):
            spaces.setdefault(ws, WorkspaceFacts(ws)).horizon_seq = int(horizon)
    facts.workspaces = sorted(spaces.values(), key=lambda w: w.workspace)
    return facts
