"""The OTLP exporter's persisted cursor, and its read of the log."""
