"""SOUL.md parsing and validation (upstream's internal/soul): frontmatter
keys and types, forbidden and unsupported fields, reserved sections, size
limits, the digest byte for byte, and the compact projection's cuts."""

from __future__ import annotations

import hashlib

import pytest

from service.domain.agh import soul

EMPTY_CANONICAL = (
    '{"Version":"","Role":"","Tone":null,"Principles":null,"Constraints":null,'
    '"Collaboration":null,"MemoryPolicy":null,"Tags":null}'
)


def digest_of(canonical: str, body: str) -> str:
    return "sha256:" + hashlib.sha256(f"agh.soul.v1\n{canonical}\n{body}".encode()).hexdigest()


def test_reference_example_digest() -> None:
    parsed = soul.parse("---\nversion: 1\nrole: reviewer\ntone: calm\n---\nBody text\n")
    canonical = (
        '{"Version":"1","Role":"reviewer","Tone":["calm"],"Principles":null,"Constraints":null,'
        '"Collaboration":null,"MemoryPolicy":null,"Tags":null}'
    )
    assert parsed.valid
    assert parsed.digest == digest_of(canonical, "Body text")
    assert parsed.frontmatter == {"version": "1", "role": "reviewer", "tone": ["calm"]}


def test_no_frontmatter_is_all_body() -> None:
    parsed = soul.parse("# Persona\r\nBe kind.\r\n\r\n")
    assert parsed.valid and parsed.body == "# Persona\nBe kind." and parsed.frontmatter == {}
    assert parsed.digest == digest_of(EMPTY_CANONICAL, "# Persona\nBe kind.")


@pytest.mark.parametrize(
    ("frontmatter", "canonical_part"),
    [
        ("tags: []", '"Tags":[]'),
        ("tags: ['  ', x]", '"Tags":["x"]'),
        ("tags: '   '", '"Tags":null'),
        ("tags: null", '"Tags":null'),
        ("role: '<a & b>'", '"Role":"\\u003ca \\u0026 b\\u003e"'),
        ("role: ünïcode", '"Role":"ünïcode"'),
        ("version: '2.1'", '"Version":"2.1"'),
    ],
)
def test_canonical_json_is_gos(frontmatter: str, canonical_part: str) -> None:
    parsed = soul.parse(f"---\n{frontmatter}\n---\nb")
    assert parsed.valid, parsed.diagnostics
    canonical = soul.go_json(
        {
            go: (
                parsed.frontmatter.get(key, "") if key in ("version", "role") else parsed.frontmatter.get(key)
            )
            for key, go in soul._GO_NAMES.items()
        }
    )
    assert canonical_part in canonical
    assert parsed.digest == digest_of(canonical, "b")


@pytest.mark.parametrize(
    ("text", "code", "field"),
    [
        ("---\nname: x\n---\n", "forbidden_field", "name"),
        ("---\nclaim_token_hash: x\n---\n", "forbidden_field", "claim_token_hash"),
        ("---\nmemories: x\n---\n", "forbidden_field", "memories"),
        ("---\nmood: x\n---\n", "unsupported_field", "mood"),
        ("---\nrole: [a]\n---\n", "invalid_field_type", "role"),
        ("---\nversion: 1.5\n---\n", "invalid_field_type", "version"),
        ("---\nversion: true\n---\n", "invalid_field_type", "version"),
        ("---\ntone: {a: b}\n---\n", "invalid_field_type", "tone"),
        ("---\ntone: [1]\n---\n", "invalid_field_type", "tone"),
        ("---\nrole: x\n", "malformed_frontmatter", None),
        ("---\nrole: [unclosed\n---\n", "malformed_frontmatter", None),
        ("---\n- a list\n---\n", "malformed_frontmatter", None),
    ],
)
def test_frontmatter_diagnostics(text: str, code: str, field: str | None) -> None:
    parsed = soul.parse(text)
    assert not parsed.valid
    assert [(d.code, d.field, d.severity) for d in parsed.diagnostics] == [(code, field, "error")]


def test_forbidden_fields_name_their_owner_in_sorted_order() -> None:
    parsed = soul.parse("---\ntools: [a]\nlease: 1\nchannels: x\n---\n")
    assert [(d.field, d.owner_surface) for d in parsed.diagnostics] == [
        ("channels", "AGH Network presence"),
        ("lease", "runtime state"),
        ("tools", "AGENT.md"),
    ]
    assert parsed.diagnostics[2].message == 'SOUL.md frontmatter field "tools" belongs to AGENT.md'


@pytest.mark.parametrize(
    ("heading", "section"),
    [
        ("## Memory", "memory"),
        ("# Task Runs", "task_runs"),
        ("### claim-token", "claim_token"),
        ("# Spawn ##", "spawn"),
    ],
)
def test_reserved_sections(heading: str, section: str) -> None:
    parsed = soul.parse(f"---\nrole: r\n---\n\nIntro\n{heading}\ntext\n")
    assert [(d.code, d.section, d.line) for d in parsed.diagnostics] == [("reserved_section", section, 6)]


def test_ordinary_headings_are_fine() -> None:
    assert soul.parse("# How I work\n## Principles of review\n#hashtag\n").valid


def test_size_limits() -> None:
    body = "x" * (soul.MAX_BODY_BYTES + 1)
    assert [d.code for d in soul.parse(body).diagnostics] == ["oversized_body"]
    assert soul.parse("x" * soul.MAX_BODY_BYTES).valid
    front = "---\nrole: " + "r" * soul.MAX_BODY_BYTES + "\n---\nb"
    assert [d.code for d in soul.parse(front).diagnostics] == ["oversized_frontmatter"]


def test_messages_are_cut_to_300_characters() -> None:
    parsed = soul.parse(f"---\n{'k' * 400}: 1\n---\n")
    assert len(parsed.diagnostics[0].message) == 300


@pytest.mark.parametrize(
    ("present", "valid", "enabled", "status", "active"),
    [
        (False, True, True, "missing", False),
        (True, False, True, "invalid", False),
        (True, True, False, "inactive", False),
        (True, True, True, "valid", True),
    ],
)
def test_validation_status(present: bool, valid: bool, enabled: bool, status: str, active: bool) -> None:
    parsed = soul.parse("b" if valid else "---\nname: x\n---\n") if present else None
    state = soul.SoulState("a", present=present, parsed=parsed, enabled=enabled)
    assert (state.validation_status, state.active, state.valid) == (status, active, valid)


def test_compact_projection_is_cut_in_upstreams_order() -> None:
    principles = [f"principle number {i} " + "p" * 100 for i in range(30)]
    text = (
        "---\nrole: reviewer\ntone: [calm, kind]\nprinciples:\n"
        + "".join(f"  - {p}\n" for p in principles)
        + "---\nb"
    )
    record = soul.SoulRecord("a", text, "rev", "d", 0)
    compact = soul.compact(soul.state_of("a", record))
    assert compact["truncated"] is True
    assert compact["tone"] == ["calm", "kind"] and compact["role"] == "reviewer"
    assert compact["principles"] == principles[: len(compact["principles"])]
    assert 0 < len(compact["principles"]) < len(principles)
    import json

    assert (
        len(json.dumps(compact, ensure_ascii=False, separators=(",", ":")).encode())
        <= soul.CONTEXT_PROJECTION_BYTES
    )
    small = soul.compact(soul.state_of("a", soul.SoulRecord("a", "---\nrole: r\n---\nb", "rev", "d", 0)))
    assert "truncated" not in small
