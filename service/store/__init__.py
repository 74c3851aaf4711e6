"""Storage: SQLModel tables, the event log, queries and migrations."""
