"""The event log seen as OpenTelemetry GenAI spans (issue 17, export)."""
