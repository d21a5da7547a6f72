"""/v1/audit: code (see registry_api.audit)."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(prefix="/v1/audit", tags=["audit"])
