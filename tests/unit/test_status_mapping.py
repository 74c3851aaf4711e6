"""Errors are data: one mapping from domain errors to google.rpc.Status, and
from there to each family's HTTP status and body."""

from __future__ import annotations

import pytest
from agentplane.v1 import options_pb2
from google.rpc import error_details_pb2

from gateway.families import FAMILIES, http_status
from service.base import errors
from service.rpc.status import from_domain


@pytest.mark.parametrize(
    ("error", "grpc_code", "http"),
    [
        (errors.InvalidArgument, 3, 400),
        (errors.NotFound, 5, 404),
        (errors.AlreadyExists, 6, 409),
        (errors.FailedPrecondition, 9, 400),
        (errors.Aborted, 10, 409),
        (errors.PermissionDenied, 7, 403),
        (errors.Unauthenticated, 16, 401),
        (errors.ResourceExhausted, 8, 429),
        (errors.Unavailable, 14, 503),
    ],
)
def test_domain_errors_map_to_grpc_and_http_codes(
    error: type[errors.DomainError], grpc_code: int, http: int
) -> None:
    rpc = from_domain(error("msg", reason="R"))
    assert rpc.code == grpc_code
    assert http_status(rpc.code) == http
    assert rpc.error_info() is not None and rpc.error_info().reason == "R"  # type: ignore[union-attr]


def test_field_violations_travel_as_bad_request_details() -> None:
    rpc = from_domain(
        errors.invalid("event.session_id", "must match", "Event session_id must match URL session_id")
    )
    assert [(v.field, v.description) for v in rpc.field_violations()] == [("event.session_id", "must match")]


def test_agent_runtime_family_renders_detail_and_native_renders_status() -> None:
    rpc = from_domain(errors.NotFound("Session not found", reason="SESSION_NOT_FOUND"))
    runtime = FAMILIES[options_pb2.ROUTE_FAMILY_AGENT_RUNTIME]
    assert runtime.error(rpc) == (404, {"detail": "Session not found"}, {})
    status, body, _ = FAMILIES[options_pb2.ROUTE_FAMILY_NATIVE].error(rpc)
    assert status == 404 and body["code"] == 5 and body["message"] == "Session not found"
    assert body["details"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"


def test_retry_after_and_www_authenticate_headers() -> None:
    runtime = FAMILIES[options_pb2.ROUTE_FAMILY_AGENT_RUNTIME]
    limited = from_domain(
        errors.ResourceExhausted("slow down", reason="RATE", metadata={"retry_after_seconds": "3"})
    )
    assert runtime.error(limited)[2] == {"Retry-After": "3"}
    assert any(isinstance(d, error_details_pb2.RetryInfo) for d in limited.details())
    assert (
        "WWW-Authenticate" in runtime.error(from_domain(errors.Unauthenticated("who?", reason="NO_KEY")))[2]
    )
