"""Building request messages from HTTP as grpc-gateway does."""

from __future__ import annotations

import pytest
from agentplane.v1 import log_pb2, runtime_pb2

from gateway.httprule import Binding, bindings, build_request
from service.codec import ParseError


def binding(service: str, method: str, module=runtime_pb2) -> Binding:  # type: ignore[no-untyped-def]
    found = [b for b in bindings([module.DESCRIPTOR.services_by_name[service]]) if b.method.name == method]
    assert len(found) == 1
    return found[0]


def test_path_variable_fills_its_field_and_wins_over_the_body() -> None:
    b = binding("SessionService", "UpdateSessionMetadata")
    req = build_request(b, {"session_id": "from-path"}, [], {"session_id": "from-body", "agent_name": "a"})
    assert (req.session_id, req.agent_name) == ("from-path", "a")


def test_body_field_binding_puts_the_whole_body_into_that_field() -> None:
    b = binding("EventService", "AddSessionEvent")
    body = {"event_type": "message", "session_id": "s", "session_name": "n", "timestamp": "t", "exit_code": 0}
    req = build_request(b, {"session_id": "s"}, [], body)
    assert req.event.event_type == "message"
    assert req.event.HasField("exit_code") and req.event.exit_code == 0


def test_query_parameters_by_proto_or_json_name_with_types() -> None:
    b = binding("LogService", "WatchLog", log_pb2)
    req = build_request(
        b,
        {},
        [("afterSeq", "7"), ("stop_at_end", "true"), ("types", "a"), ("types", "b"), ("unknown", "x")],
        None,
    )
    assert (req.after_seq, req.stop_at_end, list(req.types)) == (7, True, ["a", "b"])


@pytest.mark.parametrize(
    ("query", "message"),
    [([("after_seq", "seven")], "after_seq"), ([("stop_at_end", "maybe")], "stop_at_end")],
)
def test_bad_query_values_name_the_parameter(query: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(ParseError, match=message):
        build_request(binding("LogService", "WatchLog", log_pb2), {}, query, None)


@pytest.mark.parametrize("body", [[1, 2], "text", 3])
def test_a_body_that_is_not_an_object_is_refused(body: object) -> None:
    with pytest.raises(ParseError, match="JSON object"):
        build_request(binding("SessionService", "CreateSession"), {}, [], body)


def test_every_binding_of_the_contract_has_a_route_path() -> None:
    from gateway.app import routes

    table = routes()
    assert {(b.verb, b.template) for b, _ in table} >= {
        ("GET", "/sessions"),
        ("POST", "/sessions"),
        ("GET", "/sessions/{session_id}"),
        ("GET", "/sessions/{session_id}/status"),
        ("GET", "/sessions/{session_id}/result"),
        ("PATCH", "/sessions/{session_id}/metadata"),
        ("DELETE", "/sessions/{session_id}"),
        ("GET", "/sessions/{session_id}/events"),
        ("POST", "/sessions/{session_id}/events"),
        ("GET", "/events/{session_id}"),
        ("POST", "/events"),
        ("GET", "/v1/log:watch"),
    }
