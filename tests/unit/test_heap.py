"""Memory after a burst: small objects made while a burst lasts come from
malloc, so the heap they leave behind goes back to the system even where a
few of them live on (a cached entry every thousand objects); under pymalloc
those few keep the whole burst resident. Each case is a process of its own:
the allocator is the process's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not (sys.platform == "linux" and (3, 11) <= sys.version_info[:2] <= (3, 12)),
    reason="the switch is made for CPython 3.11/3.12, malloc_trim is glibc's",
)

SCRIPT = """
import json, sys
from service.base import heap

def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))

switch = sys.argv[1] == "switch"
older = [{"n": i, "s": f"older {i}"} for i in range(100_000)]  # made before the burst
heap.give_back()
before = rss()
if switch:
    heap.burst_begins()
on_malloc = heap.small_objects_from_malloc()
del older[::2]  # freed during the burst
made = [{"n": i, "s": f"text {i}"} for i in range(400_000)]
kept = made[::1000]  # what a cache would keep
del made
if switch:
    heap.burst_ends()
heap.give_back()
after = rss()
del older, kept  # made under either allocator, freed under pymalloc
print(json.dumps({"on_malloc": on_malloc, "back": heap.small_objects_from_malloc(), "grew": after - before}))
"""


def run(mode: str, **env: str) -> dict[str, object]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")} | env
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


MB = 2**20


def test_a_burst_on_malloc_gives_its_memory_back_where_pymalloc_keeps_it() -> None:
    switched = run("switch")
    assert switched["on_malloc"] is True and switched["back"] is False
    assert switched["grew"] < 10 * MB  # 400 survivors: well under a megabyte
    kept = run("pymalloc")
    assert kept["on_malloc"] is False
    assert kept["grew"] > 40 * MB  # the same survivors pin the burst's arenas


def test_no_switch_where_pymalloc_is_not_the_allocator() -> None:
    for env in ({"PYTHONMALLOC": "malloc"}, {"PYTHONMALLOC": "pymalloc_debug"}, {"PYTHONTRACEMALLOC": "1"}):
        result = run("switch", **env)
        assert result["on_malloc"] is False, env


def test_a_budget_with_the_burst_allocator_off_never_switches() -> None:
    from service.base import heap
    from service.rpc.admission import BURST_BYTES, ByteBudget

    off = ByteBudget(8 * MB, burst_allocator=False)
    assert off.try_acquire(BURST_BYTES * 2)
    assert not heap.small_objects_from_malloc()
    off.close()
    on = ByteBudget(8 * MB)
    assert on.try_acquire(BURST_BYTES * 2)
    try:
        assert heap.small_objects_from_malloc() or tracemalloc.is_tracing()  # (tracing: left alone)
    finally:
        on.close()  # back to pymalloc before the next test
    assert not heap.small_objects_from_malloc()
