"""A one-line progress report on stderr, only when stderr is a terminal
(scripts and pipes get the final summary alone)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None, every: float = 0.1) -> None:
        self.stream = stream or sys.stderr
        self.on = self.stream.isatty()
        self._every = every
        self._next = 0.0
        self._shown = False

    def show(self, line: str, *, force: bool = False) -> None:
        """Replace the line shown (at most every `every` seconds unless forced)."""
        if not self.on:
            return
        now = time.monotonic()
        if not force and now < self._next:
            return
        self._next = now + self._every
        self.stream.write(f"\r\x1b[K{line}")
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        """End the line, so what follows starts on its own."""
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False
