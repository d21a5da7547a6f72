"""/v1/map/clusters: the devices of a map viewport as grid clusters, or one by one when they are few.

A sync route (a worker thread): a large viewport's first answer after the mirror moved may compute a snapshot
of the whole city (`registry_api.map_clusters`), which must not hold the event loop.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from registry_api import map_clusters
from registry_api.deps import ReaderDep
from registry_api.responses import json_response
from registry_api.routers.devices import DeviceStatus, parse_bbox
from registry_api.schemas.common import ErrorPublic
from registry_api.schemas.map import MapClustersPublic

__all__ = ["router"]

router = APIRouter(prefix="/v1/map", tags=["devices"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic, "description": text}
    for code, text in {
        401: "no or bad token (UNAUTHENTICATED)",
        422: "VALIDATION_ERROR: bbox not 4 ordered numbers in range, zoom not 0..22",
        503: "DATABASE_UNAVAILABLE",
    }.items()
}


def _snapshots(request: Request) -> map_clusters.SnapshotCache:
    state = request.app.state
    cache: map_clusters.SnapshotCache | None = getattr(state, "map_snapshots", None)
    if cache is None:
        cache = state.map_snapshots = map_clusters.SnapshotCache()
    return cache


@router.get("/clusters", summary="Map clusters of a viewport", response_model=MapClustersPublic, responses=_ERRORS)  # type: ignore[arg-type]
def map_clusters_of(
    request: Request,
    _: ReaderDep,
    bbox: Annotated[
        str, Query(description="minLon,minLat,maxLon,maxLat (degrees)", examples=["116.3,39.8,116.5,40.0"])
    ],
    zoom: Annotated[int, Query(ge=0, le=22, description="the map's zoom (Web-Mercator, 256 px tiles)")],
    type: Annotated[str | None, Query(description="type name, e.g. camera.road")] = None,
    district: Annotated[int | None, Query(ge=100_000, le=999_999, description="6-digit division code")] = None,
    owner: Annotated[str | None, Query(description="owner org code, e.g. BJ-PSB")] = None,
    status: Annotated[DeviceStatus | None, Query()] = None,
) -> Response:
    """Grid cells of about 64 px at `zoom` over the box, each with its count, mean location and types; when the
    box holds at most 500 matching devices and `zoom` >= 12, those devices instead (`mode` "points").

    At most 2,000 cells, the largest (`truncated` says some were left off). Large boxes add a per-district
    summary (`districts`) and are counted by whole 0.01-degree cells (see `MapClustersPublic`)."""
    query = map_clusters.MapQuery(
        bbox=parse_bbox(bbox), zoom=zoom, type=type, district=district, owner=owner, status=status
    )
    return json_response(map_clusters.clusters(request.app.state.engine, _snapshots(request), query))
