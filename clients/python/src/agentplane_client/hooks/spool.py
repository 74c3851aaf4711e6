"""The on-disk spool: plans the server did not take in time, kept in order.

`spool.jsonl` holds one plan per line (see plan.py), oldest first. Hooks
run concurrently (an agent fires several at once), so:

- `spool.lock` (flock) guards every read-modify-write of the file, and is
  held only for a short read or append; the file is opened under the lock,
  so a rewrite (a new file renamed into place) never loses an append;
- `flush.lock` (flock, non-blocking) lets one hook at a time deliver the
  spool; a hook that finds it taken, or a spool it could not empty in its
  time budget, appends its own plan behind the others, keeping the order.

Delivery reads the file from the start, plan by plan, and stops at the
first the server does not take; then (only if something went through) it
removes the delivered prefix, and a partly delivered plan is replaced by
what is left of it. With the server down a hook reads one line and writes
one line, whatever the size of the spool. A line that is not a plan (a torn write, an edit by
hand) is moved to `spool.bad` and the good ones are kept. The file is
bounded (`AGENTPLANE_HOOK_SPOOL_MAX_BYTES`): past it, new plans are dropped
and logged, so that a long outage never fills the disk.

`backlog()` is what each call tells the server (the transport's
`Agentplane-Hook-Spool` header): the plans waiting, the one being delivered
included. It is counted once per run, when the server first answers (with
the server down nothing is read for it), then kept up to date as the run
delivers and appends; other hooks' appends meanwhile are not counted.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager

TYPE_CHECKING = False  # (typing itself costs a hook ~4 ms to import)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from agentplane_client.hooks.plan import Plan


def _line(plan: Plan) -> bytes:
    return (json.dumps(plan, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


class Spool:
    def __init__(self, directory: str, max_bytes: int, log: Callable[[str], None]) -> None:
        self.dir = directory
        self.path = os.path.join(directory, "spool.jsonl")
        self.bad_path = os.path.join(directory, "spool.bad")
        self.max_bytes = max_bytes
        self.log = log
        self._entries: int | None = None  # see backlog()

    def pending(self) -> bool:
        try:
            return os.stat(self.path).st_size > 0
        except FileNotFoundError:
            return False

    def backlog(self) -> int | None:
        """The plans waiting (lines of the file); None when it cannot be read."""
        if self._entries is None:
            try:
                self._entries = self._read().count(b"\n") if self.pending() else 0
            except OSError:
                return None
        return self._entries

    def _counted(self, lines: int) -> None:
        if self._entries is not None:
            self._entries = max(0, self._entries + lines)

    def _took(self, raw: bytes) -> int:
        """A line leaves the spool (delivered, blank or set aside): its size."""
        self._counted(-1)
        return len(raw)

    @contextmanager
    def _lock(self, name: str, blocking: bool = True) -> Iterator[bool]:
        """Hold `name` (flock); yields False when non-blocking and taken."""
        os.makedirs(self.dir, exist_ok=True)
        fd = os.open(os.path.join(self.dir, name), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # closing releases the lock

    def append(self, plan: Plan) -> bool:
        line = _line(plan)
        with self._lock("spool.lock"):
            size = os.stat(self.path).st_size if os.path.exists(self.path) else 0
            if size + len(line) > self.max_bytes:
                self.log(f"spool full ({size} bytes): {plan.get('hook')} plan {plan.get('id')} dropped")
                return False
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # after a torn line (a writer died): keep ours whole
                os.write(fd, line)
            finally:
                os.close(fd)
        self._counted(1)
        return True

    def read(self) -> list[Plan]:
        """The spooled plans (the good lines), oldest first."""
        with self._lock("spool.lock"):
            data = self._read()
        plans = [_parse(raw) for raw in data.splitlines()]
        return [p for p in plans if p is not None]

    def _read(self) -> bytes:
        try:
            with open(self.path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def flush(self, deliver: Callable[[Plan], Plan | None], time_left: Callable[[], float]) -> bool:
        """Deliver spooled plans in order while time is left (`deliver` returns
        what is left of a plan: None when all of it went through, the plan
        itself when none of it did). True when the spool is empty afterwards."""
        if not self.pending():
            return True
        with self._lock("flush.lock", blocking=False) as mine:
            if not mine:
                return False  # another hook is delivering it
            while True:
                consumed, left, bad, done = 0, None, [], True
                # Appends are whole lines, made under spool.lock.
                with open(self.path, "rb") as f:
                    for raw in f:
                        if not raw.endswith(b"\n"):
                            # being appended as we read (then the next pass takes it), or
                            # torn by a writer that died: set aside, or it would block the spool
                            if self._torn():
                                bad.append(raw + b"\n")
                                consumed += len(raw)  # no newline: never counted
                            break
                        if not raw.strip():
                            consumed += self._took(raw)
                            continue
                        plan = _parse(raw)
                        if plan is None:
                            bad.append(raw)
                            consumed += self._took(raw)
                            continue
                        if time_left() <= 0:
                            done = False
                            break
                        rest = deliver(plan)
                        if rest is plan:  # nothing went through
                            done = False
                            break
                        consumed += self._took(raw)
                        if rest is not None:
                            self._counted(1)  # what is left of it goes back in front
                            left, done = rest, False
                            break
                if consumed or left is not None:
                    self._remove_prefix(consumed, left)
                if bad:
                    self.log(f"spool: {len(bad)} corrupt line(s) moved to {self.bad_path}")
                    with open(self.bad_path, "ab") as f:
                        f.writelines(bad)
                if not done:
                    return False
                if not self.pending():
                    return True

    def _torn(self) -> bool:
        """Whether the file ends in a partial line though no append is under way."""
        with self._lock("spool.lock"):
            return not self._read().endswith(b"\n")

    def _remove_prefix(self, consumed: int, left: Plan | None) -> None:
        """Drop the first `consumed` bytes (delivered or set aside); put what is
        left of a partly delivered plan back in front."""
        with self._lock("spool.lock"):
            rest = self._read()[consumed:]
            if left is not None:
                rest = _line(left) + rest
            tmp = self.path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(rest)
            os.replace(tmp, self.path)


def _parse(raw: bytes) -> Plan | None:
    try:
        plan = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(plan, dict) or not isinstance(plan.get("steps"), list) or "hook" not in plan:
        return None
    return plan
