"""JSON nested too deep is refused before the standard library parses it: it would crash the process.

py_ecc and py-evm (imported through web3) raise the interpreter's recursion limit to 100,000, so `json.loads`
of a document nested ~100,000 deep recurses in C until the thread's stack overflows: SIGSEGV, the whole API
process (its gateway, indexer and import threads with it) killed by one request. `loads_bounded` and the
`JsonDepthLimit` middleware refuse such documents first; orjson, which stops at 1024 levels, measures the depth.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry_api.errors import error_body

__all__ = ["MAX_JSON_DEPTH", "JsonDepthLimit", "JsonTooDeep", "check_depth", "loads_bounded"]

MAX_JSON_DEPTH = 1024  # levels of arrays and objects: orjson's own limit, far beyond any device or catalog body


class JsonTooDeep(ValueError):
    """A JSON document nested deeper than MAX_JSON_DEPTH."""


def check_depth(data: bytes | str) -> None:
    """Raise JsonTooDeep if `data` nests deeper than MAX_JSON_DEPTH; other faults are left to the real parser."""
    raw = data.encode() if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:  # cannot be that deep: no parse (the usual case)
        return
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise JsonTooDeep(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from exc


def loads_bounded(text: str | bytes, **kwargs: Any) -> Any:
    """`json.loads` for untrusted text: JsonTooDeep (a ValueError, as json's own errors) when nested too deep."""
    check_depth(text)
    return json.loads(text, **kwargs)


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


class JsonDepthLimit:
    """ASGI middleware: a JSON request body nested too deep is answered 400 JSON_TOO_DEEP before any route
    parses it; other bodies pass untouched (a JSON body is read whole first: routes read it whole anyway)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = bytearray()
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        try:
            check_depth(bytes(body))
        except JsonTooDeep as exc:
            await JSONResponse(error_body("JSON_TOO_DEEP", str(exc)), status_code=400)(scope, receive, send)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
