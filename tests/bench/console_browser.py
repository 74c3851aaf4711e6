"""The `console-browser` bench scenario: the web console in headless Chromium
(Debian's `chromium`, through Playwright) on real volumes (issue 18).

After `seed_volume` (tests/bench/console.py: 10,000 sessions and a task with
a 50,000-event timeline, through the public routes):

- first screen: from navigation (a full page load of the console, its
  modules revalidated) to the first rows painted, for the 50,000-event
  timeline and the list of 10,000 sessions, `loads` times each; the median,
  the worst, and the server's CPU per load;
- live: the overview open while a writer posts 1,000 events/s (Trenchcoat
  batches of 50 every 50 ms) for `seconds`: entries delivered to the page
  per second (each one checked against the log), delivery lag from commit
  to the page's views (p50/p99), long tasks (PerformanceObserver) and the
  longest gap between frames, and the server's CPU per event.

    make bench BENCH_ARGS="--runs 1 --scenario console-browser"
    .venv/bin/python -m tests.bench.console_browser [--postgres URL] [--seconds 10]

Targets: each first screen < 1 s (the median of the loads; the worst is shown); the live page keeps up (every entry
delivered, lag p99 < 1 s) and never freezes (longest frame gap < 200 ms).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from playwright.sync_api import Page, sync_playwright

from tests.bench.console import Volume, seed_volume
from tests.bench.rules import cpu_seconds
from tests.browser.server import CHROMIUM

if TYPE_CHECKING:  # run.py imports this module to register the scenario
    from tests.bench.run import Figures, ServerProcess

FIRST_SCREEN_MS = 1000.0
LIVE_RATE = 1000
LIVE_BATCH = 50
FRAME_GAP_MS = 200.0

# Records, on every page load, when the first rows of a list were painted
# (the frame after they entered the DOM), and how the page keeps up.
PROBE = """
(() => {
  const rows = "#events .ev, #sessions tbody tr";
  const seen = () => {
    if (window.__firstRows !== undefined || !document.querySelector(rows)) return false;
    requestAnimationFrame(() => { window.__firstRows = performance.now(); });
    return true;
  };
  new MutationObserver((_, obs) => { if (seen()) obs.disconnect(); })
    .observe(document, { childList: true, subtree: true });
  const perf = (window.__perf = { long: [], gaps: [], last: 0, delivered: 0, lags: [], seqs: [] });
  new PerformanceObserver((list) => { for (const e of list.getEntries()) perf.long.push(e.duration); })
    .observe({ type: "longtask", buffered: true });
  const frame = (t) => { if (perf.last) perf.gaps.push(t - perf.last); perf.last = t; requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
  addEventListener("agentplane:log", (ev) => {
    const now = Date.now();
    for (const e of ev.detail) { perf.delivered++; perf.seqs.push(Number(e.seq)); perf.lags.push(now - Date.parse(e.recorded_at)); }
  });
})();
"""


@dataclass
class FirstScreen:
    median_ms: float
    worst_ms: float
    cpu_us: float  # server CPU per load


@dataclass
class Live:
    posted: int
    delivered: int
    rate: float  # entries/s delivered to the page
    lag_p50_ms: float
    lag_p99_ms: float
    long_tasks: int
    longest_task_ms: float
    longest_gap_ms: float
    cpu_us: float  # server CPU per posted event
    complete: bool  # every committed entry delivered once, in order


def until(page: Page, expression: str, seconds: float = 60) -> None:
    """Wait for `expression` to hold. (Not page.wait_for_function: it evaluates a
    string, which the console's Content-Security-Policy forbids.)"""
    deadline = time.monotonic() + seconds
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(expression)
        page.wait_for_timeout(10)


def first_screen(page: Page, base: str, path: str, pid: int, loads: int) -> FirstScreen:
    times = []
    cpu = 0.0
    for _ in range(loads):
        page.goto("about:blank")
        before = cpu_seconds(pid)
        page.goto(base + path)
        until(page, "window.__firstRows !== undefined")
        cpu += cpu_seconds(pid) - before
        times.append(float(page.evaluate("window.__firstRows")))
    return FirstScreen(statistics.median(times), max(times), cpu / loads * 1e6)


def _writer(base: str, seconds: float, stop: threading.Event, posted: list[int]) -> None:
    """Trenchcoat batches of LIVE_BATCH events, LIVE_RATE events a second, on a fixed schedule."""
    session = str(uuid.uuid4())
    with httpx.Client(base_url=base, timeout=30) as http:
        start = time.perf_counter()
        n = 0
        while not stop.is_set() and time.perf_counter() - start < seconds:
            events = [
                {
                    "event_type": "tool_use",
                    "session_id": session,
                    "timestamp": "2026-12-05T10:00:00Z",
                    "seq": n + i,
                    "data": {"tool_name": "Bash", "tool_input": {"command": f"echo {n + i}"}},
                }
                for i in range(LIVE_BATCH)
            ]
            resp = http.post("/api/v1/events", json={"events": events})
            resp.raise_for_status()
            n += LIVE_BATCH
            posted[0] = n
            delay = start + (n / LIVE_RATE) - time.perf_counter()
            if delay > 0:
                time.sleep(delay)


def _log_after(base: str, after: int) -> list[int]:
    with httpx.Client(timeout=60) as http:
        resp = http.get(f"{base}/v1/log:watch", params={"after_seq": after, "stop_at_end": "true"})
    return [
        int(json.loads(line)["result"]["entry"]["seq"])
        for line in resp.text.splitlines()
        if '"entry"' in line
    ]


def live(page: Page, base: str, pid: int, seconds: float) -> Live:
    page.goto("about:blank")
    page.goto(base + "/#/")
    until(page, "document.getElementById('live').dataset.state === 'live'")
    page.wait_for_selector("#running .card")
    start_cursor = int(page.evaluate("window.agentplaneConsole.live.cursor"))
    page.evaluate(
        "Object.assign(window.__perf, {long: [], gaps: [], last: 0, delivered: 0, lags: [], seqs: []})"
    )
    stop, posted = threading.Event(), [0]
    cpu = cpu_seconds(pid)
    began = time.perf_counter()
    writer = threading.Thread(target=_writer, args=(base, seconds, stop, posted))
    writer.start()
    writer.join()
    committed = _log_after(base, start_cursor)
    deadline = time.monotonic() + 10
    while page.evaluate("window.__perf.delivered") < len(committed) and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    elapsed = time.perf_counter() - began
    cpu = cpu_seconds(pid) - cpu
    perf = page.evaluate("window.__perf")
    lags = sorted(perf["lags"]) or [0.0]
    return Live(
        posted=posted[0],
        delivered=int(perf["delivered"]),
        rate=perf["delivered"] / elapsed,
        lag_p50_ms=lags[len(lags) // 2],
        lag_p99_ms=lags[min(len(lags) - 1, round(0.99 * (len(lags) - 1)))],
        long_tasks=len(perf["long"]),
        longest_task_ms=max(perf["long"], default=0.0),
        longest_gap_ms=max(perf["gaps"], default=0.0),
        cpu_us=cpu / max(1, posted[0]) * 1e6,
        complete=perf["seqs"] == committed,
    )


def measure(
    base: str, pid: int, volume: Volume, loads: int, seconds: float
) -> tuple[FirstScreen, FirstScreen, Live]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.add_init_script(PROBE)
        timeline = first_screen(page, base, f"/#/timeline/tracer_task/{volume.task_id}", pid, loads)
        sessions = first_screen(page, base, "/#/sessions", pid, loads)
        following = live(page, base, pid, seconds)
        browser.close()
    return timeline, sessions, following


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(timeline: FirstScreen, sessions: FirstScreen, following: Live) -> None:
    for name, fs in (("timeline of 50,000 events", timeline), ("list of 10,000 sessions", sessions)):
        print(
            f"    first screen, {name}: median {fs.median_ms:.0f} ms, worst {fs.worst_ms:.0f} ms, "
            f"server CPU {fs.cpu_us:,.0f} µs/load [{_verdict(fs.median_ms < FIRST_SCREEN_MS)}]"
        )
    f = following
    kept_up = f.complete and f.lag_p99_ms < 1000
    print(
        f"    live overview at {LIVE_RATE:,} events/s: {f.delivered:,} entries delivered for {f.posted:,} posted "
        f"({f.rate:,.0f}/s), every one once and in order: {f.complete}; lag p50 {f.lag_p50_ms:.0f} ms, "
        f"p99 {f.lag_p99_ms:.0f} ms [{_verdict(kept_up)}]"
    )
    print(
        f"    tab: {f.long_tasks} long tasks (longest {f.longest_task_ms:.0f} ms), longest frame gap "
        f"{f.longest_gap_ms:.0f} ms [{_verdict(f.longest_gap_ms < FRAME_GAP_MS)}]; server CPU {f.cpu_us:.0f} µs/event"
    )


def console_browser(srv: ServerProcess, total: int, concurrency: int) -> Figures:
    """`total` loads of each first screen; `concurrency` is unused (one tab)."""
    from tests.bench.run import Figures

    started = time.perf_counter()
    volume = seed_volume(srv.http_port)
    print(
        f"    seeded {volume.sessions:,} sessions and {volume.events:,} events in {time.perf_counter() - started:.1f} s"
    )
    timeline, sessions, following = measure(f"http://127.0.0.1:{srv.http_port}", srv.pid, volume, total, 10)
    report(timeline, sessions, following)
    return Figures(
        following.rate,
        timeline.median_ms,
        sessions.median_ms,
        "live entries/s (p50: timeline, p99: sessions first screen ms)",
        following.cpu_us,
    )


def main() -> int:
    from tests.bench.run import server_process

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", help="a PostgreSQL URL (an empty database)")
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, server_process(Path(tmp), args.postgres) as srv:
        started = time.perf_counter()
        volume = seed_volume(srv.http_port)
        print(
            f"seeded {volume.sessions:,} sessions and {volume.events:,} events in {time.perf_counter() - started:.1f} s"
        )
        report(*measure(f"http://127.0.0.1:{srv.http_port}", srv.pid, volume, args.loads, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
