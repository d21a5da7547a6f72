"""/v1/districts: the city's districts (division code, name, approximate box, centre) for forms and filters."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from registry_api.city import DISTRICTS
from registry_api.deps import PrincipalDep
from registry_api.schemas.common import ErrorPublic

__all__ = ["DistrictPublic", "DistrictsPublic", "router"]

router = APIRouter(prefix="/v1/districts", tags=["devices"])

_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorPublic, "description": "no or bad token"}}


class DistrictPublic(BaseModel):
    """One district: what a device's `district` takes, and where it lies."""

    code: int = Field(examples=[110105], description="6-digit division code")
    name: str = Field(examples=["朝阳区"])
    bbox: tuple[float, float, float, float] = Field(description="approximate min_lon, min_lat, max_lon, max_lat")
    center: tuple[float, float] = Field(description="lat, lon of the box centre")


class DistrictsPublic(BaseModel):
    data: list[DistrictPublic]
    count: int


_ANSWER = DistrictsPublic(
    data=[DistrictPublic(code=d.code, name=d.name, bbox=d.bbox, center=d.center) for d in DISTRICTS],
    count=len(DISTRICTS),
)


@router.get("", summary="List the city's districts", responses=_ERRORS)
def list_districts(_: PrincipalDep) -> DistrictsPublic:
    """All districts by division code (a fixed list of 16, answered whole)."""
    return _ANSWER
