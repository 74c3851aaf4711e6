"""Secret redaction (agentplane_client.redaction): what the hook adapter
applies before anything leaves the machine and the server at ingest."""

from __future__ import annotations

import pytest
from agentplane_client.redaction import REDACTED, redact, redact_text

GITHUB = "ghp_" + "16C7e42F292c6912E7710c838347Ae178B4a"
OPENAI = "sk-proj-" + "abcdefghijklmnopqrstuvwx1234"
ANTHROPIC = "sk-ant-api03-" + "AbCdEfGhIjKlMnOpQrStUvWxYz012345"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nx2b3+zzz\n-----END RSA PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"token {GITHUB} here", f"token {REDACTED} here"),
        (f"OPENAI={OPENAI}", f"OPENAI={REDACTED}"),
        (f"key: {ANTHROPIC}", f"key: {REDACTED}"),
        ("aws AKIAIOSFODNN7EXAMPLE done", f"aws {REDACTED} done"),
        ("slack xoxb-123456789012-abcdefghij", f"slack {REDACTED}"),
        ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", f"stripe {REDACTED}"),
        ("google AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", f"google {REDACTED}"),
        (f"Cookie: session={JWT}", f"Cookie: {REDACTED}"),
        (f"id_token {JWT}.", f"id_token {REDACTED}."),
        ("agentplane ap_" + "x" * 32, f"agentplane {REDACTED}"),
        (f"before\n{PEM}\nafter", f"before\n{REDACTED}\nafter"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk (cut)", REDACTED),
        ("export API_KEY=abcd1234xyz", f"export API_KEY={REDACTED}"),
        ("DB_PASSWORD='hunter2!x' ./run", f"DB_PASSWORD='{REDACTED}' ./run"),
        ('{"client_secret": "s3cr3t-value"}', f'{{"client_secret": "{REDACTED}"}}'),
        ("password: hunter22", f"password: {REDACTED}"),
        ('curl -H "Authorization: Bearer abcdefgh12" x', f'curl -H "Authorization: Bearer {REDACTED}" x'),
    ],
)
def test_secrets_in_text_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens=1000",  # a number is not a secret
        "inputTokens: 1200, outputTokens: 300",
        "the token limit is high; reset your password via the link",
        "cd /home/dev/shop && pytest -q tests/test_checkout.py",
        "git commit -m 'Fix total() for an empty cart'",
        "sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "uuid 550e8400-e29b-41d4-a716-446655440000, ask-me-anything",
        "",
    ],
)
def test_what_merely_looks_like_a_secret_is_left_alone(text: str) -> None:
    assert redact_text(text) is text


def test_values_under_secret_keys_are_redacted_at_any_depth() -> None:
    value = {
        "command": "deploy",
        "env": {"API_KEY": "abc", "REGION": "eu-west-1", "db_password": "pw"},
        "headers": [{"Authorization": "Basic dXNlcjpwYXNz"}, {"Accept": "json"}],
        "inputTokens": 1200,  # a count, not a secret
        "pwd": "/home/dev",
        "tokenCount": 3,
    }
    assert redact(value) == {
        "command": "deploy",
        "env": {"API_KEY": REDACTED, "REGION": "eu-west-1", "db_password": REDACTED},
        "headers": [{"Authorization": REDACTED}, {"Accept": "json"}],
        "inputTokens": 1200,
        "pwd": "/home/dev",
        "tokenCount": 3,
    }


def test_nothing_is_copied_when_nothing_matches() -> None:
    value = {"a": [1, "two", {"b": None, "c": 3.5}], "d": True}
    assert redact(value) is value
    changed = {"keep": {"x": [1]}, "secret": "s"}
    out = redact(changed)
    assert out == {"keep": {"x": [1]}, "secret": REDACTED}
    assert out["keep"] is changed["keep"] and changed["secret"] == "s"  # the input is not modified


def test_redaction_is_idempotent() -> None:
    once = redact({"token": "abc", "out": f"GITHUB={GITHUB}"})
    assert redact(once) is once
