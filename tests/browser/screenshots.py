"""`make screenshots`: the console's main views as PNG files in docs/, shown in
the README. A fresh server on a temporary SQLite file gets the demo data
(tests/browser/seed.py) and headless Chromium photographs each view, light,
and the overview and a timeline dark too.

    .venv/bin/python -m tests.browser.screenshots [--out docs]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect, sync_playwright

from tests.browser.seed import long_timeline, many_sessions, runtime_session, seed_demo
from tests.browser.server import CHROMIUM, ServeProcess

ROOT = Path(__file__).resolve().parents[2]


def shoot(page: Page, url: str, ready: str, path: Path) -> None:
    page.goto("about:blank")
    page.goto(url)
    expect(page.locator(ready).first).to_be_visible()
    expect(page.locator("#live")).to_have_text("live")
    page.wait_for_timeout(400)  # fonts and the last live batch
    page.screenshot(path=str(path))
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with ServeProcess(f"sqlite:///{workdir / 'screens.db'}", workdir) as server:
            with httpx.Client(base_url=server.base_url, timeout=60) as http:
                many_sessions(http, 40)
                long_timeline(http, 300, "Migrate the build to the new toolchain")
                for i, (name, agent) in enumerate(
                    [
                        ("Triage the nightly failures", "triage"),
                        ("Bump the SDK", "coder"),
                        ("Profile the importer", "perf"),
                    ]
                ):
                    runtime_session(http, f"sess-{i}", name, agent, events=6)
                seeded = seed_demo(http)
            base = server.base_url
            views = [
                ("overview", "/#/", "#activity li"),
                ("sessions", "/#/sessions", "#sessions tbody tr"),
                ("timeline", f"/#/timeline/tracer_task/{seeded.task_id}", "#events .ev"),
                ("queue", "/#/queue", "#queue-tasks tbody tr"),
                ("channel", f"/#/channels/{seeded.channel}", "#messages li"),
                ("rules", "/#/rules", "#rules tbody tr"),
            ]
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM)
                for scheme in ("light", "dark"):
                    context = browser.new_context(
                        viewport={"width": 1440, "height": 900}, color_scheme=scheme
                    )
                    page = context.new_page()
                    for name, path, ready in views:
                        if scheme == "dark" and name not in ("overview", "timeline"):
                            continue
                        shoot(page, base + path, ready, args.out / f"console-{name}-{scheme}.png")
                    context.close()
                browser.close()


if __name__ == "__main__":
    main()
