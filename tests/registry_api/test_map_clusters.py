"""GET /v1/map/clusters: counts that add up to the devices of the box, filters, devices when zoomed in, bad boxes;
through the index (street views) and the snapshot (district and city views), on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text

from registry_api import map_clusters, map_snapshot
from tests.registry_api.support import Api, device
from tests.support.mirror_rows import TYPES, device_row, insert_devices

CITY = (115.4, 39.4, 117.5, 41.1)
CENTRE = (116.40, 39.90, 116.43, 39.92)  # 3 x 2 cells of 0.01 degree: read through the index
STATUSES = ("planned", "active", "suspended", "retired")
DISTRICTS = (110101, 110105, 110108)
FINE = 10_000


@pytest.fixture
def fleet(api: Api) -> list[dict[str, Any]]:
    """1,500 devices straight into the mirror: 1,200 in central Beijing, 300 over the whole city."""
    rnd = random.Random(20_261_125)
    with api.app.state.engine.connect() as conn:
        org_ids = [row[0] for row in conn.execute(text("SELECT org_id FROM members ORDER BY org_id")).all()][:3]
    spots = [(rnd.randint(39_895_000, 39_925_000), rnd.randint(116_395_000, 116_435_000)) for _ in range(1200)]
    spots += [(rnd.randint(39_450_000, 41_050_000), rnd.randint(115_450_000, 117_450_000)) for _ in range(300)]
    rows = [
        device_row(
            900_000 + serial,
            lat,
            lon,
            type_id=rnd.choice(TYPES)[0],
            owner_org_id=rnd.choice(org_ids),
            status=rnd.choice(STATUSES),
            district=rnd.choice(DISTRICTS),
        )
        for serial, (lat, lon) in enumerate(spots)
    ]
    insert_devices(api.app.state.engine, rows)
    return rows


def _clusters(api: Api, box: tuple[float, ...], zoom: int, **filters: Any) -> dict[str, Any]:
    answer = api.get("/v1/map/clusters", params={"bbox": ",".join(map(str, box)), "zoom": zoom, **filters})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _owner_codes(api: Api) -> dict[int, str]:
    with api.app.state.engine.connect() as conn:
        return {int(org_id): code for org_id, code in conn.execute(text("SELECT org_id, code FROM members"))}


def _in_box(rows: list[dict[str, Any]], box: tuple[float, ...], touched_cells: bool = False) -> list[dict[str, Any]]:
    """The rows in the box, or (`touched_cells`) in the 0.01-degree cells the box touches (the snapshot's answer)."""
    min_lon, min_lat, max_lon, max_lat = (round(v * 1e6) for v in box)
    if touched_cells:

        def cell(v: int, offset: int) -> int:
            return (v + offset) // FINE

        return [
            r
            for r in rows
            if cell(min_lat, 90_000_000) <= cell(r["lat_e6"], 90_000_000) <= cell(max_lat, 90_000_000)
            and cell(min_lon, 180_000_000) <= cell(r["lon_e6"], 180_000_000) <= cell(max_lon, 180_000_000)
        ]
    return [r for r in rows if min_lat <= r["lat_e6"] <= max_lat and min_lon <= r["lon_e6"] <= max_lon]


def _by_type(rows: list[dict[str, Any]]) -> Counter[str]:
    names = {t: name for t, name, _ in TYPES}
    return Counter(names[r["type_id"]] for r in rows)


def _assert_clusters_hold(answer: dict[str, Any], expected: list[dict[str, Any]]) -> None:
    assert answer["mode"] == "clusters" and not answer["truncated"]
    assert answer["total"] == len(expected) == sum(c["count"] for c in answer["clusters"])
    assert sum((Counter(c["by_type"]) for c in answer["clusters"]), Counter()) == _by_type(expected)
    for cluster in answer["clusters"]:
        assert sum(cluster["by_type"].values()) == cluster["count"]


def test_city_view_clusters_add_up_to_every_device_with_a_summary_per_district(api: Api, fleet: list) -> None:
    answer = _clusters(api, CITY, 9)
    assert answer["source"] == "snapshot"
    _assert_clusters_hold(answer, fleet)
    assert 1 < len(answer["clusters"]) < len(fleet)
    assert {d["district"]: d["count"] for d in answer["districts"]} == Counter(r["district"] for r in fleet)
    # the cluster of the dense centre sits at the mean of its devices
    biggest = max(answer["clusters"], key=lambda c: c["count"])
    assert 39.895 <= biggest["lat"] <= 39.925 and 116.395 <= biggest["lon"] <= 116.435


def test_a_district_view_counts_the_devices_of_the_cells_its_box_touches(api: Api, fleet: list) -> None:
    box = (116.3712, 39.8815, 116.4411, 39.9333)
    answer = _clusters(api, box, 12)
    assert answer["source"] == "snapshot" and answer["grid"] == {"lat": 0.02, "lon": 0.02}
    _assert_clusters_hold(answer, _in_box(fleet, box, touched_cells=True))


def test_a_street_view_counts_exactly_the_devices_in_its_box(api: Api, fleet: list) -> None:
    answer = _clusters(api, CENTRE, 15)
    assert answer["source"] == "index"
    _assert_clusters_hold(answer, _in_box(fleet, CENTRE))
    for cluster in answer["clusters"]:
        assert CENTRE[1] <= cluster["lat"] <= CENTRE[3] and CENTRE[0] <= cluster["lon"] <= CENTRE[2]


@pytest.mark.parametrize(
    ("box", "zoom"), [(CITY, 9), ((116.3712, 39.8815, 116.4411, 39.9333), 12), (CENTRE, 15)], ids=["city", "12", "15"]
)
def test_filters_apply_to_the_clusters(api: Api, fleet: list, box: tuple[float, ...], zoom: int) -> None:
    owners = _owner_codes(api)
    owner_id = fleet[0]["owner_org_id"]
    snapshot = zoom < 15
    for params, keep in (
        ({"type": "camera.checkpoint"}, lambda r: r["type_id"] == 2),
        ({"status": "suspended"}, lambda r: r["status"] == "suspended"),
        ({"district": 110108}, lambda r: r["district"] == 110108),
        ({"owner": owners[owner_id]}, lambda r: r["owner_org_id"] == owner_id),
        ({"type": "camera.road", "status": "active"}, lambda r: r["type_id"] == 1 and r["status"] == "active"),
    ):
        touched = [r for r in _in_box(fleet, box, touched_cells=snapshot) if keep(r)]
        answer = _clusters(api, box, zoom, **params)
        if len(touched) > map_clusters.MAX_POINTS or zoom < map_clusters.POINTS_MIN_ZOOM:
            _assert_clusters_hold(answer, touched)
        else:  # the devices themselves, exactly those in the box
            assert answer["mode"] == "points", params
            expected = sorted(r["code"] for r in _in_box(fleet, box) if keep(r))
            assert [p["code"] for p in answer["points"]] == expected, params
    assert _clusters(api, box, zoom, type="no.such.type")["total"] == 0


def test_a_zoomed_in_viewport_answers_its_devices_to_click(api: Api, fleet: list) -> None:
    box = (116.41, 39.90, 116.415, 39.905)
    expected = sorted(_in_box(fleet, box), key=lambda r: r["code"])
    assert 0 < len(expected) <= map_clusters.MAX_POINTS
    answer = _clusters(api, box, 17)
    assert (answer["mode"], answer["clusters"], answer["total"]) == ("points", [], len(expected))
    names = {t: name for t, name, _ in TYPES}
    assert answer["points"] == [
        {"code": r["code"], "type": names[r["type_id"]], "status": r["status"], "lat": r["lat_e6"] / 1e6,
         "lon": r["lon_e6"] / 1e6}
        for r in expected
    ]  # fmt: skip
    # a large box of a rare filter is answered device by device too, from the district zoom in
    rare = _clusters(api, CITY, 12, district=110108, status="retired", type="camera.road")
    expected = sorted(r["code"] for r in fleet if (r["district"], r["status"], r["type_id"]) == (110108, "retired", 1))
    assert rare["mode"] == "points" and [p["code"] for p in rare["points"]] == expected
    overview = _clusters(api, CITY, 11, district=110108, status="retired", type="camera.road")
    assert overview["mode"] == "clusters" and overview["total"] == len(expected)


def test_more_cells_than_the_cap_answer_the_largest_and_say_truncated(
    api: Api, fleet: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _clusters(api, CITY, 12)
    monkeypatch.setattr(map_clusters, "MAX_CLUSTERS", 5)
    capped = _clusters(api, CITY, 12)
    assert capped["truncated"] and len(capped["clusters"]) == 5
    largest = sorted((c["count"] for c in whole["clusters"]), reverse=True)[:5]
    assert [c["count"] for c in capped["clusters"]] == largest
    assert capped["total"] == whole["total"] == len(fleet)


def test_a_device_registered_on_chain_shows_in_the_next_city_view(api: Api) -> None:
    before = _clusters(api, CITY, 9)
    api.register([device(1, location={"lat": 39.9219, "lon": 116.4436})])
    after = _clusters(api, CITY, 9)
    assert after["total"] == before["total"] + 1 == sum(c["count"] for c in after["clusters"])
    assert after["as_of_block"] is not None and not after["stale"]
    assert "BJ-CAMR-110105000001" in {p["code"] for p in _clusters(api, CITY, 12)["points"]}


def test_a_slow_snapshot_answers_stale_while_a_newer_one_is_computed(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(map_snapshot, "SYNC_REFRESH_SECONDS", 0.0)  # every snapshot counts as slow
    before = _clusters(api, CITY, 9)  # none yet: computed in the request
    assert not before["stale"]
    api.register([device(1, location={"lat": 39.9219, "lon": 116.4436})])
    stale = _clusters(api, CITY, 9)
    assert stale["stale"] and stale["total"] == before["total"] and stale["as_of_block"] == before["as_of_block"]
    deadline = time.monotonic() + 30
    while (fresh := _clusters(api, CITY, 9))["stale"] or fresh["total"] == before["total"]:
        assert time.monotonic() < deadline, fresh
        time.sleep(0.05)
    assert fresh["total"] == before["total"] + 1 and fresh["as_of_block"] > (before["as_of_block"] or 0)


@pytest.mark.parametrize(
    "bbox",
    ["116.3,39.8,116.5", "a,b,c,d", "116.5,39.8,116.3,40.0", "116.3,40.0,116.5,39.8", "116.3,-91,116.5,40",
     "181,39.8,182,40", "nan,39.8,116.5,40", "116.3,39.8,116.5,40,1", ""],
)  # fmt: skip
def test_a_bad_bbox_is_refused_with_its_field(api: Api, bbox: str) -> None:
    answer = api.get("/v1/map/clusters", params={"bbox": bbox, "zoom": 10})
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "bbox" and answer.json()["code"] == "VALIDATION_ERROR"


def test_zoom_and_bbox_are_required_and_zoom_in_range(api: Api) -> None:
    missing = api.get("/v1/map/clusters", params={"zoom": 10})
    assert (missing.status_code, missing.json()["field"]) == (422, "bbox")
    for zoom in (-1, 23, "x"):
        answer = api.get("/v1/map/clusters", params={"bbox": ",".join(map(str, CITY)), "zoom": zoom})
        assert (answer.status_code, answer.json()["field"]) == (422, "zoom")
    anonymous = api.client.get("/v1/map/clusters", params={"bbox": ",".join(map(str, CITY)), "zoom": 9})
    assert anonymous.status_code == 401


def test_snapshot_views_of_random_boxes_equal_grouping_their_cells_by_hand(api: Api, fleet: list) -> None:
    """The snapshot's re-grouping (whole coarse cells from its grid, edge cells from fine cells) against a brute
    force grouping of the devices of the fine cells each box touches."""
    rnd = random.Random(5)
    names = {t: name for t, name, _ in TYPES}
    checked = 0
    for _ in range(40):
        zoom = rnd.randint(7, 13)
        lon, lat = rnd.uniform(115.5, 117.3), rnd.uniform(39.5, 40.9)
        if rnd.random() < 0.5:  # around the dense centre
            lon, lat = rnd.uniform(116.37, 116.45), rnd.uniform(39.88, 39.94)
        half = rnd.uniform(0.06, 1.2)
        box = (round(lon - half, 6), round(lat - half * 0.6, 6), round(lon + half, 6), round(lat + half * 0.6, 6))
        answer = _clusters(api, box, zoom)
        if answer["source"] != "snapshot" or answer["mode"] != "clusters":
            continue
        k_lat, k_lon = round(answer["grid"]["lat"] * 100), round(answer["grid"]["lon"] * 100)
        groups: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for r in _in_box(fleet, box, touched_cells=True):
            key = ((r["lat_e6"] + 90_000_000) // FINE // k_lat, (r["lon_e6"] + 180_000_000) // FINE // k_lon)
            groups.setdefault(key, []).append(r)
        expected = sorted(
            (
                len(rows),
                round(sum(r["lat_e6"] for r in rows) / len(rows) / 1e6, 6),
                round(sum(r["lon_e6"] for r in rows) / len(rows) / 1e6, 6),
                sorted(Counter(names[r["type_id"]] for r in rows).items()),
            )
            for rows in groups.values()
        )
        got = sorted((c["count"], c["lat"], c["lon"], sorted(c["by_type"].items())) for c in answer["clusters"])
        assert got == expected, (box, zoom)
        checked += 1
    assert checked >= 20
