"""The map's answer (GET /v1/map/clusters): grid clusters of a viewport, or its devices when they are few."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["MapCluster", "MapClustersPublic", "MapDistrict", "MapGrid", "MapPoint"]


class MapCluster(BaseModel):
    """The devices of one grid cell: where they are on average, how many, and how many of each type."""

    lat: float = Field(description="mean latitude of the cell's devices")
    lon: float = Field(description="mean longitude of the cell's devices")
    count: int = Field(ge=1)
    by_type: dict[str, int] = Field(description="devices per type name", examples=[{"camera.road": 12}])


class MapPoint(BaseModel):
    """One device, answered when the viewport holds few devices."""

    code: str
    type: str | None
    status: str
    lat: float
    lon: float


class MapDistrict(BaseModel):
    """The devices of one district in the viewport (low zooms): count and mean location, for labels."""

    district: int
    count: int
    lat: float
    lon: float


class MapGrid(BaseModel):
    """The grid's cell in degrees; cells are fixed on the globe (a pan does not move them)."""

    lat: float
    lon: float


class MapClustersPublic(BaseModel):
    """Clusters (`mode` "clusters") or devices (`mode` "points") of a viewport at a zoom, with the filters applied.

    `total` counts the devices matched. From the live index (`source` "index": small viewports) it is exact for
    the box; from the snapshot (`source` "snapshot": large viewports) it counts the devices of the ~1 km cells
    the box touches, as of the device event `as_of_block` (`stale`: a newer snapshot is being computed).
    `truncated`: more cells (or devices) than the answer's cap; the smallest cells were left off.
    """

    mode: str = Field(description="clusters | points", examples=["clusters"])
    source: str = Field(description="index | snapshot", examples=["index"])
    zoom: int
    bbox: list[float] = Field(description="minLon, minLat, maxLon, maxLat as asked", min_length=4, max_length=4)
    grid: MapGrid
    total: int
    truncated: bool
    clusters: list[MapCluster]
    points: list[MapPoint]
    districts: list[MapDistrict]
    as_of_block: int | None = Field(default=None, description="block of the last device change the answer holds")
    stale: bool = False
