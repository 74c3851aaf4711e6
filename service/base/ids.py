"""Ids the server generates: UUID version 7 (RFC 9562). They are
time-ordered, so the rows and index entries of new records land at the end
of their B-trees instead of at random pages: on SQLite a random key dirties
a page (one more WAL frame at commit) per row, an ordered one shares the
last page with its neighbours."""

from __future__ import annotations

import os
import random
import time

# The random bits need to be unique, not secret: a generator seeded from the
# OS (and reseeded in a forked child) costs a tenth of a system call per id.
_random = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


def uuid7_hex() -> str:
    """A new id as 32 hex digits (the log's generated event ids)."""
    rand = _random.getrandbits(80)
    ms = time.time_ns() // 1_000_000
    high = (ms << 16) | 0x7000 | (rand >> 68)  # 48-bit time, version 7, 12 random bits
    low = 0x8000000000000000 | (rand & 0x3FFFFFFFFFFFFFFF)  # variant 10, 62 random bits
    return f"{high:016x}{low:016x}"


def uuid7() -> str:
    """A new id in the canonical form (8-4-4-4-12 hex digits)."""
    # Formatted by hand: a third of the cost of str(uuid.UUID(int=...)).
    h = uuid7_hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
