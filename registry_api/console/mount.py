"""Serve the console: `/console/` is the page, `/console/static/` its files, `/` leads to it; strict headers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.base import BaseHTTPMiddleware

from registry_api.console.vendor import VENDOR_DIR, missing_vendor_files

__all__ = ["CONSOLE_PATH", "CONTENT_SECURITY_POLICY", "STATIC_DIR", "mount_console"]

log = logging.getLogger(__name__)

CONSOLE_PATH = "/console"
STATIC_DIR = Path(__file__).resolve().parent / "static"

# Only this origin: no CDN, font or tile server can be reached even by mistake. Leaflet positions its panes with
# style attributes, hence 'unsafe-inline' for styles only; scripts are files, never inline.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class ConsoleHeaders(BaseHTTPMiddleware):
    """The security headers on every console answer (the API's JSON routes keep their own)."""

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if request.url.path == "/" or request.url.path.startswith(CONSOLE_PATH):
            response.headers.update(SECURITY_HEADERS)
        return response


def _index() -> FileResponse:
    # the page itself is never cached, so a new release's scripts are picked up on the next load
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def mount_console(app: FastAPI) -> None:
    """Add the console's routes to `app`; warn (the page then says so too) when the vendor copies are missing."""
    missing = missing_vendor_files()
    if missing:
        log.warning("console: vendor files missing in %s (run scripts/setup): %s", VENDOR_DIR, ", ".join(missing))
    app.add_middleware(ConsoleHeaders)
    app.add_api_route("/", lambda: RedirectResponse(f"{CONSOLE_PATH}/"), include_in_schema=False)
    app.add_api_route(CONSOLE_PATH, lambda: RedirectResponse(f"{CONSOLE_PATH}/"), include_in_schema=False)
    app.add_api_route(f"{CONSOLE_PATH}/", _index, include_in_schema=False)
    app.mount(f"{CONSOLE_PATH}/static", StaticFiles(directory=STATIC_DIR), name="console-static")
