"""How the gateway reaches the service: in process (one server process,
through the same call chain as gRPC) or over a gRPC channel (the gateway
run apart with `--gateway-only --upstream`). Both raise `RpcError`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import grpc
from google.protobuf.message import Message
from google.rpc import status_pb2
from grpc_status import rpc_status

from service.rpc.context import CallContext
from service.rpc.dispatch import Dispatcher
from service.rpc.status import RpcError


class Transport(Protocol):
    # Whether requests stay in this process, so the gateway may keep their
    # free-form JSON as parsed (see protojson.keeping_free_form).
    in_process: bool

    async def unary(
        self, path: str, request: Message, output: type[Message], metadata: Mapping[str, str]
    ) -> Message: ...

    def stream(
        self,
        path: str,
        request: Message,
        output: type[Message],
        metadata: Mapping[str, str],
        wire: str = "proto",
    ) -> AsyncIterator[Message]: ...

    async def admit(self, path: str, metadata: Mapping[str, str]) -> None:
        """Raise the RpcError a call to `path` with `metadata` would get from
        the auth step (bad key, missing scope, rate), if any."""


class InProcessTransport:
    in_process = True

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    async def unary(
        self, path: str, request: Message, output: type[Message], metadata: Mapping[str, str]
    ) -> Message:
        return await self.dispatcher.unary(path, request, CallContext(path, metadata))

    def stream(
        self,
        path: str,
        request: Message,
        output: type[Message],
        metadata: Mapping[str, str],
        wire: str = "proto",
    ) -> AsyncIterator[Message]:
        """`wire`: the in-process forms the caller also takes (CallContext.wire)."""
        return self.dispatcher.stream(path, request, CallContext(path, metadata, wire=wire))

    async def admit(self, path: str, metadata: Mapping[str, str]) -> None:
        await self.dispatcher.admit(path, CallContext(path, metadata))


def _rpc_error(err: grpc.aio.AioRpcError) -> RpcError:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    if status is None:
        status = status_pb2.Status(code=err.code().value[0], message=err.details() or "")
    return RpcError(status)


class ChannelTransport:
    in_process = False

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel

    async def admit(self, path: str, metadata: Mapping[str, str]) -> None:
        """The upstream server checks keys on the call itself; a gateway run
        apart cannot ask beforehand, so its bad-body errors come first."""

    async def unary(
        self, path: str, request: Message, output: type[Message], metadata: Mapping[str, str]
    ) -> Message:
        call = self.channel.unary_unary(
            path, request_serializer=type(request).SerializeToString, response_deserializer=output.FromString
        )
        try:
            result: Message = await call(request, metadata=tuple(metadata.items()))
            return result
        except grpc.aio.AioRpcError as err:
            raise _rpc_error(err) from err

    async def stream(
        self,
        path: str,
        request: Message,
        output: type[Message],
        metadata: Mapping[str, str],
        wire: str = "proto",
    ) -> AsyncIterator[Message]:
        call = self.channel.unary_stream(
            path, request_serializer=type(request).SerializeToString, response_deserializer=output.FromString
        )(request, metadata=tuple(metadata.items()))
        try:
            async for item in call:
                yield item
        except grpc.aio.AioRpcError as err:
            raise _rpc_error(err) from err
        finally:
            call.cancel()
