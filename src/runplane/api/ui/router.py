"""Routes of the dashboard: `/` and `/ui` lead to `/ui/`, which answers
index.html; `/ui/<file>` answers one of the packaged assets, by a fixed table
built at import (no path from the request ever reaches the file system)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse

from runplane.api.errors import ApiError
from runplane.domain.errors import ErrorCode

STATIC = Path(__file__).parent / "static"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
"""Only the page's own files run; data rendered as text can never become script
(no inline scripts or styles, no other origin to fetch from or post to)."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The assets change with the package: a browser asks again rather than
    # keep a page that no longer matches the API it talks to.
    "Cache-Control": "no-cache",
}

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _assets() -> dict[str, Path]:
    return {
        path.relative_to(STATIC).as_posix(): path
        for path in STATIC.rglob("*")
        if path.is_file() and path.suffix in MEDIA_TYPES
    }


ASSETS = _assets()

router = APIRouter(include_in_schema=False)


def _file(name: str) -> FileResponse:
    path = ASSETS.get(name)
    if path is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such dashboard file")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=SECURITY_HEADERS)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui")
async def ui_bare() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui/")
async def ui_index() -> FileResponse:
    return _file("index.html")


@router.get("/ui/{name:path}")
async def ui_asset(name: str) -> FileResponse:
    return _file(name)


def install_ui(app: FastAPI) -> None:
    app.include_router(router)
