"""Route families: how each JSON contract wraps a success and renders an error.

A service declares its family once, with the `agentplane.v1.route_family`
option; every route of that service then renders alike. A new family is a
new `Family` here and a new enum value in options.proto, nothing per route.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentplane.v1 import options_pb2
from google.protobuf import json_format
from google.rpc import error_details_pb2

from service.app.status import RpcError

# grpc-gateway's HTTPStatusFromCode, indexed by gRPC code.
HTTP_STATUS = {
    0: 200,
    1: 499,
    2: 500,
    3: 400,
    4: 504,
    5: 404,
    6: 409,
    7: 403,
    8: 429,
    9: 400,
    10: 409,
    11: 400,
    12: 501,
    13: 500,
    14: 503,
    15: 500,
    16: 401,
}


# google.rpc.Status as JSON: native errors, and errors inside NDJSON streams.
STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "google.rpc.Status",
    "properties": {
        "code": {"type": "integer", "description": "gRPC status code"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object"}},
    },
}


def http_status(code: int) -> int:
    return HTTP_STATUS.get(code, 500)


def error_headers(err: RpcError) -> dict[str, str]:
    """Headers every family sends with an error: how long to wait, how to authenticate."""
    headers: dict[str, str] = {}
    if err.code == 16:
        headers["WWW-Authenticate"] = 'Bearer realm="agentplane"'
    for detail in err.details():
        if isinstance(detail, error_details_pb2.RetryInfo):
            headers["Retry-After"] = str(max(1, detail.retry_delay.seconds))
    return headers


@dataclass(frozen=True)
class Family:
    name: str
    # snake_case (proto) names, or lowerCamelCase (JSON) names.
    proto_names: bool

    def success(self, payload: Any) -> Any:
        """The body of a successful response carrying `payload`."""
        return payload

    def error_body(self, err: RpcError) -> Any:
        raise NotImplementedError

    def error(self, err: RpcError) -> tuple[int, Any, dict[str, str]]:
        return http_status(err.code), self.error_body(err), error_headers(err)

    # JSON Schemas for the OpenAPI document.
    def success_schema(self, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    def error_schema(self) -> dict[str, Any]:
        raise NotImplementedError


class AgentRuntimeFamily(Family):
    """Seed 004: the message itself; errors as {"detail": message}."""

    def error_body(self, err: RpcError) -> Any:
        return {"detail": err.status.message}

    def error_schema(self) -> dict[str, Any]:
        return {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}


class NativeFamily(Family):
    """agentplane's own routes: the message itself; errors as google.rpc.Status
    JSON, as grpc-gateway writes them."""

    def error_body(self, err: RpcError) -> Any:
        return json_format.MessageToDict(err.status, preserving_proto_field_name=True)

    def error_schema(self) -> dict[str, Any]:
        return STATUS_SCHEMA


FAMILIES: dict[int, Family] = {
    options_pb2.ROUTE_FAMILY_AGENT_RUNTIME: AgentRuntimeFamily("agent-runtime", proto_names=True),
    options_pb2.ROUTE_FAMILY_NATIVE: NativeFamily("native", proto_names=True),
}


def family_of(service: Any) -> Family | None:
    """The family a service descriptor declares, or None if it has no JSON routes."""
    value = service.GetOptions().Extensions[options_pb2.route_family]
    if value == options_pb2.ROUTE_FAMILY_UNSPECIFIED:
        return None
    if value not in FAMILIES:
        raise ValueError(
            f"{service.full_name} declares route family {value}, which the gateway does not render"
        )
    return FAMILIES[value]
