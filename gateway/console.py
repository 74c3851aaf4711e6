"""The web console and the API docs, served from files in this package.

The console is plain JavaScript modules in `gateway/console/` (no build step):
`/` is its page, `/console/...` its assets, and it routes by the URL's hash
(`/#/sessions`), so no view's address can shadow a family's route. `/docs`
is Swagger UI from the copy in `gateway/console/vendor/swagger-ui/`
(`make swagger-ui` refreshes it), never from a CDN. Both pages carry a
Content-Security-Policy that lets them reach only this server.

The files hold no data: every read they make goes through the generated,
authenticated routes, so they are served to anyone, like /openapi.json.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import StaticFiles

ROOT = Path(__file__).with_name("console")
ASSETS = "/console"
SWAGGER = f"{ASSETS}/vendor/swagger-ui"
# Only this origin: a page of the console cannot send a request anywhere else.
# Swagger UI's page starts itself with an inline script and draws icons as data: URLs.
CONSOLE_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; connect-src 'self'; object-src 'none'; base-uri 'none'"
)


class _Assets(StaticFiles):
    """The console's files; revalidated on every load, so an upgrade shows at once."""

    def file_response(self, *args: object, **kwargs: object) -> Response:
        response = super().file_response(*args, **kwargs)  # type: ignore[arg-type]
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def mount(app: FastAPI) -> None:
    """Add `/` (the console), `/console/...` (its files) and `/docs` (Swagger UI) to `app`."""
    app.mount(ASSETS, _Assets(directory=ROOT), name="console")

    @app.get("/", include_in_schema=False)
    async def console() -> Response:
        return FileResponse(
            ROOT / "index.html",
            headers={"Content-Security-Policy": CONSOLE_POLICY, "Cache-Control": "no-cache"},
        )

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=str(request.scope.get("root_path", "")) + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - API",
            swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.svg",
        )
        page.headers["Content-Security-Policy"] = DOCS_POLICY
        return page
