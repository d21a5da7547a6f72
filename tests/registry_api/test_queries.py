"""GET /v1/devices: pagination and every filter (type, owner, status, district, bbox, near)."""

from __future__ import annotations

from typing import Any

import pytest

from registry_api.crud import haversine_m
from tests.registry_api.support import Api, device

# (code, type, owner, status, district, lat, lon)
FLEET = [
    ("BJ-CAMR-110105000001", "camera.road", "BJ-PSB", "active", 110105, 39.9219, 116.4436),
    ("BJ-CAMR-110105000002", "camera.road", "BJ-PSB", "planned", 110105, 39.9300, 116.4500),
    ("BJ-CAMK-110101000003", "camera.checkpoint", "BJ-PSB", "active", 110101, 39.9040, 116.4070),
    ("BJ-CAMR-110105000004", "camera.road", "BJ-CY", "active", 110105, 39.9225, 116.4440),
    ("BJ-TRFC-110105000005", "sensor.traffic", "BJ-CY", "planned", 110105, 40.0000, 116.6000),
    ("BJ-GASS-110108000006", "sensor.gas", "BJ-CMC", "active", 110108, 39.9900, 116.3000),
]


def _file_fleet(api: Api) -> None:
    by_org: dict[str, list[dict[str, Any]]] = {}
    for code, dtype, owner, status, district, lat, lon in FLEET:
        by_org.setdefault(owner, []).append(
            device(0, code=code, type=dtype, status=status, district=district, location={"lat": lat, "lon": lon})
        )
    for owner, devices in by_org.items():
        api.register(devices, org=owner)


def _codes(api: Api, **params: Any) -> list[str]:
    answer = api.get("/v1/devices", params=params)
    assert answer.status_code == 200, answer.text
    return [d["code"] for d in answer.json()["data"]]


def test_pagination_counts_all_and_pages_by_code(api: Api) -> None:
    _file_fleet(api)
    everything = sorted(code for code, *_ in FLEET)
    page = api.get("/v1/devices", params={"limit": 4}).json()
    assert page["count"] == 6 and [d["code"] for d in page["data"]] == everything[:4]
    rest = api.get("/v1/devices", params={"limit": 4, "offset": 4}).json()
    assert rest["count"] == 6 and [d["code"] for d in rest["data"]] == everything[4:]
    beyond = api.get("/v1/devices", params={"offset": 100}).json()
    assert beyond == {"data": [], "count": 6}
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "many"}):
        answer = api.get("/v1/devices", params=bad)
        assert answer.status_code == 422
        assert answer.json()["code"] == "VALIDATION_ERROR" and answer.json()["field"] == next(iter(bad))


def test_filters_by_type_owner_status_and_district(api: Api) -> None:
    _file_fleet(api)
    assert _codes(api, type="camera.road") == ["BJ-CAMR-110105000001", "BJ-CAMR-110105000002", "BJ-CAMR-110105000004"]
    assert _codes(api, owner="BJ-CY") == ["BJ-CAMR-110105000004", "BJ-TRFC-110105000005"]
    assert _codes(api, status="planned") == ["BJ-CAMR-110105000002", "BJ-TRFC-110105000005"]
    assert _codes(api, district=110108) == ["BJ-GASS-110108000006"]
    assert _codes(api, type="camera.road", owner="BJ-PSB", status="active") == ["BJ-CAMR-110105000001"]
    assert _codes(api, type="no.such.type") == []
    assert _codes(api, owner="NOBODY") == []
    assert api.get("/v1/devices", params={"status": "broken"}).json()["field"] == "status"


def test_bbox_filter(api: Api) -> None:
    _file_fleet(api)
    assert _codes(api, bbox="116.40,39.90,116.46,39.95") == [
        "BJ-CAMK-110101000003",
        "BJ-CAMR-110105000001",
        "BJ-CAMR-110105000002",
        "BJ-CAMR-110105000004",
    ]
    assert _codes(api, bbox="116.59,39.99,116.61,40.01") == ["BJ-TRFC-110105000005"]
    for bad in ("1,2,3", "a,b,c,d", "116.5,39.9,116.4,39.95"):
        answer = api.get("/v1/devices", params={"bbox": bad})
        assert answer.status_code == 422 and answer.json()["field"] == "bbox"


def test_near_filter_is_exact_and_nearest_first(api: Api) -> None:
    _file_fleet(api)
    page = api.get("/v1/devices", params={"near": "39.9219,116.4436,200"}).json()
    codes = [d["code"] for d in page["data"]]
    assert codes == ["BJ-CAMR-110105000001", "BJ-CAMR-110105000004"]  # the second is ~75 m away
    assert page["count"] == 2
    assert page["data"][0]["distance_m"] == 0.0
    expected = haversine_m(39.9219, 116.4436, 39.9225, 116.4440)
    assert page["data"][1]["distance_m"] == pytest.approx(expected, abs=0.1)
    # 1.2 km reaches device 2 (~1.1 km away), not device 3 (~3.7 km)
    assert _codes(api, near="39.9219,116.4436,1200") == codes + ["BJ-CAMR-110105000002"]
    assert _codes(api, near="39.9219,116.4436,1200", limit=1, offset=2) == ["BJ-CAMR-110105000002"]
    for bad in ("39.9,116.4", "39.9,116.4,0", "39.9,116.4,1e9", "x,y,z"):
        answer = api.get("/v1/devices", params={"near": bad})
        assert answer.status_code == 422 and answer.json()["field"] == "near"


def test_haversine_matches_a_known_distance() -> None:
    # Tiananmen to the Bird's Nest: about 9.4 km
    assert haversine_m(39.9087, 116.3975, 39.9929, 116.3965) == pytest.approx(9_363, rel=0.01)
