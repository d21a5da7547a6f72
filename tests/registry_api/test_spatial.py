"""Spatial queries of GET /v1/devices (`near`, `bbox`): exact against brute force, through the spatial index,
and kept in step by reorg rewinds; on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from indexer.service import create_mirror_engine
from indexer.spatial import CELL_E6, EARTH_RADIUS_M, INDEX_NAME, haversine_m, near_box
from indexer.store import BlockRef, Store
from registry_api import crud
from registry_api.device_sql import Prepared, Reader
from tests.registry_api.support import Api, device
from tests.support.mirror_rows import ORGS, TYPES, device_row, insert_devices, seed_reference_rows

METRES_PER_DEGREE = 111_195.0  # on the mean sphere
STATUSES = ("planned", "active", "suspended", "retired")


# ---------------------------------------------------------------- through the API and the chain


def test_a_planned_camera_30_m_from_an_existing_one_finds_it_within_50_m_not_20_m(api: Api) -> None:
    existing = device(1, location={"lat": 39.9219, "lon": 116.4436})
    elsewhere = device(2, location={"lat": 39.9300, "lon": 116.4436})  # ~900 m north
    api.register([existing, elsewhere])
    planned = (round(39.9219 + 30 / METRES_PER_DEGREE, 6), 116.4436)

    found = api.get("/v1/devices", params={"near": f"{planned[0]},{planned[1]},50", "type": "camera.road"}).json()
    assert [d["code"] for d in found["data"]] == [existing["code"]] and found["count"] == 1
    assert found["data"][0]["distance_m"] == pytest.approx(30.0, abs=0.1)

    assert api.get("/v1/devices", params={"near": f"{planned[0]},{planned[1]},20"}).json() == {"data": [], "count": 0}
    both = api.get("/v1/devices", params={"near": f"{planned[0]},{planned[1]},1000"}).json()
    assert [d["code"] for d in both["data"]] == [existing["code"], elsewhere["code"]]


# ---------------------------------------------------------------- straight on a mirror database


@pytest.fixture
def mirror(database_url: str) -> Iterator[Engine]:
    engine = create_mirror_engine(database_url)
    seed_reference_rows(engine)
    yield engine
    engine.dispose()


def _random_fleet(rnd: random.Random) -> list[dict[str, Any]]:
    """~3,000 devices: a dense Beijing cluster, one across the equator and the prime meridian (negative
    coordinates, where integer division truncates toward zero), devices on the index's band edges, and
    devices sharing one spot (ties ordered by code)."""
    spots: list[tuple[int, int]] = []
    spots += [
        (39_920_000 + rnd.randint(-30_000, 30_000), 116_440_000 + rnd.randint(-40_000, 40_000)) for _ in range(2000)
    ]
    spots += [(rnd.randint(-20_000, 20_000), rnd.randint(-20_000, 20_000)) for _ in range(600)]
    for _ in range(300):  # on and beside the index's band edges
        spots.append(
            (
                39_930_000 + rnd.choice((-1, 0, 1)) + CELL_E6 * rnd.randint(-2, 2),
                116_440_000 + rnd.randint(-9_000, 9_000),
            )
        )
    spots += [(39_925_000, 116_445_000)] * 40
    return [
        device_row(
            serial,
            lat,
            lon,
            type_id=rnd.choice(TYPES)[0],
            owner_org_id=rnd.choice(ORGS)[0],
            status=rnd.choice(STATUSES),
        )
        for serial, (lat, lon) in enumerate(spots)
    ]


def _matches(row: dict[str, Any], f: crud.DeviceFilter) -> bool:
    types = {name: t for t, name, _ in TYPES}
    orgs = {code: org_id for org_id, code, _, _ in ORGS}
    return (
        (f.type is None or row["type_id"] == types[f.type])
        and (f.owner is None or row["owner_org_id"] == orgs[f.owner])
        and (f.status is None or row["status"] == f.status)
    )


def _brute_near(fleet: list[dict[str, Any]], f: crud.DeviceFilter) -> list[tuple[float, str]]:
    assert f.near is not None
    lat, lon, radius = f.near
    found = []
    for row in fleet:
        metres = haversine_m(lat, lon, row["lat_e6"] / 1e6, row["lon_e6"] / 1e6)
        if metres <= radius and _matches(row, f):
            found.append((metres, row["code"]))
    return sorted(found)


def _brute_bbox(fleet: list[dict[str, Any]], f: crud.DeviceFilter) -> list[str]:
    assert f.bbox is not None
    min_lon, min_lat, max_lon, max_lat = (round(v * 1e6) for v in f.bbox)
    return sorted(
        row["code"]
        for row in fleet
        if min_lat <= row["lat_e6"] <= max_lat and min_lon <= row["lon_e6"] <= max_lon and _matches(row, f)
    )


def _random_filters(rnd: random.Random) -> dict[str, Any]:
    return {
        "type": rnd.choice([None, None, *(name for _, name, _ in TYPES)]),
        "owner": rnd.choice([None, None, *(code for _, code, _, _ in ORGS)]),
        "status": rnd.choice([None, None, *STATUSES]),
    }


def test_near_equals_a_brute_force_search_of_random_devices(mirror: Engine) -> None:
    rnd = random.Random(20_240_501)
    fleet = _random_fleet(rnd)
    insert_devices(mirror, fleet)
    with Session(mirror) as session:
        for _ in range(150):
            anchor = rnd.choice(fleet)
            lat = anchor["lat_e6"] / 1e6 + rnd.uniform(-0.002, 0.002)
            lon = anchor["lon_e6"] / 1e6 + rnd.uniform(-0.002, 0.002)
            f = crud.DeviceFilter(
                near=(lat, lon, rnd.choice([1, 20, 50, 120, 400, 1500, 6000])), **_random_filters(rnd)
            )
            expected = _brute_near(fleet, f)
            page, count = crud.list_devices(session, f, limit=1000, offset=0)
            assert count == len(expected), f
            assert [d.code for d in page] == [code for _, code in expected[:1000]], f
            assert [d.distance_m for d in page] == pytest.approx([round(m, 1) for m, _ in expected[:1000]], abs=0.051)
        # pages of 7 put together are the whole answer, in order
        f = crud.DeviceFilter(near=(39.925, 116.445, 300.0))
        whole = [code for _, code in _brute_near(fleet, f)]
        assert len(whole) > 40
        pages = [crud.list_devices(session, f, limit=7, offset=offset)[0] for offset in range(0, len(whole) + 7, 7)]
        assert [d.code for page in pages for d in page] == whole


def test_bbox_equals_a_brute_force_search_of_random_devices(mirror: Engine) -> None:
    rnd = random.Random(20_240_502)
    fleet = _random_fleet(rnd)
    insert_devices(mirror, fleet)
    with Session(mirror) as session:
        for _ in range(150):
            anchor = rnd.choice(fleet)
            lat, lon = anchor["lat_e6"] / 1e6, anchor["lon_e6"] / 1e6
            half_lat, half_lon = rnd.choice([0.0, 0.0005, 0.003, 0.02, 0.1]), rnd.choice([0.0, 0.0007, 0.004, 0.03])
            box = (lon - half_lon, lat - half_lat, lon + half_lon, lat + half_lat)
            f = crud.DeviceFilter(bbox=box, **_random_filters(rnd))
            expected = _brute_bbox(fleet, f)
            page, count = crud.list_devices(session, f, limit=1000, offset=0)
            assert count == len(expected), f
            assert [d.code for d in page] == expected[:1000], f


def test_the_circle_box_holds_the_whole_circle() -> None:
    rnd = random.Random(7)
    for _ in range(2000):
        lat, lon = rnd.uniform(-80, 80), rnd.uniform(-170, 170)
        radius = rnd.choice([1.0, 50.0, 5_000.0, 50_000.0])
        min_lat, max_lat, min_lon, max_lon = near_box(lat, lon, radius)
        bearing = rnd.uniform(0, 360)
        # a point just inside the circle along a random bearing (destination formula on the sphere)
        angle = radius * 0.999999 / EARTH_RADIUS_M
        p1, l1, b = math.radians(lat), math.radians(lon), math.radians(bearing)
        p2 = math.asin(math.sin(p1) * math.cos(angle) + math.cos(p1) * math.sin(angle) * math.cos(b))
        l2 = l1 + math.atan2(
            math.sin(b) * math.sin(angle) * math.cos(p1), math.cos(angle) - math.sin(p1) * math.sin(p2)
        )
        assert min_lat <= math.degrees(p2) * 1e6 <= max_lat
        assert min_lon <= math.degrees(l2) * 1e6 <= max_lon


def _captured(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """The SQL and arguments of every statement the device reads run (on the DB-API cursor, past SQLAlchemy)."""
    statements: list[tuple[str, Any]] = []
    rows = Reader.rows

    def capture(reader: Reader, prepared: Prepared, values: dict[str, Any], limit: int | None = None) -> list[Any]:
        arguments = prepared.arguments(values)
        statements.append((prepared.sql, tuple(arguments) if isinstance(arguments, list) else arguments))
        return rows(reader, prepared, values, limit)

    monkeypatch.setattr(Reader, "rows", capture)
    return statements


@pytest.mark.parametrize(
    "f",
    [
        crud.DeviceFilter(near=(39.92, 116.44, 500.0)),
        crud.DeviceFilter(near=(39.92, 116.44, 500.0), type="camera.road", status="active"),
        crud.DeviceFilter(bbox=(116.43, 39.91, 116.45, 39.93), owner="BJ-PSB"),
    ],
    ids=["near", "near-type-status", "bbox-owner"],
)
def test_the_spatial_index_serves_near_and_bbox_queries(
    mirror: Engine, f: crud.DeviceFilter, monkeypatch: pytest.MonkeyPatch
) -> None:
    rnd = random.Random(3)
    # 3,000 devices over a degree square and 40 where the queries look: matches are few, as in a city
    spots = [
        (39_920_000 + rnd.randint(-500_000, 500_000), 116_440_000 + rnd.randint(-500_000, 500_000)) for _ in range(3000)
    ]
    spots += [(39_920_000 + rnd.randint(-2_000, 2_000), 116_440_000 + rnd.randint(-2_000, 2_000)) for _ in range(40)]
    insert_devices(mirror, (device_row(i, lat, lon, type_id=1 + i % 2) for i, (lat, lon) in enumerate(spots)))
    statements = _captured(monkeypatch)
    with Session(mirror) as session:
        crud.list_devices(session, f, limit=10, offset=0)
    monkeypatch.undo()
    assert len(statements) == 1  # the page, with its window count of all matches
    with mirror.begin() as conn:
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            conn.execute(text("ANALYZE devices"))
            conn.execute(text("SET LOCAL enable_seqscan = off"))  # 3,000 rows: make the planner show its index
        explain = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
        for statement, parameters in statements:
            plan = " ".join(str(r) for r in conn.exec_driver_sql(explain + statement, parameters).all())
            assert INDEX_NAME in plan, plan


def _near_codes(engine: Engine, lat_e6: int, lon_e6: int, radius: float = 10.0) -> list[str]:
    with Session(engine) as session:
        page, _ = crud.list_devices(session, crud.DeviceFilter(near=(lat_e6 / 1e6, lon_e6 / 1e6, radius)), 100, 0)
    return [d.code for d in page]


def test_a_reorg_rewind_puts_moved_and_new_devices_back_where_the_ancestor_had_them(mirror: Engine) -> None:
    store = Store(mirror)
    a, b, c = (39_920_000, 116_440_000), (39_950_000, 116_470_000), (39_980_000, 116_500_000)
    camera = device_row(1, *a, block_number=10)
    with store.batch(journal_from=0) as batch:
        batch.block_number = 10
        batch.insert("devices", camera)
        store.finish_range(batch, [BlockRef(10, "0x0a", "0x09")], BlockRef(10, "0x0a", "0x09"), 11, keep_from=0)
    with store.batch(journal_from=0) as batch:
        batch.block_number = 11
        batch.put("devices", {**camera, "lat_e6": b[0], "lon_e6": b[1], "updated_block": 11})
        batch.insert("devices", device_row(2, *c, block_number=11))
        store.finish_range(batch, [BlockRef(11, "0x0b", "0x0a")], BlockRef(11, "0x0b", "0x0a"), 11, keep_from=0)
    new_code = device_row(2, *c)["code"]
    assert (_near_codes(mirror, *a), _near_codes(mirror, *b), _near_codes(mirror, *c)) == (
        [],
        [camera["code"]],
        [new_code],
    )

    store.rewind(10)

    assert (_near_codes(mirror, *a), _near_codes(mirror, *b), _near_codes(mirror, *c)) == ([camera["code"]], [], [])
    if mirror.dialect.name == "sqlite":
        with mirror.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"  # the index agrees with the table
