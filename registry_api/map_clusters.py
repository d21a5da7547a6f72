"""Grid clusters of the devices in a map viewport (GET /v1/map/clusters), on SQLite and PostgreSQL.

The grid is fixed on the globe (a pan does not move it): cells of about `CELL_PX` screen pixels at the zoom,
square on the Web-Mercator screen at the viewport's latitude (rounded to a degree). Each cell answers its count,
the mean location of its devices and their types. A viewport of at most `MAX_POINTS` devices answers the devices
from zoom `POINTS_MIN_ZOOM` in (below that a few devices are still clusters, of one or two: a city overview).

Two ways in, by the viewport's size:
- **index** (street views: a box over at most `LIVE_MAX_FINE_CELLS` cells of 0.01 x 0.01 degree): the devices
  of the box are read through the spatial index (`indexer.spatial`: latitude band, longitude range), first up to
  `MAX_POINTS + 1` of them, then, if more, grouped in SQL. Reads only the box's rows; exact and always current.
- **snapshot** (district and city views): the devices grouped by 0.01-degree cell, type and district, once per
  filter set and mirror state, kept in memory (`registry_api.map_snapshot`, its cache on the app). A request
  re-groups the cells its box touches (the viewport rounded out to ~1 km) into its grid. Measured at 1,000,000
  devices on 2 cores (docs/benchmarks.md): grouping the city in SQL per request takes 2-6 s on SQLite (every
  row is a table read: the index holds the band, not the latitude or the type); the snapshot's one scan takes
  ~2-4 s (SQLite) or ~1.6 s (PostgreSQL) and a city view on it a few ms. The mirror state is the last device
  event (id and block hash: every change of `devices` by the indexer writes one, and a reorg's replacement
  lands in another block): a small city's snapshot is recomputed in the request that finds it old, a large
  one's in the background while the old one answers (`stale`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, literal_column, text
from sqlalchemy import select as sa_select
from sqlmodel import col

from indexer.models import CodeRule, Device
from registry_api import device_sql
from registry_api.device_sql import ListShape, filtered
from registry_api.encoding import to_micro_degrees
from registry_api.map_snapshot import FINE_E6, Cell, Snapshot, SnapshotCache

__all__ = ["MAX_CLUSTERS", "MAX_POINTS", "POINTS_MIN_ZOOM", "MapQuery", "SnapshotCache", "clusters"]

log = logging.getLogger(__name__)

CELL_PX = 64  # a cluster cell's side on screen
TILE_PX = 256  # Web-Mercator: the world is 256 * 2**zoom pixels wide
MAX_POINTS = 500  # a viewport of at most this many devices answers them one by one ...
POINTS_MIN_ZOOM = 12  # ... from this zoom in (a district on screen); below, a city view is always clusters
MAX_CLUSTERS = 2_000  # cells per answer (a 4K screen of 64 px cells); the smallest are left off beyond
LIVE_MAX_FINE_CELLS = 40  # a box over at most this many fine cells is read through the index (zoom 15+)
SELECTIVE_FILTER = 20_000  # filtered devices city-wide below which a points read follows the filter's index
LAT_OFFSET, LON_OFFSET = 90_000_000, 180_000_000  # non-negative before dividing: cells floor, never truncate
_LAT, _LON = literal_column("devices.lat_e6"), literal_column("devices.lon_e6")


@dataclass(frozen=True)
class MapQuery:
    """A viewport (min_lon, min_lat, max_lon, max_lat in degrees), a zoom and GET /v1/devices' filters."""

    bbox: tuple[float, float, float, float]
    zoom: int
    type: str | None = None
    district: int | None = None
    owner: str | None = None
    status: str | None = None

    def filters(self) -> dict[str, Any]:
        return {k: v for k in ("type", "district", "owner", "status") if (v := getattr(self, k)) is not None}

    def shape(self, bbox_cells: int | None = None) -> ListShape:
        present = dict.fromkeys(self.filters(), True)
        return ListShape(**present, bbox_cells=bbox_cells)

    def box_e6(self) -> tuple[int, int, int, int]:
        """(min_lat, max_lat, min_lon, max_lon) in micro-degrees."""
        min_lon, min_lat, max_lon, max_lat = self.bbox
        return tuple(to_micro_degrees(v) for v in (min_lat, max_lat, min_lon, max_lon))  # type: ignore[return-value]

    def fine_cells(self) -> tuple[int, int, int, int]:
        """(first band, last band, first lon cell, last lon cell) of the 0.01-degree cells the box touches."""
        min_lat, max_lat, min_lon, max_lon = self.box_e6()
        return (
            (min_lat + LAT_OFFSET) // FINE_E6,
            (max_lat + LAT_OFFSET) // FINE_E6,
            (min_lon + LON_OFFSET) // FINE_E6,
            (max_lon + LON_OFFSET) // FINE_E6,
        )

    def grid_e6(self) -> tuple[int, int]:
        """(lat, lon) side of the zoom's cell in micro-degrees."""
        lon = 360 * CELL_PX / (TILE_PX * 2**self.zoom)
        centre = round((self.bbox[1] + self.bbox[3]) / 2)
        lat = lon * math.cos(math.radians(centre))
        return max(1, round(lat * 1e6)), max(1, round(lon * 1e6))


# ---------------------------------------------------------------- SQL


def _select_points(q: MapQuery, bands: int | None, dialect: str) -> Any:
    """Up to `MAX_POINTS + 1` devices of the box: through the spatial index (`bands`: `box_values`' parameters) or,
    with `bands` None, through a selective filter's own index (parameters min_lat ... max_lon)."""
    query = (
        sa_select(col(Device.code), col(CodeRule.type_name), col(Device.status), _LAT, _LON)
        .select_from(Device)
        .outerjoin(CodeRule, col(CodeRule.type_id) == col(Device.type_id))
    )
    if bands is not None:
        return filtered(query, q.shape(bbox_cells=bands), dialect).limit(MAX_POINTS + 1)
    box = _LAT.between(bindparam("min_lat"), bindparam("max_lat")) & _LON.between(
        bindparam("min_lon"), bindparam("max_lon")
    )
    return filtered(query, q.shape(), dialect).where(box).limit(MAX_POINTS + 1)


def _cell_columns(lat_e6: int, lon_e6: int) -> tuple[Any, Any]:
    """The cell of each device as two integer expressions (inlined constants: the GROUP BY repeats them)."""
    return (
        literal_column(f"((devices.lat_e6 + {LAT_OFFSET}) / {int(lat_e6)})"),
        literal_column(f"((devices.lon_e6 + {LON_OFFSET}) / {int(lon_e6)})"),
    )


def _select_grid(shape: ListShape, lat_e6: int, lon_e6: int, dialect: str, *by: Any) -> Any:
    cy, cx = _cell_columns(lat_e6, lon_e6)
    keys = (cy, cx, col(Device.type_id), *by)
    query = sa_select(*keys, func.count(), func.sum(_LAT), func.sum(_LON)).select_from(Device)
    return filtered(query, shape, dialect).group_by(*keys)


def _type_names(conn: Connection) -> dict[int, str]:
    return {int(t): name for t, name in conn.execute(sa_select(col(CodeRule.type_id), col(CodeRule.type_name)))}


def _version(conn: Connection) -> tuple[tuple[Any, ...] | None, int | None]:
    """The mirror's device state: (id, block hash) of the last device event, and its block."""
    row = conn.execute(text("SELECT id, block_hash, block_number FROM device_events ORDER BY id DESC LIMIT 1")).first()
    return (None, None) if row is None else ((row[0], row[1]), int(row[2]))


# ---------------------------------------------------------------- answers


def _point(row: Any) -> dict[str, Any]:
    code, type_name, status, lat_e6, lon_e6 = row
    return {"code": code, "type": type_name, "status": status, "lat": lat_e6 / 1e6, "lon": lon_e6 / 1e6}


def _answer(q: MapQuery, source: str, grid: tuple[int, int], **rest: Any) -> dict[str, Any]:
    answer = {
        "mode": "clusters",
        "source": source,
        "zoom": q.zoom,
        "bbox": list(q.bbox),
        "grid": {"lat": grid[0] / 1e6, "lon": grid[1] / 1e6},
        "total": 0,
        "truncated": False,
        "clusters": [],
        "points": [],
        "districts": [],
        "as_of_block": None,
        "stale": False,
    }
    answer.update(rest)
    return answer


def _points_answer(q: MapQuery, source: str, grid: tuple[int, int], rows: list[Any], **rest: Any) -> dict[str, Any]:
    points = sorted((_point(r) for r in rows[:MAX_POINTS]), key=lambda p: p["code"])
    return _answer(
        q, source, grid, mode="points", points=points, total=len(points), truncated=len(rows) > MAX_POINTS, **rest
    )


def _cluster_list(cells: dict[Any, Cell]) -> tuple[list[dict[str, Any]], bool]:
    ordered = sorted(cells.values(), key=lambda c: -c.count)
    kept = []
    for cell in ordered[:MAX_CLUSTERS]:
        lat, lon = cell.centre()
        kept.append({"lat": lat, "lon": lon, "count": cell.count, "by_type": dict(cell.by_type.most_common())})
    return kept, len(ordered) > MAX_CLUSTERS


def _type_name(names: dict[int, str], type_id: int) -> str:
    return names.get(type_id) or f"type {type_id}"


def _live(conn: Connection, q: MapQuery) -> dict[str, Any]:
    """A small viewport through the spatial index: its devices, or its cells grouped in SQL."""
    grid = q.grid_e6()
    bands, values = device_sql.box_values("bbox", *q.box_e6())
    values.update(q.filters())
    if q.zoom >= POINTS_MIN_ZOOM:
        rows = conn.execute(_select_points(q, bands, conn.dialect.name), values).all()
        if len(rows) <= MAX_POINTS:
            return _points_answer(q, "index", grid, rows)
    statement = _select_grid(q.shape(bbox_cells=bands), *grid, conn.dialect.name)
    names = _type_names(conn)
    cells: dict[tuple[int, int], Cell] = {}
    for cy, cx, type_id, count, lat, lon in conn.execute(statement, values):
        cells.setdefault((cy, cx), Cell()).add(int(count), int(lat), int(lon), _type_name(names, type_id))
    clusters, truncated = _cluster_list(cells)
    return _answer(q, "index", grid, clusters=clusters, total=sum(c.count for c in cells.values()), truncated=truncated)


# ---------------------------------------------------------------- snapshots


def _compute(conn: Connection, q: MapQuery) -> Snapshot:
    """The snapshot of `q`'s filters: one GROUP BY over the devices (all of them, or a filter's index's)."""
    started = time.perf_counter()
    version, block = _version(conn)
    statement = _select_grid(q.shape(), FINE_E6, FINE_E6, conn.dialect.name, col(Device.district))
    names = _type_names(conn)
    rows = [
        (int(band), int(lon_cell), _type_name(names, type_id), int(district), int(count), int(lat), int(lon))
        for band, lon_cell, type_id, district, count, lat, lon in conn.execute(statement, q.filters())
    ]
    return Snapshot(version, block, rows, time.perf_counter() - started)


def _from_snapshot(conn: Connection, q: MapQuery, snapshot: Snapshot, stale: bool) -> dict[str, Any]:
    """A large viewport from the snapshot: the fine cells it touches, re-grouped into the zoom's grid."""
    lat_e6, lon_e6 = q.grid_e6()
    k_lat, k_lon = max(1, round(lat_e6 / FINE_E6)), max(1, round(lon_e6 / FINE_E6))
    grid = (k_lat * FINE_E6, k_lon * FINE_E6)
    min_lat, max_lat, min_lon, max_lon = q.box_e6()
    band_lo, band_hi, lon_lo, lon_hi = q.fine_cells()
    cells = snapshot.regroup(k_lat, k_lon, (band_lo, band_hi), (lon_lo, lon_hi))
    total = sum(c.count for c in cells.values())
    extra = {"as_of_block": snapshot.block, "stale": stale}
    if total <= MAX_POINTS and q.zoom >= POINTS_MIN_ZOOM:  # few here: the devices themselves, live
        values: dict[str, Any] = {**q.filters()}
        if q.filters() and snapshot.total <= SELECTIVE_FILTER:
            values.update(min_lat=min_lat, max_lat=max_lat, min_lon=min_lon, max_lon=max_lon)
            statement = _select_points(q, None, conn.dialect.name)
        else:
            bands, box = device_sql.box_values("bbox", min_lat, max_lat, min_lon, max_lon)
            values.update(box)
            statement = _select_points(q, bands, conn.dialect.name)
        return _points_answer(q, "index", q.grid_e6(), conn.execute(statement, values).all(), **extra)
    clusters, truncated = _cluster_list(cells)
    districts: dict[int, Cell] = {}
    for cell in cells.values():
        for code, (count, lat_sum, lon_sum) in cell.districts.items():
            districts.setdefault(code, Cell()).add(count, lat_sum, lon_sum, "")
    summary = []
    for code, place in sorted(districts.items()):
        lat, lon = place.centre()
        summary.append({"district": code, "count": place.count, "lat": lat, "lon": lon})
    return _answer(q, "snapshot", grid, clusters=clusters, total=total, truncated=truncated, districts=summary, **extra)


def clusters(engine: Engine, cache: SnapshotCache, q: MapQuery) -> dict[str, Any]:
    """The answer of GET /v1/map/clusters (`MapClustersPublic`) for `q`."""
    with engine.connect() as conn:
        band_lo, band_hi, lon_lo, lon_hi = q.fine_cells()
        if (band_hi - band_lo + 1) * (lon_hi - lon_lo + 1) <= LIVE_MAX_FINE_CELLS:
            return _live(conn, q)
        version, _ = _version(conn)
        key = tuple(sorted(q.filters().items()))
        snapshot, stale = cache.get(engine, conn, key, version, lambda c: _compute(c, q))
        return _from_snapshot(conn, q, snapshot, stale)
