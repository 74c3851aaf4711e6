"""How a sub-client makes a call: with the auth metadata and the deadline,
and with failures raised as AgentplaneError. This is the only place that
adds metadata, so every call of every service carries the API key."""

from __future__ import annotations

from typing import TypeVar

import grpc
import grpc.aio

from agentplane_client._errors import error_from_rpc

Req = TypeVar("Req")
Resp = TypeVar("Resp")

Metadata = tuple[tuple[str, str], ...]


def auth_metadata(api_key: str | None) -> Metadata:
    """The metadata every call sends: `authorization: Bearer <key>` when a key is given."""
    return (("authorization", f"Bearer {api_key}"),) if api_key else ()


class SyncCalls:
    """Makes blocking calls over a grpc.Channel."""

    def __init__(self, metadata: Metadata, timeout: float | None) -> None:
        self.metadata = metadata
        self.timeout = timeout

    def unary(self, method: grpc.UnaryUnaryMultiCallable[Req, Resp], request: Req) -> Resp:
        """Call a unary method; raises AgentplaneError."""
        try:
            return method(request, timeout=self.timeout, metadata=self.metadata)
        except grpc.RpcError as err:
            raise error_from_rpc(err) from None

    def open_stream(
        self, method: grpc.UnaryStreamMultiCallable[Req, Resp], request: Req
    ) -> grpc._CallIterator[Resp]:
        """Start a server-streaming call without a deadline (streams may follow
        forever); the caller maps errors raised while iterating."""
        return method(request, metadata=self.metadata)


class AsyncCalls:
    """Makes calls over a grpc.aio.Channel."""

    def __init__(self, metadata: Metadata, timeout: float | None) -> None:
        self.metadata = metadata
        self.timeout = timeout

    async def unary(self, method: grpc.aio.UnaryUnaryMultiCallable[Req, Resp], request: Req) -> Resp:
        """Call a unary method; raises AgentplaneError."""
        try:
            return await method(request, timeout=self.timeout, metadata=self.metadata)
        except grpc.RpcError as err:
            raise error_from_rpc(err) from None

    def open_stream(
        self, method: grpc.aio.UnaryStreamMultiCallable[Req, Resp], request: Req
    ) -> grpc.aio.UnaryStreamCall[Req, Resp]:
        """Start a server-streaming call without a deadline; the caller maps
        errors raised while iterating."""
        return method(request, metadata=self.metadata)
