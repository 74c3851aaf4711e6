"""Idempotency keys: what a retried write gets.

A write sent with an idempotency key (`Idempotency-Key` header, gRPC
metadata `idempotency-key`) is recorded with the key in the transaction of
its first write, and its answer right after. A retry with the same key, for
the same RPC in the same workspace, within the window, gets that answer and
writes nothing. The decisions live here; the store keeps the rows
(service.store.idempotency), the call chain applies them
(service.rpc.idempotency).
"""

from __future__ import annotations

import hashlib

from service.base.errors import Aborted, AlreadyExists, CommonReason, FieldViolation, InvalidArgument
from service.store.idempotency import Stored

HEADER = "idempotency-key"
# A UUID is 36 characters; the limit leaves room for any client's scheme and
# stays far below PostgreSQL's index-row limit.
MAX_KEY_LENGTH = 255

KEY_REUSED = CommonReason.IDEMPOTENCY_KEY_REUSED
ANSWER_LOST = CommonReason.IDEMPOTENCY_ANSWER_LOST


def checked_key(raw: str) -> str:
    """The key as sent, if it is one: 1 to MAX_KEY_LENGTH visible ASCII characters."""
    if not 0 < len(raw) <= MAX_KEY_LENGTH or not all(" " < c <= "~" for c in raw):
        raise InvalidArgument(
            f"the idempotency key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters",
            reason=CommonReason.INVALID_IDEMPOTENCY_KEY,
            violations=[FieldViolation(HEADER, f"must be 1 to {MAX_KEY_LENGTH} visible ASCII characters")],
        )
    return raw


def fingerprint(request: bytes) -> str:
    """What identifies a request: its serialised message (deterministic)."""
    return hashlib.sha256(request).hexdigest()


def replayable(stored: Stored, fingerprint: str) -> Stored:
    """The stored answer a retry gets; or why it gets none (nothing is written either way)."""
    if stored.fingerprint != fingerprint:
        raise AlreadyExists(
            "this idempotency key was used with a different request; use a new key for a new request",
            reason=KEY_REUSED,
        )
    if stored.answer is None:
        raise Aborted(
            "the request with this idempotency key was committed, but its answer is not available "
            "(lost in a crash, or still being stored by another server); it is not applied again",
            reason=ANSWER_LOST,
        )
    return stored
