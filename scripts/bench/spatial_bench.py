#!/usr/bin/env python
"""Spatial query benchmark: `near` (500 m) and `bbox` (1 km square) over 1,000,000 devices, SQLite and PostgreSQL.

A query benchmark, so the devices do not come from a chain: `--devices` rows of the indexer's `devices` shape are
bulk-inserted straight into a fresh mirror database (SQLite executemany, PostgreSQL COPY) with the spatial index
in place, spread over Beijing's 16 districts (equal numbers per district box, so the small central districts are
dense). PostgreSQL is ANALYZEd after the load, as its autovacuum would. Then `--queries` of each kind run one
after another through `registry_api.crud.list_devices` (the code behind GET /v1/devices: count, page of 50 with
type and owner joined, distances in SQL), centred on random devices; latency p50/p99 and queries/s are printed.
`--baseline N` also times N queries of each kind with the spatial index dropped, for comparison. Nothing is
asserted.

    .venv/bin/python scripts/bench/spatial_bench.py [--devices 1000000] [--queries 2000] [--baseline 20]
"""

# ruff: noqa: T201 - a plain script whose output is its figures
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import Figure, add_json_option, on_sqlite_and_postgres, peak_rss_mib, write_figures  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from indexer.service import create_mirror_engine  # noqa: E402
from indexer.spatial import INDEX_NAME, create_spatial_index  # noqa: E402
from registry_api import crud  # noqa: E402
from registry_api.city import DISTRICTS  # noqa: E402
from tests.support.mirror_rows import ORGS, TYPES, device_row, insert_devices, seed_reference_rows  # noqa: E402

COMMAND = ".venv/bin/python scripts/bench/spatial_bench.py"

NEAR_RADIUS_M = 500.0
BOX_HALF_DEGREES = (0.0045, 0.0059)  # lat, lon: ~1 km x 1 km at Beijing's latitude
PAGE = 50


def fleet(count: int, seed: int) -> Iterator[dict[str, Any]]:
    """`count` devices, equal numbers uniformly in each district's box."""
    rnd = random.Random(seed)
    for serial in range(count):
        district = DISTRICTS[serial % len(DISTRICTS)]
        min_lon, min_lat, max_lon, max_lat = district.bbox
        yield device_row(
            serial,
            round(rnd.uniform(min_lat, max_lat) * 1e6),
            round(rnd.uniform(min_lon, max_lon) * 1e6),
            type_id=rnd.choice(TYPES)[0],
            owner_org_id=rnd.choice(ORGS)[0],
            district=district.code,
        )


def centres(count: int, devices: int, seed: int) -> list[tuple[float, float]]:
    """Locations of random devices of the fleet (queries where devices are), regenerated from the same seed."""
    wanted = set(random.Random(seed + 1).sample(range(devices), count))
    found = [(r["lat_e6"] / 1e6, r["lon_e6"] / 1e6) for i, r in enumerate(fleet(devices, seed)) if i in wanted]
    random.Random(seed + 2).shuffle(found)
    return found


def timed(run: Callable[[], int], queries: int) -> tuple[list[float], float, int]:
    """(sorted latencies in seconds, wall seconds, rows returned) of `queries` calls of `run`."""
    latencies: list[float] = []
    rows = 0
    started = time.perf_counter()
    for _ in range(queries):
        t = time.perf_counter()
        rows += run()
        latencies.append(time.perf_counter() - t)
    return sorted(latencies), time.perf_counter() - started, rows


def report(label: str, latencies: list[float], wall: float, rows: int) -> float:
    """Print the query's figures; returns its p99 in ms."""
    p50 = statistics.median(latencies) * 1e3
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3
    print(f"  {label:<28} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   {len(latencies) / wall:8,.0f} queries/s   "
          f"{rows / len(latencies):6.1f} devices per answer")  # fmt: skip
    return p99


def query_runs(engine: Engine, points: list[tuple[float, float]]) -> dict[str, Callable[[int], int]]:
    """Callables that run query i of each kind and return the number of devices matched."""
    dlat, dlon = BOX_HALF_DEGREES

    def near(i: int) -> int:
        lat, lon = points[i % len(points)]
        with Session(engine) as session:
            return crud.list_devices(session, crud.DeviceFilter(near=(lat, lon, NEAR_RADIUS_M)), PAGE, 0)[1]

    def bbox(i: int) -> int:
        lat, lon = points[i % len(points)]
        f = crud.DeviceFilter(bbox=(lon - dlon, lat - dlat, lon + dlon, lat + dlat))
        with Session(engine) as session:
            return crud.list_devices(session, f, PAGE, 0)[1]

    def near_typed(i: int) -> int:
        lat, lon = points[i % len(points)]
        f = crud.DeviceFilter(near=(lat, lon, NEAR_RADIUS_M), type="camera.road")
        with Session(engine) as session:
            return crud.list_devices(session, f, PAGE, 0)[1]

    return {"near 500 m": near, "near 500 m, type camera.road": near_typed, "bbox 1 km x 1 km": bbox}


def bench(name: str, url: str, args: argparse.Namespace) -> list[Figure]:
    figures = []
    engine = create_mirror_engine(url)
    try:
        seed_reference_rows(engine)
        started = time.perf_counter()
        inserted = insert_devices(engine, fleet(args.devices, args.seed))
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.execute(text("ANALYZE devices"))
        print(f"{name}: {inserted:,} devices inserted (index maintained) in {time.perf_counter() - started:.1f} s")
        points = centres(min(args.queries, args.devices), args.devices, args.seed)
        runs = query_runs(engine, points)
        for run in runs.values():  # warm the caches a little, as a running API would be
            for i in range(50):
                run(i)
        for label, run in runs.items():
            counter = iter(range(args.queries))
            p99 = report(label, *timed(lambda run=run, counter=counter: run(next(counter)), args.queries))
            slug = label.split(",")[0].replace(" ", "_") + ("_typed" if "type" in label else "")
            figures.append(
                Figure(key=f"spatial.{name}_{slug}_p99_ms", unit="ms", value=p99, runs=[p99], better="lower",
                       what=f"spatial query {label}, {name}, in process, {args.devices:,} devices, p99",
                       command=COMMAND, peak_memory={"bench": round(peak_rss_mib(), 1)})
            )  # fmt: skip
        if args.baseline:
            with engine.begin() as conn:
                conn.execute(text(f"DROP INDEX {INDEX_NAME}"))
            for label, run in runs.items():
                counter = iter(range(args.baseline))
                report(
                    f"{label} (no index)", *timed(lambda run=run, counter=counter: run(next(counter)), args.baseline)
                )
            create_spatial_index(engine)
    finally:
        engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--baseline", type=int, default=20, help="queries without the index (0: skip)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-postgres", action="store_true")
    add_json_option(parser)
    args = parser.parse_args()
    write_figures(args.json, on_sqlite_and_postgres("spatial", bench, args))


if __name__ == "__main__":
    main()
