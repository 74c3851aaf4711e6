"""Hook adapters for Claude Code and Codex: `agentplane-hook claude-code|codex`
(also `agentplane hook ...`) reads a hook's JSON on stdin and sends it to the
agent-tracer routes, spooling it on disk when the server is slow or down.

Standard library only, so that a hook starts fast: nothing here imports grpc,
protobuf or the rest of the client.
"""
