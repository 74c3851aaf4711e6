"""Checks on caller data that every backend must apply alike."""

from __future__ import annotations

from typing import Any

import orjson

from service.base.errors import invalid


def reject_nul_characters(value: Any, path: str = "") -> None:
    """Refuse U+0000 in any string: PostgreSQL cannot store it in text or
    JSONB, and a request must not succeed on SQLite and fail on PostgreSQL."""
    # One C-speed scan for the common case; the walk below only runs to name the field.
    try:
        if b"\\u0000" not in orjson.dumps(value):
            return
    except orjson.JSONEncodeError:  # e.g. an integer past 64 bits: walk instead
        pass
    _find_nul(value, path)


def _find_nul(value: Any, path: str) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise invalid(path or "value", "must not contain the character U+0000")
    elif isinstance(value, dict):
        for key, item in value.items():
            _find_nul(key, path)
            _find_nul(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _find_nul(item, f"{path}[{i}]")
