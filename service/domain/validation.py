"""Checks on caller data that every backend must apply alike."""

from __future__ import annotations

from typing import Any

from service.domain.errors import invalid


def reject_nul_characters(value: Any, path: str = "") -> None:
    """Refuse U+0000 in any string: PostgreSQL cannot store it in text or
    JSONB, and a request must not succeed on SQLite and fail on PostgreSQL."""
    if isinstance(value, str):
        if "\x00" in value:
            raise invalid(path or "value", "must not contain the character U+0000")
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_nul_characters(key, path)
            reject_nul_characters(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            reject_nul_characters(item, f"{path}[{i}]")
