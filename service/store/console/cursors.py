"""Page tokens: opaque to callers, URL-safe base64 of a small JSON object that
names the list it belongs to and the filters it was made with, so a token
reused on another list or with other filters is refused rather than
silently skipping or repeating items."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import orjson

from service.base.errors import InvalidArgument, invalid

FIELD = "page_token"


def _stamp(list_name: str, filters: tuple[Any, ...]) -> str:
    return hashlib.sha256(orjson.dumps([list_name, *filters])).hexdigest()[:12]


def encode(list_name: str, filters: tuple[Any, ...], position: Any) -> str:
    """A token for `position` in the list `list_name` under `filters`."""
    raw = orjson.dumps({"l": _stamp(list_name, filters), "p": position})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(list_name: str, filters: tuple[Any, ...], token: str) -> Any:
    """The position a token holds (None for an empty token); INVALID_ARGUMENT
    naming `page_token` when it is not one of this list's tokens."""
    if not token:
        return None
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        data = None
    if not isinstance(data, dict) or data.get("l") != _stamp(list_name, filters) or "p" not in data:
        raise refused()
    return data["p"]


def refused() -> InvalidArgument:
    """The error of a token this list did not give."""
    return invalid(FIELD, "is not a token this list gave (for these filters)")


def checked(position: Any, *shape: type) -> Any:
    """`position` when it is a list of values of these types, else the same
    INVALID_ARGUMENT (a token edited by hand)."""
    if (
        not isinstance(position, list)
        or len(position) != len(shape)
        or not all(
            isinstance(v, t) and not (t is int and isinstance(v, bool))
            for v, t in zip(position, shape, strict=True)
        )
    ):
        raise refused()
    return position
