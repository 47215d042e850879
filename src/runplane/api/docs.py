"""`/docs` (Swagger UI) and `/redoc` (ReDoc) from assets served by the app itself.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on a machine
without internet access they are blank. The pinned `fastapi-offline` package
ships the two bundles (Swagger UI's JS and CSS, ReDoc's standalone JS); they
are mounted here at `ASSETS_URL` and the pages name only same-origin URLs.
ReDoc's side menu shows Redocly's logo from their CDN, with no option to leave
it out: the pages' Content-Security-Policy keeps images, fonts and fetches to
this origin, so the browser never asks another host for anything.
Nothing here needs a key: the pages hold no data, and the document they load,
`/openapi.json`, is public as it always was.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"
ASSETS_DIR = Path(str(files("fastapi_offline") / "static"))

CSP = "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'"
"""Only what leaves the page is restricted: both pages run an inline script
(FastAPI's page builders) and ReDoc injects its styles."""

SWAGGER_PARAMETERS = {
    # The key stays in the page's memory only (not in localStorage): a shared
    # browser does not keep an admin key after the tab is closed.
    "persistAuthorization": False,
    "displayOperationId": True,
    "tryItOutEnabled": True,
}


def install_docs(app: FastAPI) -> None:
    """Serve the two pages and their assets. The app is made with
    `docs_url=None, redoc_url=None` so FastAPI's CDN pages are not there."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _same_origin_only(
            get_swagger_ui_html(
                openapi_url=f"{root}{app.openapi_url}",
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                swagger_ui_parameters=SWAGGER_PARAMETERS,
            )
        )

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _same_origin_only(
            get_redoc_html(
                openapi_url=f"{root}{app.openapi_url}",
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            )
        )


def _same_origin_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CSP
    return page
