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

from gateway import agh_errors, tracer_errors
from service.base.errors import CommonReason
from service.domain.trenchcoat.reasons import TrenchcoatReason
from service.rpc.service_config import service_config
from service.rpc.status import RpcError

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
    # Leave unset `optional` fields and messages out of the JSON instead of
    # writing them as null.
    omit_unset: bool = False
    # Bodies besides JSON a route of the family reads and writes (OpenAPI).
    binary_protobuf: bool = False

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


class AgentTracerFamily(Family):
    """Seed 000: {"ok": true, "data": …}; errors as {"ok": false, "error":
    {"code", "message", "details"?}} with upstream's codes and statuses (see
    gateway.tracer_errors); camelCase names, unset optional fields omitted."""

    def success(self, payload: Any) -> Any:
        return {"ok": True, "data": payload}

    def error_body(self, err: RpcError) -> Any:
        return {"ok": False, "error": tracer_errors.error_object(err)}

    def error(self, err: RpcError) -> tuple[int, Any, dict[str, str]]:
        return tracer_errors.classify(err)[0], self.error_body(err), error_headers(err)

    def success_schema(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"ok": {"const": True}, "data": payload},
            "required": ["ok", "data"],
        }

    def error_schema(self) -> dict[str, Any]:
        error = {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"description": "validation errors: zod's format() tree"},
            },
            "required": ["code", "message"],
        }
        return {
            "type": "object",
            "properties": {"ok": {"const": False}, "error": error},
            "required": ["ok", "error"],
        }


# Trenchcoat's error codes (upstream lib/api-response.ts), by ErrorInfo reason
# first (every Trenchcoat reason is listed: tests/unit/test_error_reasons.py),
# then by gRPC code; anything else is INTERNAL_ERROR.
TRENCHCOAT_REASON_CODES: dict[str, str] = {
    CommonReason.BODY_TOO_LARGE: "PAYLOAD_TOO_LARGE",
    TrenchcoatReason.VALIDATION_ERROR: "VALIDATION_ERROR",
    TrenchcoatReason.BATCH_TOO_LARGE: "VALIDATION_ERROR",
    CommonReason.QUOTA_EVENTS_PER_DAY: "QUOTA_EXCEEDED",
    CommonReason.QUOTA_STORED_BYTES: "QUOTA_EXCEEDED",
}
# The seed's message for a body whose `details` name the offending fields.
TRENCHCOAT_BODY_INVALID = "Request body is invalid."
# The generic checks of request strings (service.rpc.limits) name each field
# in their message; the seed words every invalid body so, with the fields in details.
TRENCHCOAT_REASON_MESSAGES: dict[str, str] = dict.fromkeys(
    (CommonReason.INVALID_ARGUMENT, CommonReason.FIELD_TOO_LONG), TRENCHCOAT_BODY_INVALID
)
TRENCHCOAT_CODES = {
    3: "VALIDATION_ERROR",
    5: "NOT_FOUND",
    6: "CONFLICT",
    7: "FORBIDDEN",
    8: "RATE_LIMITED",
    9: "BAD_REQUEST",
    10: "CONFLICT",
    11: "BAD_REQUEST",
    12: "METHOD_NOT_ALLOWED",
    14: "SERVICE_UNAVAILABLE",
    16: "UNAUTHORIZED",
}


class TrenchcoatFamily(Family):
    """Seed 002: {"data": …}; errors as {"error": {"code", "message",
    "details"?: [{"field", "message"}]}} with upstream's codes; snake_case."""

    def success(self, payload: Any) -> Any:
        return {"data": payload}

    def error_body(self, err: RpcError) -> Any:
        info = err.error_info()
        code = TRENCHCOAT_REASON_CODES.get(info.reason if info else "") or TRENCHCOAT_CODES.get(
            err.code, "INTERNAL_ERROR"
        )
        message = TRENCHCOAT_REASON_MESSAGES.get(info.reason if info else "", err.status.message)
        error: dict[str, Any] = {"code": code, "message": message}
        violations = err.field_violations()
        if violations:
            if info is not None and info.reason == "INVALID_JSON":  # values of the wrong type
                error["message"] = TRENCHCOAT_BODY_INVALID
            error["details"] = [{"field": v.field, "message": v.description} for v in violations]
        return {"error": error}

    def success_schema(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "properties": {"data": payload}, "required": ["data"]}

    def error_schema(self) -> dict[str, Any]:
        detail = {
            "type": "object",
            "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            "required": ["field", "message"],
        }
        error = {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "VALIDATION_ERROR, UNAUTHORIZED, FORBIDDEN, …"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": detail},
            },
            "required": ["code", "message"],
        }
        return {"type": "object", "properties": {"error": error}, "required": ["error"]}


class AghFamily(Family):
    """Seed 003 (AGH): the message itself; errors as {"error": text,
    "diagnostic": {code, category, message, severity, suggested_command, …}}
    with upstream's statuses and codes (see gateway.agh_errors); snake_case
    names, unset optional fields omitted."""

    def error_body(self, err: RpcError) -> Any:
        return agh_errors.classify(err)[1]

    def error(self, err: RpcError) -> tuple[int, Any, dict[str, str]]:
        status, body = agh_errors.classify(err)
        return status, body, error_headers(err)

    def error_schema(self) -> dict[str, Any]:
        return agh_errors.ERROR_SCHEMA


class OtlpFamily(Family):
    """OTLP/HTTP (gateway.otlp): the message itself, errors as google.rpc.Status,
    lowerCamelCase JSON; its endpoint answers in protobuf or JSON, as asked."""

    def error_body(self, err: RpcError) -> Any:
        return json_format.MessageToDict(err.status)

    def error_schema(self) -> dict[str, Any]:
        return STATUS_SCHEMA


FAMILIES: dict[int, Family] = {
    options_pb2.ROUTE_FAMILY_AGENT_RUNTIME: AgentRuntimeFamily("agent-runtime", proto_names=True),
    options_pb2.ROUTE_FAMILY_NATIVE: NativeFamily("native", proto_names=True),
    options_pb2.ROUTE_FAMILY_AGENT_TRACER: AgentTracerFamily(
        "agent-tracer", proto_names=False, omit_unset=True
    ),
}
FAMILIES[options_pb2.ROUTE_FAMILY_TRENCHCOAT] = TrenchcoatFamily("trenchcoat", proto_names=True)
FAMILIES[options_pb2.ROUTE_FAMILY_AGH] = AghFamily("agh", proto_names=True, omit_unset=True)
FAMILIES[options_pb2.ROUTE_FAMILY_OTLP] = OtlpFamily("otlp", proto_names=False, binary_protobuf=True)


def family_of(service: Any) -> Family | None:
    """The family a service descriptor declares (or its service config, for a
    service whose proto is not ours), or None if it has no JSON routes."""
    value = service.GetOptions().Extensions[options_pb2.route_family] or service_config().route_families.get(
        service.full_name, options_pb2.ROUTE_FAMILY_UNSPECIFIED
    )
    if value == options_pb2.ROUTE_FAMILY_UNSPECIFIED:
        return None
    if value not in FAMILIES:
        raise ValueError(
            f"{service.full_name} declares route family {value}, which the gateway does not render"
        )
    return FAMILIES[value]
