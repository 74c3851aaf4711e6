"""The console's and the docs' files as the gateway serves them: from the
package, under a Content-Security-Policy that lets the pages reach only this
server, and without shadowing any route of the contract. (What the pages do
is tested in a real browser: tests/browser.)"""

from __future__ import annotations

import re

from gateway.app import routes
from gateway.console import ASSETS, ROOT
from tests.conftest import Server


async def test_the_console_page_and_its_files_are_served_from_the_package(server: Server) -> None:
    page = await server.http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy
    for ref in re.findall(r'(?:src|href)="([^"#]+)"', page.text):
        assert ref.startswith("/"), ref  # nothing from another origin
        assert (await server.http.get(ref)).status_code == 200, ref
    script = await server.http.get(f"{ASSETS}/js/main.js")
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert (await server.http.get(f"{ASSETS}/nope.js")).status_code == 404


async def test_every_module_the_console_imports_is_there() -> None:
    modules = sorted(ROOT.glob("js/**/*.js"))
    assert modules
    for module in modules:
        for ref in re.findall(r'from "(\.[^"]+)"', module.read_text()):
            assert (module.parent / ref).resolve().is_file(), f"{module.name} imports {ref}"


async def test_docs_load_swagger_ui_from_this_server(server: Server) -> None:
    docs = await server.http.get("/docs")
    assert docs.status_code == 200
    refs = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert any(r.endswith("swagger-ui-bundle.js") for r in refs)
    for ref in refs:
        assert ref.startswith("/"), ref
        assert (await server.http.get(ref)).status_code == 200, ref
    assert "cdn" not in docs.text.lower()
    assert "connect-src 'self'" in docs.headers["content-security-policy"]


def test_no_contract_route_is_under_the_consoles_paths() -> None:
    for binding, _ in routes():
        assert binding.route_path != "/"
        assert not binding.route_path.startswith(f"{ASSETS}/"), binding.route_path
