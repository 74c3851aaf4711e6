"""The log entries of one tracer write operation, appended together.

A 100-event ingest writes over a hundred entries (events, derived events,
turns opening and closing); one executemany for all of them costs a
fraction of one INSERT … RETURNING each. An entry's seq is known once the
buffer is flushed: `add` returns the entry's index in the buffer, `flush`
the seqs by index. Entries keep the order they were added in, so whoever
appends to the transaction directly (`Tx.append`) flushes the buffer first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from service.store.log import Entry, Tx


class PendingEntries:
    def __init__(self, tx: Tx, workspace: str) -> None:
        self.tx = tx
        self.workspace = workspace
        self._entries: list[Entry] = []

    def add(
        self,
        type: str,
        data: dict[str, Any],
        *,
        session_id: str | None = None,
        occurred_at: str | None = None,
        name: str | None = None,
        event_id: str | None = None,
    ) -> int:
        """Buffer an entry (its data serialised now, so later changes to the
        dict do not leak into it); returns its index until the next flush."""
        self._entries.append((type, session_id, occurred_at, name, event_id, orjson.dumps(data).decode()))
        return len(self._entries) - 1

    def flush(self) -> Sequence[int]:
        """Append the buffered entries; returns their seqs, by index."""
        entries, self._entries = self._entries, []
        return self.tx.append_entries(self.workspace, entries)
