"""Secret redaction for what agents send: tool inputs and outputs, bodies.

One module, standard library only, used by the hook adapter before anything
leaves the machine and by the server at ingest (for clients that do not
redact). It scans strings and key names only:

- a value under a key named like a secret (`password`, `token`, `api_key`,
  `secret`, `authorization`, ...) is replaced when it is a non-empty string;
- inside any string: well-known key formats (AWS, GitHub, OpenAI/Anthropic,
  Slack, Stripe, Google, JWTs, agentplane's `ap_` keys), PEM private-key
  blocks, and `name=value` / `name: value` assignments whose name is a
  secret's (the name is kept, the value replaced).

`redact(value)` returns the very same object when nothing matched (no copy
on the common path); containers are copied only along the path of a change.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # (typing itself costs a hook ~4 ms to import)
if TYPE_CHECKING:
    from typing import Any

REDACTED = "[REDACTED]"

# Key names whose string values are secrets. Token *counts* (inputTokens:
# 1200) are numbers and are left alone, as are keys like `pwd` (a path).
_SECRET_NAME = (
    r"(?:passwd|password|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key"
    r"|auth[_-]?token|authorization|credentials?|cookie)"
)
_SECRET_KEY = re.compile(rf"(?i)^[\w.-]*{_SECRET_NAME}[\w.-]*$")
# Key names recur (the same few dozen in every payload): remember the verdict.
_KEY_VERDICTS: dict[str, bool] = {}
_KEY_VERDICTS_MAX = 4096


def _secret_key(key: str) -> bool:
    verdict = _KEY_VERDICTS.get(key)
    if verdict is None:
        verdict = _SECRET_KEY.match(key) is not None
        if len(_KEY_VERDICTS) < _KEY_VERDICTS_MAX:
            _KEY_VERDICTS[key] = verdict
    return verdict


# Well-known key formats and private-key blocks: redacted whole. Each starts
# with a literal, so that the search skips ahead fast (no leading \\b: it
# would cost ten times as much).
_FORMATS = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|.*\Z)"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|github_pat_[A-Za-z0-9_]{30,}"
    r"|sk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|AIza[0-9A-Za-z_-]{35}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    r"|ap_[A-Za-z0-9]{24,}",
    re.DOTALL,
)
# Substrings without which `_FORMATS` cannot match: looking for them (in C)
# spares most text the regular expression.
_FORMAT_MARKERS = (
    "-----BEGIN ",
    "AKIA",
    "ASIA",
    "gh",
    "sk-",
    "xox",
    "k_live_",
    "k_test_",
    "AIza",
    "eyJ",
    "ap_",
)

# A secret's name, then NAME=value, "name": "value", name: value, or Bearer
# value: the value (not a bare number, at least 4 characters, up to a quote,
# space, comma or semicolon) is redacted, the name kept. Matched only where
# one of `_NAME_STARTS` occurs (found by str.find on the lower-cased text).
_NAME_AT = re.compile(
    rf"(?i:{_SECRET_NAME}[\w.-]*[\"']?\s*[:=]\s*[\"']?(?:bearer\s+|basic\s+)?|bearer\s+)"
    r"(?P<value>(?!\d+\b)[^\s\"',;]{4,})"
)
_NAME_STARTS = (
    "pass",
    "secret",
    "token",
    "api",
    "access",
    "private",
    "auth",
    "credential",
    "cookie",
    "bearer",
)


# Could `text` hold a secret at all? Every marker above, lower-cased, searched
# for in the lower-cased text: a literal alternation without (?i) is one fast
# scan in C (with (?i) it is ten times slower), so most text costs just that.
_MAYBE = re.compile(
    "|".join(re.escape(m) for m in sorted({m.lower() for m in _FORMAT_MARKERS + _NAME_STARTS}))
)


def _secret_spans(text: str) -> list[tuple[int, int]]:
    lower = text.lower()
    if _MAYBE.search(lower) is None:
        return []
    spans = []
    if any(marker in text for marker in _FORMAT_MARKERS):
        spans += [m.span() for m in _FORMATS.finditer(text)]
    if len(lower) != len(text):  # a character whose lower case is longer: no index shortcut
        return spans + [m.span("value") for m in _NAME_AT.finditer(text)]
    for start in _NAME_STARTS:
        at = lower.find(start)
        while at != -1:
            match = _NAME_AT.match(text, at)
            if match is not None:
                spans.append(match.span("value"))
            at = lower.find(start, at + 1)
    return spans


# Texts found clean, remembered: payloads repeat most of their strings (tool
# names, paths, commands, fixed phrases), and a lookup costs a tenth of a
# scan. Bounded; emptied when full. Only texts up to _CLEAN_MAX_LEN count.
_CLEAN: dict[str, None] = {}
_CLEAN_MAX = 8192
_CLEAN_MAX_LEN = 1024


def redact_text(text: str) -> str:
    """`text` with every secret it holds replaced (the same object if none)."""
    if text in _CLEAN:
        return text
    spans = _secret_spans(text)
    if not spans:
        if len(text) <= _CLEAN_MAX_LEN:
            if len(_CLEAN) >= _CLEAN_MAX:
                _CLEAN.clear()
            _CLEAN[text] = None
        return text
    out, last = [], 0
    for start, end in sorted(spans):
        if end <= last:
            continue  # inside a span already redacted
        if start >= last:
            out.append(text[last:start])
            out.append(REDACTED)
        last = end
    out.append(text[last:])
    return "".join(out)


def redact(value: Any) -> Any:
    """`value` (JSON-like: dicts, lists, strings, numbers) with its secrets
    replaced; the same object when nothing matched."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        changed: dict[Any, Any] | None = None
        for key, item in value.items():
            # strings first and inline, numbers skipped: most of a payload
            if isinstance(item, str):
                if item and item != REDACTED and isinstance(key, str) and _secret_key(key):
                    new: Any = REDACTED
                else:
                    new = redact_text(item)
            elif isinstance(item, (dict, list)):
                new = redact(item)
            else:
                continue
            if new is not item:
                if changed is None:
                    changed = dict(value)
                changed[key] = new
        return value if changed is None else changed
    if isinstance(value, list):
        out: list[Any] | None = None
        for i, item in enumerate(value):
            if isinstance(item, str):
                new = redact_text(item)
            elif isinstance(item, (dict, list)):
                new = redact(item)
            else:
                continue
            if new is not item:
                if out is None:
                    out = list(value)
                out[i] = new
        return value if out is None else out
    return value
