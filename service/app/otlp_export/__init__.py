"""The OTLP exporter: follows the event log from a persisted cursor and sends
GenAI spans to an OTLP backend, in a process of its own (see process.py)."""
