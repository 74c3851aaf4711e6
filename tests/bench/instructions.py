"""Server instructions per event, counted by callgrind: a figure that the
machine's load does not move, for comparing two builds or settings of the
write path back to back on a busy machine (CPU time per event swings by
tens of percent there). Needs valgrind.

    python -m tests.bench.instructions                         # runtime events, Trenchcoat batches
    python -m tests.bench.instructions --trenchcoat-connections 16 PYTHONMALLOC=malloc

`agentplane serve` runs under callgrind with instrumentation off (start-up
takes a minute or two), is warmed up with 300 runtime events, then counts
instructions (every thread's, user space only: not the kernel's) over
`--events` single runtime events on 16 connections and `--batches`
1,000-event Trenchcoat batches. NAME=VALUE arguments go to the server's
environment.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.bench.run import runtime_events, server_process
from tests.bench.trenchcoat import BATCH, trenchcoat_events


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def _instructions(out: Path, pid: int, tag: str) -> int:
    """The instructions of the dump made with `tag` (one file per dump)."""
    for part in out.parent.glob(f"{out.name}.{pid}.*"):
        text = part.read_text(errors="replace")
        if f"\ndesc: Trigger: dump {tag}\n" in text:
            return sum(int(line.split()[1]) for line in text.splitlines() if line.startswith("totals:"))
    raise RuntimeError(f"no callgrind dump {tag} in {out.parent}")


def measure(env: dict[str, str], events: int, batches: int, connections: int) -> tuple[float, float]:
    """(instructions per runtime event, per Trenchcoat event)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind"
        valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}.%p"]
        with server_process(Path(tmp), env=env, wrapper=valgrind, start_seconds=900) as srv:
            runtime_events(srv, 300, 16, prefix="warm")

            def counted(tag: str, run: Callable[[], object]) -> int:
                _control(srv.pid, "--zero")
                _control(srv.pid, "--instr=on")
                run()
                _control(srv.pid, "--instr=off")
                _control(srv.pid, "--dump=" + tag)
                return _instructions(out, srv.pid, tag)

            runtime = counted("runtime", lambda: runtime_events(srv, events, 16, prefix="counted"))
            trenchcoat = counted("trenchcoat", lambda: trenchcoat_events(srv, batches, connections))
    return runtime / events, trenchcoat / (batches * BATCH)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=2000, help="runtime events counted")
    parser.add_argument("--batches", type=int, default=10, help="Trenchcoat batches counted")
    parser.add_argument("--trenchcoat-connections", type=int, default=4)
    parser.add_argument("env", nargs="*", metavar="NAME=VALUE", help="the server's environment")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    runtime, trenchcoat = measure(env, args.events, args.batches, args.trenchcoat_connections)
    print(
        f"{' '.join(args.env) or 'default'}: runtime events {runtime / 1e3:,.1f}k instructions/event, "
        f"Trenchcoat ({args.trenchcoat_connections} connections) {trenchcoat / 1e3:,.1f}k instructions/event"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
