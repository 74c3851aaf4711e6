"""The browser tests' fixtures: one headless Chromium (Debian's `chromium`,
installed by `make browser`) driven by Playwright for the whole module, and
real `agentplane serve` processes on SQLite and on PostgreSQL.

Every page is opened in a context that records each request it makes and
refuses any that is not for the server's own origin, so a test can assert
that nothing left the machine."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, sync_playwright

from tests.browser.server import CHROMIUM
from tests.conftest import BACKENDS, POSTGRES_URL, _dsn

_databases = itertools.count()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make browser` (Debian's chromium package)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


@dataclass
class Tab:
    """A page of its own context, with every request URL it made."""

    page: Page
    context: BrowserContext
    origin: str
    requests: list[str] = field(default_factory=list)

    def foreign(self) -> list[str]:
        """Requests for anything but the server's origin (each was refused)."""
        return [u for u in self.requests if not _same_origin(u, self.origin) and not u.startswith("data:")]


def _same_origin(url: str, origin: str) -> bool:
    a, b = urlsplit(url), urlsplit(origin)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def open_tab(browser: Browser, origin: str, *, color_scheme: str = "light", **options: object) -> Tab:
    context = browser.new_context(
        viewport={"width": 1400, "height": 900},
        color_scheme=color_scheme,  # type: ignore[arg-type]
        timezone_id="Europe/Paris",
        locale="en-GB",
        **options,  # type: ignore[arg-type]
    )
    tab = Tab(context.new_page(), context, origin)
    context.on("request", lambda r: tab.requests.append(r.url))

    def only_the_server(route: Route) -> None:
        if _same_origin(route.request.url, origin) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            route.abort("blockedbyclient")

    context.route("**/*", only_the_server)
    context.set_default_timeout(10_000)
    return tab


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def databases(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseMaker]:
    maker = DatabaseMaker(backend, tmp_path_factory.mktemp(f"console-{backend}"))
    yield maker
    maker.drop_all()


class DatabaseMaker:
    """Fresh databases for servers: SQLite files, or PostgreSQL databases dropped at the end."""

    def __init__(self, backend: str, workdir: Path) -> None:
        self.backend = backend
        self.workdir = workdir
        self.made: list[str] = []

    def new(self) -> str:
        n = next(_databases)
        if self.backend == "sqlite":
            return f"sqlite:///{self.workdir / f'console-{n}.db'}"
        import psycopg
        from sqlalchemy.engine import make_url

        name = f"agentplane_console_{os.getpid()}_{n}"
        with psycopg.connect(_dsn(POSTGRES_URL), autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if not self.made:
            return
        import psycopg

        with psycopg.connect(_dsn(POSTGRES_URL), autocommit=True, connect_timeout=5) as admin:
            for name in self.made:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
