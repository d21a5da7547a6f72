"""/v1/audit/verify: the mirror rebuilt from the chain and compared with the live database (see indexer.verify)."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(prefix="/v1/audit", tags=["audit"])
