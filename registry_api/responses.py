"""JSON answers written directly: for hot routes that build their bodies as plain dicts rather than models."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

__all__ = ["json_response"]

_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def json_response(body: Any, status_code: int = 200) -> Response:
    """`body` (JSON-ready: dicts, lists, str, int, float, None) as compact UTF-8 JSON, as FastAPI would render it."""
    return Response(_encoder.encode(body).encode(), status_code=status_code, media_type="application/json")
