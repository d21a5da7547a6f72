"""The map's snapshot: the devices per 0.01-degree cell, kept in memory, re-grouped into any coarser grid.

A snapshot holds, per fine cell (latitude band, longitude cell of `FINE_E6`) and per type and district, the count
and the sums of the devices' micro-degrees, sorted by cell. A request's box covers whole coarse cells inside and
parts of coarse cells at its edges: the whole ones come from the snapshot's grouping at that grid (`Snapshot.level`,
built once per grid), the edge ones from the fine cells the box touches. So a city view costs the cells along its
border, not every fine cell of the city. `SnapshotCache` keeps the snapshots of the filter sets asked last and
recomputes them when the mirror moves (see `registry_api.map_clusters`).
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

__all__ = ["FINE_E6", "Cell", "Snapshot", "SnapshotCache"]

log = logging.getLogger(__name__)

FINE_E6 = 10_000  # 0.01 degree, the spatial index's latitude band
SYNC_REFRESH_SECONDS = 0.25  # a snapshot computed faster than this is recomputed in the request that finds it old
MAX_SNAPSHOTS = 16  # filter sets kept
MAX_LEVELS = 8  # grids kept per snapshot
_ROW_KEY = 100_000  # band * _ROW_KEY + lon cell: one sortable integer (lon cells < 36,001)

Row = tuple[int, int, str, int, int, int, int]  # band, lon cell, type name, district, count, lat sum, lon sum


@dataclass
class Cell:
    """Devices of a cell: count, sums of micro-degrees, per type; per district (count, lat sum, lon sum) if kept."""

    count: int = 0
    lat: int = 0
    lon: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    districts: dict[int, list[int]] = field(default_factory=dict)

    def add(self, count: int, lat: int, lon: int, type_name: str, district: int | None = None) -> None:
        self.count += count
        self.lat += lat
        self.lon += lon
        self.by_type[type_name] += count
        if district is not None:
            place = self.districts.setdefault(district, [0, 0, 0])
            place[0] += count
            place[1] += lat
            place[2] += lon

    def centre(self) -> tuple[float, float]:
        return round(self.lat / self.count / 1e6, 6), round(self.lon / self.count / 1e6, 6)


def _add_row(cells: dict[tuple[int, int], Cell], key: tuple[int, int], row: Row) -> None:
    cell = cells.get(key)
    if cell is None:
        cell = cells[key] = Cell()
    cell.add(row[4], row[5], row[6], row[2], row[3])


@dataclass
class Snapshot:
    """The fine cells of one filter set as of `version` (see `map_clusters._version`), `block` its block."""

    version: tuple[Any, ...] | None
    block: int | None
    rows: list[Row]
    seconds: float  # how long it took to compute
    keys: list[int] = field(init=False)
    total: int = field(init=False)
    levels: dict[tuple[int, int], dict[tuple[int, int], Cell]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.rows.sort()
        self.keys = [band * _ROW_KEY + lon for band, lon, *_ in self.rows]
        self.total = sum(row[4] for row in self.rows)

    def level(self, k_lat: int, k_lon: int) -> dict[tuple[int, int], Cell]:
        """Every device grouped into coarse cells of k_lat x k_lon fine cells (built on first use, then kept)."""
        found = self.levels.get((k_lat, k_lon))
        if found is None:
            found = {}
            for row in self.rows:
                _add_row(found, (row[0] // k_lat, row[1] // k_lon), row)
            if len(self.levels) >= MAX_LEVELS:
                self.levels.clear()
            self.levels[(k_lat, k_lon)] = found
        return found

    def _band(self, band: int, lon_lo: int, lon_hi: int) -> Iterable[Row]:
        """The rows of a band with lon cells in [lon_lo, lon_hi]."""
        start = bisect.bisect_left(self.keys, band * _ROW_KEY + lon_lo)
        end = bisect.bisect_right(self.keys, band * _ROW_KEY + lon_hi)
        return self.rows[start:end]

    def regroup(
        self, k_lat: int, k_lon: int, bands: tuple[int, int], lons: tuple[int, int]
    ) -> dict[tuple[int, int], Cell]:
        """The devices of the fine cells in `bands` x `lons` (inclusive ranges) grouped into coarse cells."""
        (band_lo, band_hi), (lon_lo, lon_hi) = bands, lons
        cy_lo, cy_hi = -(-band_lo // k_lat), (band_hi + 1) // k_lat - 1  # coarse rows wholly inside
        cx_lo, cx_hi = -(-lon_lo // k_lon), (lon_hi + 1) // k_lon - 1
        cells: dict[tuple[int, int], Cell] = {}
        inner = cy_lo <= cy_hi and cx_lo <= cx_hi
        if inner:
            level = self.level(k_lat, k_lon)
            if (cy_hi - cy_lo + 1) * (cx_hi - cx_lo + 1) < len(level):
                wanted: Iterable[tuple[int, int]] = (
                    (y, x) for y in range(cy_lo, cy_hi + 1) for x in range(cx_lo, cx_hi + 1)
                )
                cells.update((key, level[key]) for key in wanted if key in level)
            else:
                cells.update((k, c) for k, c in level.items() if cy_lo <= k[0] <= cy_hi and cx_lo <= k[1] <= cx_hi)
        # the level's cells are shared: the edge rows below land only in other coarse cells, new ones
        inner_bands = (cy_lo * k_lat, (cy_hi + 1) * k_lat - 1) if inner else (0, -1)
        inner_lons = (cx_lo * k_lon, (cx_hi + 1) * k_lon - 1) if inner else (0, -1)
        for band in range(band_lo, band_hi + 1):
            if inner_bands[0] <= band <= inner_bands[1]:
                spans = [(lon_lo, inner_lons[0] - 1), (inner_lons[1] + 1, lon_hi)]
            else:
                spans = [(lon_lo, lon_hi)]
            for lo, hi in spans:
                if lo <= hi:
                    for row in self._band(band, lo, hi):
                        _add_row(cells, (band // k_lat, row[1] // k_lon), row)
        return cells


class SnapshotCache:
    """The snapshots of the filter sets asked last (`MAX_SNAPSHOTS`), one computation at a time per filter set.

    `compute(conn)` makes a filter set's snapshot; `version` is the mirror's state now. A snapshot of another
    version is recomputed in the request if it took under `SYNC_REFRESH_SECONDS`, else answered as it is (stale)
    while a background thread recomputes it.
    """

    def __init__(self) -> None:
        self._snapshots: OrderedDict[tuple[Any, ...], Snapshot] = OrderedDict()
        self._locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._refreshing: set[tuple[Any, ...]] = set()
        self._lock = threading.Lock()

    def get(
        self,
        engine: Engine,
        conn: Connection,
        key: tuple[Any, ...],
        version: tuple[Any, ...] | None,
        compute: Callable[[Connection], Snapshot],
    ) -> tuple[Snapshot, bool]:
        """The snapshot of filter set `key` and whether it is stale (a newer one is being computed)."""
        found = self._snapshots.get(key)
        if found is not None and found.version == version:
            return found, False
        if found is not None and found.seconds >= SYNC_REFRESH_SECONDS:
            self._refresh_later(engine, key, compute)
            return found, True
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one computation per filter set; the others wait for it and take its result
            found = self._snapshots.get(key)
            if found is None or found.version != version:
                found = compute(conn)
                self._keep(key, found)
        return found, False

    def _keep(self, key: tuple[Any, ...], snapshot: Snapshot) -> None:
        with self._lock:
            self._snapshots[key] = snapshot
            self._snapshots.move_to_end(key)
            while len(self._snapshots) > MAX_SNAPSHOTS:
                self._snapshots.popitem(last=False)

    def _refresh_later(self, engine: Engine, key: tuple[Any, ...], compute: Callable[[Connection], Snapshot]) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)

        def run() -> None:
            try:
                with engine.connect() as conn:
                    self._keep(key, compute(conn))
            except Exception:  # the next request tries again; the stale snapshot answers meanwhile
                log.exception("map snapshot refresh failed")
            finally:
                with self._lock:
                    self._refreshing.discard(key)

        threading.Thread(target=run, name="map-snapshot", daemon=True).start()
