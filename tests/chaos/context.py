"""What every chaos check gets (an empty database, a directory, the sizes)
and what it answers (one line of figures, PASS or FAIL)."""

from __future__ import annotations

import random
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from tests.bench.run import ServerProcess, server_process
from tests.chaos.db import Reader


@dataclass(frozen=True)
class Sizes:
    """How hard each check pushes; the short form shrinks every size."""

    cycles: int  # kill -9 cycles
    uptime: float  # longest a server lives between kills, seconds
    followers: int  # live log:watch followers
    write_seconds: float  # each write phase of the followers check
    log_size: int  # entries the catch-up reader reads from seq 0
    connections: int  # overload: connections posting batches at once
    duration: float  # overload: seconds of load
    settle: float  # overload: quiet seconds before RSS is sampled again
    retries: int  # sends of the same write
    # Whether the speed and memory targets decide PASS. The short form runs in
    # CI on a shared 2-core machine, where timings swing by 40%: there only
    # correctness decides (nothing lost or doubled, every entry in order, no
    # 5xx, refusals only 429/503, exit within the grace), and the figures are
    # printed for the reader.
    strict: bool = True


FULL = Sizes(
    cycles=25,
    uptime=4.0,
    followers=100,
    write_seconds=10.0,
    log_size=1_000_000,
    connections=1024,
    duration=60.0,
    settle=60.0,
    retries=25,
)
SHORT = Sizes(
    cycles=3,
    uptime=1.5,
    followers=10,
    write_seconds=1.5,
    log_size=20_000,
    connections=64,
    duration=3.0,
    settle=2.0,
    retries=25,
    strict=False,
)


@dataclass
class Outcome:
    passed: bool
    figures: str
    details: list[str] = field(default_factory=list)


@dataclass
class Context:
    """What a check gets: an empty database of its backend and a directory."""

    backend: str
    database_url: str
    workdir: Path
    sizes: Sizes
    rng: random.Random

    def server(
        self, ports: tuple[int, int] | None = None, env: dict[str, str] | None = None
    ) -> AbstractContextManager[ServerProcess]:
        return server_process(self.workdir, self.database_url, ports, env)

    @cached_property
    def db(self) -> Reader:
        return Reader(self.database_url)

    def close(self) -> None:
        if "db" in self.__dict__:  # made on first use
            self.db.close()
