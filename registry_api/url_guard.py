"""NUL in a request's path or query string is refused before any route sees it (422 at the parameter).

PostgreSQL's text cannot hold NUL: a filter such as `?owner=%00` reached the database and failed there (a 500).
Nothing stored can contain NUL, so such a request can only be refused.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from registry_api.errors import error_body

__all__ = ["NulInUrl"]


def _nul_field(scope: Scope) -> str | None:
    """The query parameter (or "path") that carries NUL, or None."""
    query = scope.get("query_string", b"").decode("latin-1")
    if "%00" in query or "\x00" in query:
        for name, value in parse_qsl(query, keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                return name.replace("\x00", "") or "query"
        return "query"
    if "\x00" in scope.get("path", "") or "%00" in unquote(scope.get("raw_path", b"").decode("latin-1")):
        return "path"
    return None


class NulInUrl:
    """ASGI middleware: 422 VALIDATION_ERROR for NUL in the path or a query parameter (`field` names it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        field = _nul_field(scope) if scope["type"] == "http" else None
        if field is None:
            await self.app(scope, receive, send)
            return
        refusal = JSONResponse(error_body("VALIDATION_ERROR", "NUL is not allowed in a URL", field), status_code=422)
        await refusal(scope, receive, send)
