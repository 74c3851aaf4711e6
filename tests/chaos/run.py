"""`make chaos`: the reliability suite. Each check starts `agentplane serve`
as a real process (tests/bench/run.py's helper), on SQLite and on PostgreSQL,
drives it over loopback, and reads the database directly to account for
what was stored. Every check prints one line of figures and PASS or FAIL;
the run ends with `N passed, M failed` and exits non-zero on a failure.

    make chaos                              # the full form (sizes below)
    make chaos CHAOS_ARGS=--short           # the short form CI runs (under 2 minutes)
    make chaos CHAOS_ARGS="--check kill9 --backend sqlite --cycles 5"

PostgreSQL: AGENTPLANE_CHAOS_POSTGRES_URL, else AGENTPLANE_TEST_POSTGRES_URL,
else the local server; the run makes a database of its own and drops it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import fields, replace
from pathlib import Path

from tests.chaos.context import FULL, SHORT, Context, Outcome, Sizes
from tests.chaos.db import fresh_database, postgres_database

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CHECKS = ["kill9", "followers", "catchup", "overload", "bad-input", "retries"]


def _check(name: str) -> Callable[[Context], Outcome]:
    module = importlib.import_module(f"tests.chaos.{name.replace('-', '_')}")
    check: Callable[[Context], Outcome] = module.run
    return check


def _backends(names: list[str], postgres_url: str, stack: ExitStack) -> Iterator[tuple[str, str | None]]:
    for name in names:
        if name == "postgres":
            yield name, stack.enter_context(postgres_database(postgres_url))
        else:
            yield name, None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--short", action="store_true", help="the short form (CI)")
    parser.add_argument("--check", action="append", choices=CHECKS)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--seed", type=int, default=int(time.time()))
    for f in fields(Sizes):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(getattr(FULL, f.name)))
    args = parser.parse_args()
    base = SHORT if args.short else FULL
    sizes = replace(base, **{f.name: v for f in fields(Sizes) if (v := getattr(args, f.name)) is not None})
    postgres_url = (
        os.environ.get("AGENTPLANE_CHAOS_POSTGRES_URL")
        or os.environ.get("AGENTPLANE_TEST_POSTGRES_URL")
        or DEFAULT_POSTGRES
    )
    print(
        f"chaos ({'short' if args.short else 'full'} form, seed {args.seed}): {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f} at start; {sizes}",
        flush=True,
    )
    started = time.monotonic()
    passed = failed = 0
    with ExitStack() as stack:
        for backend, url in _backends(args.backend or ["sqlite", "postgres"], postgres_url, stack):
            for name in args.check or CHECKS:
                t0 = time.monotonic()
                with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
                    workdir = Path(tmp)
                    ctx = Context(
                        backend, fresh_database(url, workdir), workdir, sizes, random.Random(args.seed)
                    )
                    try:
                        outcome = _check(name)(ctx)
                    except Exception as exc:  # a check that cannot finish is a failure, not a crash
                        log = (workdir / "server.log").read_text(errors="replace")[-1500:]
                        outcome = Outcome(False, f"error: {exc!r}", log.splitlines()[-8:])
                    finally:
                        ctx.close()
                passed += outcome.passed
                failed += not outcome.passed
                verdict = "PASS" if outcome.passed else "FAIL"
                print(f"{name:<10} {backend:<8} {outcome.figures}  {verdict} ({time.monotonic() - t0:.0f} s)")
                for line in outcome.details:
                    print(f"    {line}")
                sys.stdout.flush()
    print(f"{passed} passed, {failed} failed in {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
