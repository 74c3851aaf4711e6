"""Live log readers as curl processes (as a user would follow the log;
cheap enough that the server, not the followers, is what gets measured),
their output kept in files and read afterwards."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ENTRY_SEQ = re.compile(rb'"entry":\{"seq":"?(\d+)')


class Follower:
    def __init__(self, url: str, out: Path, max_seconds: float) -> None:
        self.out = out
        self.file = out.open("wb")
        self.proc = subprocess.Popen(
            ["curl", "-sSN", "--max-time", str(int(max_seconds)), url],
            stdout=self.file,
            stderr=subprocess.DEVNULL,
        )

    def has(self, needle: bytes) -> bool:
        """Whether the output so far holds needle (in its last 64 KiB)."""
        with self.out.open("rb") as f:
            f.seek(max(0, self.out.stat().st_size - 65536))
            return needle in f.read()

    def started(self) -> bool:
        return self.out.stat().st_size > 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait()
        self.file.close()

    def seqs(self) -> list[int]:
        return [int(s) for s in ENTRY_SEQ.findall(self.out.read_bytes())]
