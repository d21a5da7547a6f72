"""GET /v1/districts: the city's districts as the console's forms and filters offer them."""

from __future__ import annotations

from registry_api.city import DISTRICTS
from tests.registry_api.support import Api


def test_districts_list_every_district_with_its_box_and_centre(api: Api) -> None:
    answer = api.get("/v1/districts", org="CO-ZHCS")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["count"] == len(DISTRICTS) == len(body["data"]) == 16
    chaoyang = next(d for d in body["data"] if d["code"] == 110105)
    assert chaoyang["name"] == "朝阳区" and chaoyang["bbox"] == [116.40, 39.82, 116.64, 40.10]
    min_lon, min_lat, max_lon, max_lat = chaoyang["bbox"]
    lat, lon = chaoyang["center"]
    assert min_lat < lat < max_lat and min_lon < lon < max_lon
    assert [d["code"] for d in body["data"]] == sorted(d["code"] for d in body["data"])


def test_districts_need_a_token(api: Api) -> None:
    answer = api.client.get("/v1/districts")
    assert answer.status_code == 401 and answer.json()["code"]
