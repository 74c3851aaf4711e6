"""Live followers of the event log, served by a process of their own (process.py says why)."""
