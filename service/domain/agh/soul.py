"""Souls: an agent's SOUL.md persona, parsed and validated as upstream's
`internal/soul` does, and kept per agent of a workspace.

A SOUL.md is optional YAML frontmatter between `---` lines, then a Markdown
body (CRLF and CR read as LF; blank lines before the body and trailing
whitespace are trimmed). Frontmatter keys: `version` (string or integer),
`role` (string), and `tone`, `principles`, `constraints`, `collaboration`,
`memory_policy`, `tags` (a string or a list of strings; blank items are
dropped). Keys that belong to another surface (`name`, `tools`, `lease`, …)
are `forbidden_field`, others `unsupported_field`, wrong types
`invalid_field_type`; a heading whose title is such a key is
`reserved_section`; a body or frontmatter over `max_body_bytes` (32,768) is
`oversized_body` / `oversized_frontmatter`. Every diagnostic is an error.

The digest is upstream's, byte for byte: "sha256:" + hex SHA-256 of
"agh.soul.v1\\n" + the frontmatter as Go's encoding/json writes its struct +
"\\n" + the body. Operators set souls (only valid ones are stored); agents
read their own and validate drafts.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml  # type: ignore[import-untyped]

from service.base.ids import uuid7
from service.domain.agh.common import invalid_field, now_us
from service.domain.agh.identity import Claimed, check_workspace, require_headers, resolve
from service.domain.validation import reject_nul_characters
from service.store.agh import tasks as q
from service.store.agh.tasks import SoulRecord
from service.store.log import Tx
from service.store.store import Store

MAX_BODY_BYTES = 32_768
CONTEXT_PROJECTION_BYTES = 2_048
ENABLED = True
MESSAGE_LIMIT = 300
LIST_KEYS = ("tone", "principles", "constraints", "collaboration", "memory_policy", "tags")
# Go field names, in struct order: the canonical JSON's keys.
_GO_NAMES = {
    "version": "Version",
    "role": "Role",
    "tone": "Tone",
    "principles": "Principles",
    "constraints": "Constraints",
    "collaboration": "Collaboration",
    "memory_policy": "MemoryPolicy",
    "tags": "Tags",
}
OWNED: dict[str, tuple[str, ...]] = {
    "AGENT.md": (
        "name",
        "provider",
        "command",
        "model",
        "tools",
        "toolsets",
        "deny_tools",
        "permissions",
        "mcp_servers",
        "hooks",
        "prompt",
    ),
    "capabilities": ("capabilities", "capability"),
    "task runtime": ("tasks", "task", "task_runs", "run", "ownership", "claim_token", "claim_token_hash"),
    "runtime state": ("scheduler", "heartbeat", "lease", "session", "session_liveness", "activity", "wake"),
    "AGH Network presence": ("network", "channels", "peers", "presence"),
    "session spawn overlays": ("spawn",),
    "config": ("env", "config", "defaults", "providers", "sandboxes", "settings"),
    "memory runtime": ("memory", "memory_store", "memory_scope", "memory_type", "memories"),
}
OWNER = {key: owner for owner, keys in OWNED.items() for key in keys}
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$")
_NON_WORD = re.compile(r"[^a-z0-9]+")


@dataclass
class Diagnostic:
    code: str
    message: str
    field: str | None = None
    section: str | None = None
    line: int | None = None
    owner_surface: str | None = None
    severity: str = "error"


@dataclass
class Parsed:
    """A SOUL.md read: its frontmatter (normalised), body, problems and digest."""

    frontmatter: dict[str, Any]
    body: str
    diagnostics: list[Diagnostic]
    digest: str

    @property
    def valid(self) -> bool:
        return not self.diagnostics


@dataclass
class SoulState:
    """What GET /soul, /soul/validate and SetAgentSoul answer."""

    agent_name: str
    present: bool
    parsed: Parsed | None = None
    stored: SoulRecord | None = None
    enabled: bool = ENABLED
    limits: dict[str, int] = field(
        default_factory=lambda: {
            "max_body_bytes": MAX_BODY_BYTES,
            "context_projection_bytes": CONTEXT_PROJECTION_BYTES,
        }
    )

    @property
    def valid(self) -> bool:
        return self.parsed is None or self.parsed.valid

    @property
    def active(self) -> bool:
        return self.present and self.valid and self.enabled

    @property
    def validation_status(self) -> str:
        if not self.present:
            return "missing"
        if not self.valid:
            return "invalid"
        return "valid" if self.enabled else "inactive"


def _diag(code: str, message: str, **where: Any) -> Diagnostic:
    return Diagnostic(code, message[:MESSAGE_LIMIT], **where)


def go_json(value: Any) -> str:
    """JSON as Go's encoding/json writes it: no spaces, `<`, `>`, `&`, U+2028
    and U+2029 escaped, other non-ASCII characters raw."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text


def digest(frontmatter: dict[str, Any], body: str) -> str:
    canonical: dict[str, Any] = {}
    for key, go_name in _GO_NAMES.items():
        value = frontmatter.get(key)
        canonical[go_name] = (value if value is not None else "") if key in ("version", "role") else value
    material = "agh.soul.v1\n" + go_json(canonical) + "\n" + body
    return "sha256:" + hashlib.sha256(material.encode("utf-8")).hexdigest()


def _split(text: str) -> tuple[str | None, str, int, Diagnostic | None]:
    """(frontmatter text or None, body, the body's first line, a problem)."""
    lines = text.split("\n")
    if lines[0].rstrip() != "---":
        return None, text, 1, None
    for i in range(1, len(lines)):
        if lines[i].rstrip() == "---":
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :]), i + 2, None
    problem = _diag("malformed_frontmatter", "SOUL.md frontmatter is not terminated by a --- line", line=1)
    return None, "", 1, problem


def _list_value(key: str, value: Any, diagnostics: list[Diagnostic]) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value.strip()] if value.strip() else None
    if isinstance(value, list):
        items: list[str] = []
        for item in value:
            if not isinstance(item, str):
                diagnostics.append(
                    _diag(
                        "invalid_field_type",
                        f'SOUL.md frontmatter field "{key}" must be a string or a list of strings',
                        field=key,
                    )
                )
                return None
            if item.strip():
                items.append(item.strip())
        return items
    diagnostics.append(
        _diag(
            "invalid_field_type",
            f'SOUL.md frontmatter field "{key}" must be a string or a list of strings',
            field=key,
        )
    )
    return None


def _frontmatter(raw: dict[Any, Any], diagnostics: list[Diagnostic]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(raw, key=str):
        value = raw[key]
        name = str(key)
        if name in OWNER:
            owner = OWNER[name]
            diagnostics.append(
                _diag(
                    "forbidden_field",
                    f'SOUL.md frontmatter field "{name}" belongs to {owner}',
                    field=name,
                    owner_surface=owner,
                )
            )
        elif name == "version":
            if isinstance(value, bool) or not isinstance(value, str | int | type(None)):
                diagnostics.append(
                    _diag(
                        "invalid_field_type",
                        'SOUL.md frontmatter field "version" must be a string or an integer',
                        field=name,
                    )
                )
            elif value is not None:
                out["version"] = str(value).strip()
        elif name == "role":
            if not isinstance(value, str | type(None)):
                diagnostics.append(
                    _diag(
                        "invalid_field_type", 'SOUL.md frontmatter field "role" must be a string', field=name
                    )
                )
            elif value is not None:
                out["role"] = value.strip()
        elif name in LIST_KEYS:
            items = _list_value(name, value, diagnostics)
            if items is not None:
                out[name] = items
        else:
            diagnostics.append(
                _diag("unsupported_field", f'SOUL.md frontmatter field "{name}" is not supported', field=name)
            )
    return out


def _reserved_sections(body: str, first_line: int, diagnostics: list[Diagnostic]) -> None:
    for offset, line in enumerate(body.split("\n")):
        m = _HEADING.match(line)
        if not m:
            continue
        title = _NON_WORD.sub("_", m.group(1).lower()).strip("_")
        if title in OWNER:
            diagnostics.append(
                _diag(
                    "reserved_section",
                    f'SOUL.md section "{m.group(1).strip()}" belongs to {OWNER[title]}',
                    section=title,
                    line=first_line + offset,
                    owner_surface=OWNER[title],
                )
            )


def parse(text: str, max_body_bytes: int = MAX_BODY_BYTES) -> Parsed:
    """Read and validate a SOUL.md text."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    diagnostics: list[Diagnostic] = []
    front_text, body, first_line, problem = _split(text)
    if problem is not None:
        diagnostics.append(problem)
    frontmatter: dict[str, Any] = {}
    if front_text is not None:
        if len(front_text.encode()) > max_body_bytes:
            diagnostics.append(
                _diag("oversized_frontmatter", f"SOUL.md frontmatter is larger than {max_body_bytes} bytes")
            )
        try:
            raw = yaml.safe_load(front_text) if front_text.strip() else {}
        except yaml.YAMLError as exc:
            diagnostics.append(
                _diag("malformed_frontmatter", f"SOUL.md frontmatter is not valid YAML: {exc}", line=2)
            )
            raw = {}
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            diagnostics.append(
                _diag("malformed_frontmatter", "SOUL.md frontmatter must be a YAML mapping", line=2)
            )
            raw = {}
        frontmatter = _frontmatter(raw, diagnostics)
    stripped = body.lstrip("\n")
    first_line += body.count("\n") - stripped.count("\n")
    body = stripped.rstrip()
    if len(body.encode()) > max_body_bytes:
        diagnostics.append(_diag("oversized_body", f"SOUL.md body is larger than {max_body_bytes} bytes"))
    _reserved_sections(body, first_line, diagnostics)
    return Parsed(frontmatter, body, diagnostics, digest(frontmatter, body))


def config_digest() -> str:
    config = {
        "enabled": ENABLED,
        "max_body_bytes": MAX_BODY_BYTES,
        "context_projection_bytes": CONTEXT_PROJECTION_BYTES,
    }
    return "sha256:" + hashlib.sha256(go_json(config).encode()).hexdigest()


def state_of(agent_name: str, stored: SoulRecord | None) -> SoulState:
    if stored is None:
        return SoulState(agent_name, present=False)
    return SoulState(agent_name, present=True, parsed=parse(stored.body), stored=stored)


def compact(state: SoulState) -> dict[str, Any]:
    """The soul as the context shows it, cut to `context_projection_bytes` of
    JSON: principles from the end, then tone from the end, then role
    characters, then the source path, then the digest (`truncated` then)."""
    parsed = state.parsed
    out: dict[str, Any] = {
        "enabled": state.enabled,
        "present": state.present,
        "active": state.active,
        "valid": state.valid,
        "validation_status": state.validation_status,
        "config_digest": config_digest(),
        "tone": list(parsed.frontmatter.get("tone", [])) if parsed else [],
        "principles": list(parsed.frontmatter.get("principles", [])) if parsed else [],
        "max_bytes": CONTEXT_PROJECTION_BYTES,
        "max_body_bytes": MAX_BODY_BYTES,
    }
    if state.stored is not None and parsed is not None:
        out.update(snapshot_id=state.stored.revision_id, digest=parsed.digest)
        if parsed.frontmatter.get("role"):
            out["role"] = parsed.frontmatter["role"]

    def size() -> int:
        return len(json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode())

    truncated = False
    for step in ("principles", "tone", "role", "source_path", "digest"):
        while size() > CONTEXT_PROJECTION_BYTES:
            if step in ("principles", "tone") and out[step]:
                out[step].pop()
            elif step == "role" and out.get("role"):
                out["role"] = out["role"][:-1]
            elif step in ("source_path", "digest") and step in out:
                del out[step]
            else:
                break
            truncated = True
    if truncated:
        out["truncated"] = True
    return out


async def get_soul(store: Store, workspace: str, agent_name: str) -> SoulState:
    return await store.read(lambda conn: state_of(agent_name, q.get_soul(conn, workspace, agent_name)))


async def caller_soul(store: Store, workspace: str, claimed: Claimed) -> SoulState:
    """The caller's agent's soul."""
    require_headers(claimed)

    def read(conn: Any) -> SoulState:
        caller = resolve(conn, workspace, claimed)
        return state_of(caller.agent_name, q.get_soul(conn, workspace, caller.agent_name))

    return await store.read(read)


async def validate(
    store: Store, workspace: str, claimed: Claimed, workspace_id: str, agent_name: str, body: str
) -> SoulState:
    """Validate `body`, or the agent's current soul when it is blank; stores nothing."""
    require_headers(claimed)
    reject_nul_characters({"workspace_id": workspace_id, "agent_name": agent_name, "body": body})

    def read(conn: Any) -> SoulState:
        caller = resolve(conn, workspace, claimed)
        check_workspace(workspace, workspace_id.strip())
        agent = agent_name.strip() or caller.agent_name
        stored = q.get_soul(conn, workspace, agent)
        if not body.strip():
            return state_of(agent, stored)
        return SoulState(agent, present=True, parsed=parse(body))

    return await store.read(read)


async def set_soul(
    store: Store, workspace: str, agent_name: str, body: str, *, actor: dict[str, str]
) -> SoulState:
    """Store an agent's soul (a blank body removes it). An invalid text is not
    stored: the state returned says why (`valid` false, diagnostics)."""
    agent = agent_name.strip()
    reject_nul_characters({"agent_name": agent_name, "body": body})
    if not agent:
        raise invalid_field("agent_name", "is required", area="soul")
    if not body.strip():
        parsed = None
    else:
        parsed = parse(body)
        if not parsed.valid:
            return SoulState(agent, present=True, parsed=parsed)

    def op(tx: Tx) -> SoulState:
        record = None
        if parsed is not None:
            record = SoulRecord(agent, body, uuid7(), parsed.digest, now_us())
        q.put_soul(tx, workspace, record, agent)
        data = {"agent_name": agent, "actor": actor}
        if record is not None:
            data.update(revision_id=record.revision_id, digest=record.digest)
        tx.append("agent_soul.set" if record else "agent_soul.removed", workspace, data)
        return state_of(agent, record)

    return await store.write(op)
