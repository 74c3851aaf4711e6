"""The grpc.aio server: every registered RPC through the dispatcher, plus
standard health checking and reflection (so grpcurl can list and call)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from service.base.errors import Unavailable
from service.rpc.admission import ByteBudget
from service.rpc.context import CallContext
from service.rpc.dispatch import Dispatcher, Method
from service.rpc.status import RpcError, from_domain


def _context(m: Method, context: grpc.aio.ServicerContext[Any, Any]) -> CallContext:
    metadata = {k.lower(): v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
    return CallContext(m.path, metadata, time_remaining=context.time_remaining())


def _handler(dispatcher: Dispatcher, m: Method, budget: ByteBudget) -> grpc.RpcMethodHandler[Any, Any]:
    if m.client_streaming:

        async def duplex(
            requests: AsyncIterator[Message], context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Message]:
            try:
                async for item in dispatcher.duplex(m.path, requests, _context(m, context)):
                    yield item
            except RpcError as err:
                await context.abort_with_status(rpc_status.to_status(err.status))

        return grpc.stream_stream_rpc_method_handler(
            duplex, request_deserializer=m.input.FromString, response_serializer=m.output.SerializeToString
        )
    if m.server_streaming:

        async def stream(
            request: Message, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Message]:
            try:
                async for item in dispatcher.stream(m.path, request, _context(m, context)):
                    yield item
            except RpcError as err:
                await context.abort_with_status(rpc_status.to_status(err.status))

        return grpc.unary_stream_rpc_method_handler(
            stream, request_deserializer=m.input.FromString, response_serializer=m.output.SerializeToString
        )

    async def unary(request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Message:
        size = request.ByteSize()  # held, decoded, until the call answers
        try:
            budget.acquire(size)
        except Unavailable as exc:
            await context.abort_with_status(rpc_status.to_status(from_domain(exc).status))
        try:
            async with budget.turn(size):
                return await dispatcher.unary(m.path, request, _context(m, context))
        except RpcError as err:
            await context.abort_with_status(rpc_status.to_status(err.status))
            raise  # unreachable: abort raises
        finally:
            budget.release(size)

    handler: Callable[..., Awaitable[Message]] = unary
    return grpc.unary_unary_rpc_method_handler(
        handler, request_deserializer=m.input.FromString, response_serializer=m.output.SerializeToString
    )


def build(
    dispatcher: Dispatcher, address: str, budget: ByteBudget
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """A server listening on `address` (port 0 picks a free one); returns the
    bound port. Unary requests count against `budget` (bytes in flight)."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    by_service: dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]] = {}
    for m in dispatcher.methods.values():
        by_service.setdefault(m.descriptor.containing_service.full_name, {})[m.descriptor.name] = _handler(
            dispatcher, m, budget
        )
    for service_name, handlers in by_service.items():
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service_name, handlers),))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [*by_service, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
    reflection.enable_server_reflection(names, server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen for gRPC on {address}")
    return server, port, health_servicer
