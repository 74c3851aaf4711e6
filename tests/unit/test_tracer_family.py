"""The Agent Tracer route family: envelopes, the error code table, zod's
details tree, and JSON without unset optional fields."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from agentplane.v1 import options_pb2, tracer_pb2

from gateway.families import FAMILIES
from gateway.tracer_errors import zod_tree
from service.base import errors
from service.codec import encoder
from service.rpc.status import from_domain, simple

FAMILY = FAMILIES[options_pb2.ROUTE_FAMILY_AGENT_TRACER]


def test_success_envelope() -> None:
    assert FAMILY.success({"ended": True}) == {"ok": True, "data": {"ended": True}}
    assert FAMILY.success(None) == {"ok": True, "data": None}


CASES: list[tuple[Exception, int, dict[str, Any]]] = [
    (
        errors.NotFound("Task not found: t1", reason="TASK_NOT_FOUND"),
        404,
        {"code": "not_found", "message": "Task not found: t1"},
    ),
    (
        errors.InvalidArgument(
            "Invalid request body",
            reason="VALIDATION_ERROR",
            violations=[
                errors.FieldViolation("events.0.lane", "Invalid enum value"),
                errors.FieldViolation("events.0.lane", "second"),
                errors.FieldViolation("events.12.taskId", "Required"),
            ],
        ),
        400,
        {
            "code": "validation_error",
            "message": "Invalid request body",
            "details": {
                "_errors": [],
                "events": {
                    "_errors": [],
                    "0": {"_errors": [], "lane": {"_errors": ["Invalid enum value", "second"]}},
                    "12": {"_errors": [], "taskId": {"_errors": ["Required"]}},
                },
            },
        },
    ),
    (
        # the generic REQUIRED check: proto names and its own wording
        errors.InvalidArgument(
            "missing required field: error_message",
            reason="MISSING_FIELD",
            violations=[errors.FieldViolation("error_message", "is required")],
        ),
        400,
        {
            "code": "validation_error",
            "message": "Invalid request",
            "details": {"_errors": [], "errorMessage": {"_errors": ["Required"]}},
        },
    ),
    (
        errors.InvalidArgument("events[0]: expected a JSON object, got 1", reason="INVALID_JSON"),
        400,
        {
            "code": "validation_error",
            "message": "Invalid request",
            "details": {"_errors": ["events[0]: expected a JSON object, got 1"]},
        },
    ),
    (
        errors.FailedPrecondition("Only task rules", reason="X"),
        400,
        {"code": "bad_request", "message": "Only task rules"},
    ),
    (
        errors.InvalidArgument("Bad rule", reason="BAD_REQUEST"),
        400,
        {"code": "bad_request", "message": "Bad rule"},
    ),
    (errors.Aborted("version mismatch"), 409, {"code": "conflict", "message": "version mismatch"}),
    (errors.Unauthenticated("no key"), 401, {"code": "unauthorized", "message": "no key"}),
    (errors.PermissionDenied("scope"), 403, {"code": "forbidden", "message": "scope"}),
    (errors.ResourceExhausted("slow down"), 429, {"code": "request_failed", "message": "slow down"}),
    (errors.Unavailable("retry"), 503, {"code": "service_unavailable", "message": "retry"}),
]


@pytest.mark.parametrize(("exc", "status", "body"), CASES)
def test_error_rendering(exc: errors.DomainError, status: int, body: dict[str, Any]) -> None:
    assert FAMILY.error(from_domain(exc))[:2] == (status, {"ok": False, "error": body})


def test_a_server_fault_says_nothing_more() -> None:
    status, body, _ = FAMILY.error(simple(grpc.StatusCode.INTERNAL, "KeyError: 'secret' at line 3"))
    assert (status, body) == (
        500,
        {"ok": False, "error": {"code": "internal_server_error", "message": "Internal server error"}},
    )


def test_zod_tree_paths() -> None:
    assert zod_tree([("events[3].task_effects.task_status", "x"), ("a.b_c", "y")], ["top"]) == {
        "_errors": ["top"],
        "events": {
            "_errors": [],
            "3": {"_errors": [], "taskEffects": {"_errors": [], "taskStatus": {"_errors": ["x"]}}},
        },
        "a": {"_errors": [], "bC": {"_errors": ["y"]}},
    }


def test_unset_optional_fields_are_omitted() -> None:
    encode = encoder(tracer_pb2.TracerTask.DESCRIPTOR, FAMILY.proto_names, FAMILY.omit_unset)
    task = tracer_pb2.TracerTask(id="t", title="T", status="running", runtime_source="")
    assert encode(task) == {
        "id": "t",
        "title": "T",
        "slug": "",
        "status": "running",
        "taskKind": "",
        "createdAt": "",
        "updatedAt": "",
        "origin": "",
        "runtimeSource": "",
    }
