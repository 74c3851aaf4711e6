"""The channel message rules, called directly: ids, metadata, claim tokens, size."""

from __future__ import annotations

from typing import Any

import pytest

from service.base.errors import InvalidArgument, ResourceExhausted
from service.domain.agh.channels import message_validation as rules

GOOD = {
    "task_id": "t",
    "run_id": "r",
    "coordination_channel_id": "ops",
    "correlation_id": "c",
    "message_kind": "handoff",
}


@pytest.mark.parametrize("channel_id", ["ops", "a", "run-0f3e", "x_y-z", "a" * 64])
def test_valid_channel_ids(channel_id: str) -> None:
    assert rules.check_channel_id(channel_id) == channel_id


@pytest.mark.parametrize("channel_id", ["", "Ops", "-ops", "_ops", "a b", "a" * 65, "ops/x", "é"])
def test_invalid_channel_ids(channel_id: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        rules.check_channel_id(channel_id)
    assert caught.value.reason == "INVALID_CHANNEL"


def test_metadata_keeps_what_is_given_and_drops_blank_options() -> None:
    given = {**GOOD, "workflow_id": "", "ext": {"k": 1}}
    assert rules.check_metadata(given, "ops") == {**GOOD, "ext": {"k": 1}}


@pytest.mark.parametrize("missing", rules.REQUIRED_METADATA)
def test_every_required_metadata_field(missing: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        rules.check_metadata({**GOOD, missing: "  "}, "ops")
    assert [v.field for v in caught.value.violations] == [f"metadata.{missing}"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"claim_token": "anything"}, "body.claim_token"),
        ({"a": [{"b": "prefix agh_claim_Zz09-_ suffix"}]}, "body.a[0].b"),
        ("agh_claim_x", "body"),
    ],
)
def test_raw_claim_tokens_are_refused(body: Any, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        rules.check_payload(body, GOOD)
    assert caught.value.reason == "CLAIM_TOKEN_FORBIDDEN"
    assert [v.field for v in caught.value.violations] == [field]


def test_the_literal_field_name_is_not_a_token() -> None:
    assert rules.check_payload("see agh_claim_token", GOOD)[0] == '"see agh_claim_token"'


def test_missing_body_and_size_limit() -> None:
    with pytest.raises(InvalidArgument):
        rules.check_payload(rules.MISSING, GOOD)
    assert rules.check_payload(None, GOOD)[0] == "null"  # JSON null is a body
    with pytest.raises(ResourceExhausted) as caught:
        rules.check_payload("x" * rules.MAX_MESSAGE_BYTES, GOOD)
    assert caught.value.reason == "MESSAGE_TOO_LARGE"


def test_kinds() -> None:
    assert rules.check_kinds([]) == list(rules.MESSAGE_KINDS)
    assert rules.check_kinds(["result", "result", "status"]) == ["result", "status"]
    with pytest.raises(InvalidArgument):
        rules.check_kinds(["gossip"])
