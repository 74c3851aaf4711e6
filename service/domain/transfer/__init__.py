"""Carrying data between instances: `agentplane export` writes the log and
the projections as NDJSON (`export_format`, `exporting`), `agentplane
import` writes them into another database (`importing`)."""
