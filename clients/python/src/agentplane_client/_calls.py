"""How a sub-client makes a call: with the auth metadata and the deadline,
and with failures raised as AgentplaneError. This is the only place that
adds metadata, so every call of every service carries the API key, and
every write a fresh idempotency key (so the server applies it once, even if
the call is sent again)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from functools import cache
from typing import Generic, Self, TypeVar

import grpc
import grpc.aio
from agentplane.v1 import options_pb2
from google.api import annotations_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from agentplane_client._errors import error_from_rpc

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Stub = TypeVar("Stub")

Metadata = tuple[tuple[str, str], ...]


def auth_metadata(api_key: str | None) -> Metadata:
    """The metadata every call sends: `authorization: Bearer <key>` when a key is given."""
    return (("authorization", f"Bearer {api_key}"),) if api_key else ()


IDEMPOTENCY_KEY = "idempotency-key"


@cache
def is_write(request_type: Descriptor) -> bool:
    """Whether the RPC taking `request_type` is a write, as the server decides
    (service.rpc.idempotency.is_write): unary, not an API key RPC (`admin`),
    and bound to a verb other than GET, or unbound with a `write:` scope."""
    for service in request_type.file.services_by_name.values():
        for method in service.methods:
            if method.input_type.full_name == request_type.full_name:
                if method.client_streaming or method.server_streaming:
                    return False
                options = method.GetOptions()
                scope = str(options.Extensions[options_pb2.required_scope])
                if scope == "admin":
                    return False
                if options.HasExtension(annotations_pb2.http):
                    return bool(options.Extensions[annotations_pb2.http].WhichOneof("pattern") != "get")
                return scope.startswith("write:")
    return False


def call_metadata(metadata: Metadata, request: object) -> Metadata:
    """The metadata of one call: a write's carries a fresh idempotency key."""
    if isinstance(request, Message) and is_write(request.DESCRIPTOR):
        return (*metadata, (IDEMPOTENCY_KEY, uuid.uuid4().hex))
    return metadata


class SyncCalls:
    """Makes blocking calls over a grpc.Channel."""

    def __init__(self, metadata: Metadata, timeout: float | None) -> None:
        self.metadata = metadata
        self.timeout = timeout

    def unary(self, method: grpc.UnaryUnaryMultiCallable[Req, Resp], request: Req) -> Resp:
        """Call a unary method; raises AgentplaneError."""
        try:
            return method(request, timeout=self.timeout, metadata=call_metadata(self.metadata, request))
        except grpc.RpcError as err:
            raise error_from_rpc(err) from None

    def open_stream(
        self, method: grpc.UnaryStreamMultiCallable[Req, Resp], request: Req
    ) -> grpc._CallIterator[Resp]:
        """Start a server-streaming call without a deadline (streams may follow
        forever); the caller maps errors raised while iterating."""
        return method(request, metadata=self.metadata)

    def stream(self, method: grpc.UnaryStreamMultiCallable[Req, Resp], request: Req) -> Iterator[Resp]:
        """A server stream's messages; raises AgentplaneError, also while iterating."""
        try:
            yield from self.open_stream(method, request)
        except grpc.RpcError as err:
            raise error_from_rpc(err) from None

    def with_metadata(self, metadata: Mapping[str, str]) -> SyncCalls:
        return SyncCalls((*self.metadata, *metadata.items()), self.timeout)


class AsyncCalls:
    """Makes calls over a grpc.aio.Channel."""

    def __init__(self, metadata: Metadata, timeout: float | None) -> None:
        self.metadata = metadata
        self.timeout = timeout

    async def unary(self, method: grpc.aio.UnaryUnaryMultiCallable[Req, Resp], request: Req) -> Resp:
        """Call a unary method; raises AgentplaneError."""
        try:
            return await method(request, timeout=self.timeout, metadata=call_metadata(self.metadata, request))
        except grpc.RpcError as err:
            raise error_from_rpc(err) from None

    def open_stream(
        self, method: grpc.aio.UnaryStreamMultiCallable[Req, Resp], request: Req
    ) -> grpc.aio.UnaryStreamCall[Req, Resp]:
        """Start a server-streaming call without a deadline; the caller maps
        errors raised while iterating."""
        return method(request, metadata=self.metadata)

    async def stream(
        self, method: grpc.aio.UnaryStreamMultiCallable[Req, Resp], request: Req
    ) -> AsyncIterator[Resp]:
        """A server stream's messages; raises AgentplaneError, also while iterating."""
        call = self.open_stream(method, request)
        try:
            async for item in call:
                yield item
        except grpc.RpcError as err:
            raise error_from_rpc(err) from None
        finally:
            call.cancel()

    def with_metadata(self, metadata: Mapping[str, str]) -> AsyncCalls:
        return AsyncCalls((*self.metadata, *metadata.items()), self.timeout)


class SyncService(Generic[Stub]):
    """A generated blocking service facade (_services.py): its stub and calls."""

    def __init__(self, stub: Stub, calls: SyncCalls) -> None:
        self._stub = stub
        self._calls = calls

    def with_metadata(self, metadata: Mapping[str, str]) -> Self:
        """This service with `metadata` added to every call (e.g. the AGH identity headers)."""
        return type(self)(self._stub, self._calls.with_metadata(metadata))


class AsyncService(Generic[Stub]):
    """A generated asyncio service facade (_services.py): its stub and calls."""

    def __init__(self, stub: Stub, calls: AsyncCalls) -> None:
        self._stub = stub
        self._calls = calls

    def with_metadata(self, metadata: Mapping[str, str]) -> Self:
        """This service with `metadata` added to every call (e.g. the AGH identity headers)."""
        return type(self)(self._stub, self._calls.with_metadata(metadata))
