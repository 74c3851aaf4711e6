"""Are the ports `agentplane serve` will listen on free? Checked before the
server announces or starts anything, so that a port in use is one clear line
and a non-zero exit, not a half-started server and a traceback."""

from __future__ import annotations

import socket


def unavailable(listeners: list[tuple[str, str, int]]) -> str | None:
    """For (what, host, port) listeners: why the first that cannot be bound
    cannot, or None when all can. Port 0 (any free port) is always fine."""
    for what, host, port in listeners:
        if port == 0:
            continue
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            with socket.socket(family, kind, proto) as probe:
                # As the servers bind: a port in TIME_WAIT is free.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            return f"cannot listen on {host}:{port} for {what}: {reason.lower()}"
    return None
