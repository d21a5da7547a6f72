"""Demo carriers and a filed joint-review project of the dev profile, filed through the API.

BJ-CMC's poles and BJ-CY's cabinet stand around one of BJ-PSB's demo cameras; BJ-CY applies to reuse a pole and
files an imagery project of two planned cameras of the same type: one 30 m from the existing camera (what the
reviewer at BJ-PSB should see in `dirchain reviews show`), one mounted on the pole. The project stays filed.
"""

from __future__ import annotations

import math
import time
from typing import Any

import httpx

from chain_gateway.devnet import DEMO_CODE_RULES
from registry_api.crud import EARTH_RADIUS_M
from registry_api.demo import DemoFilingError, _wait_confirmed, _wait_indexed

__all__ = ["DEMO_APPLICANT", "file_demo_reviews"]

DEMO_APPLICANT = "BJ-CY"
PLANNED_SERIALS = (900_001, 900_002)  # above the demo fleet's serials
FALLBACK_SITE = ("camera.road", 110105, 39.9219, 116.4436)  # type, district, lat, lon when the fleet has no camera


def _north(lat: float, lon: float, metres: float) -> dict[str, float]:
    return {"lat": round(lat + math.degrees(metres / EARTH_RADIUS_M), 6), "lon": round(lon, 6)}


def _site(fleet: dict[str, list[dict[str, Any]]]) -> tuple[str, int, float, float]:
    """Type, district and location of BJ-PSB's first demo camera, the existing device the project duplicates."""
    for d in fleet.get("BJ-PSB", []):
        if d["type"].startswith("camera."):
            return d["type"], d["district"], d["location"]["lat"], d["location"]["lon"]
    return FALLBACK_SITE


def _carriers(district: int, lat: float, lon: float) -> dict[str, list[dict[str, Any]]]:
    """Carriers by owner org: three poles of BJ-CMC (one full) and a cabinet of BJ-CY, 40-120 m north of the site."""
    pole = {"kind": "pole", "district": district, "ports": 2, "attributes": {"height_m": 8, "power": "市电"}}
    return {
        "BJ-CMC": [
            {**pole, "code": f"BJ-POLE-{district}-900001", "location": _north(lat, lon, 85), "slots": 4},
            {**pole, "code": f"BJ-POLE-{district}-900002", "location": _north(lat, lon, 120), "slots": 3},
            {**pole, "code": f"BJ-POLE-{district}-900003", "location": _north(lat, lon, 40), "slots": 0},
        ],
        DEMO_APPLICANT: [
            {
                "code": f"BJ-CAB-{district}-900001",
                "kind": "cabinet",
                "district": district,
                "location": _north(lat, lon, 70),
                "slots": 1,
                "ports": 8,
                "attributes": {"network": "政务外网"},
            }
        ],
    }


def _planned(kind: str, district: int, lat: float, lon: float, pole: str) -> list[dict[str, Any]]:
    prefix = next(rule[2] for rule in DEMO_CODE_RULES if rule[1] == kind)
    planned = {"type": kind, "district": district, "built_at": "2025-06-01", "status": "planned"}
    return [
        {**planned, "code": f"{prefix}{district}{PLANNED_SERIALS[0]:06d}", "location": _north(lat, lon, 30),
         "attributes": {"vendor": "大华", "purpose": "路口补盲"}},
        {**planned, "code": f"{prefix}{district}{PLANNED_SERIALS[1]:06d}", "location": _north(lat, lon, 86),
         "attributes": {"vendor": "大华", "carrier": pole}},
    ]  # fmt: skip


def _newest_project(client: httpx.Client, token: str, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = client.get(
            "/v1/reviews", params={"applicant": DEMO_APPLICANT}, headers={"Authorization": f"Bearer {token}"}
        ).json()
        if page.get("data"):
            return max(int(r["id"]) for r in page["data"])
        time.sleep(0.25)
    raise DemoFilingError(f"the review project of {DEMO_APPLICANT} was not indexed within {timeout} s")


def file_demo_reviews(client: httpx.Client, orgs: dict[str, Any], fleet: dict[str, list[dict[str, Any]]]) -> str:
    """File the demo carriers, a reuse request and a review project (writes of each org sent at once, then awaited);
    returns a summary line."""

    def post(org: str, path: str, body: dict[str, Any], key: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {orgs[org]['token']}", "Idempotency-Key": key}
        return client.post(path, json=body, headers=headers)

    kind, district, lat, lon = _site(fleet)
    carriers = _carriers(district, lat, lon)
    sent = [
        (org, post(org, "/v1/carriers", body, f"demo-carrier-{body['code']}"))
        for org, bodies in carriers.items()
        for body in bodies
    ]
    for org, response in sent:
        _wait_confirmed(client, orgs[org]["token"], response)
    pole = carriers["BJ-CMC"][0]["code"]
    applicant = orgs[DEMO_APPLICANT]["token"]
    _wait_indexed(client, applicant, f"/v1/carriers/{pole}")
    reuse = {"slots": 1, "ports": 1, "purpose": "新建视频监控点位共杆"}
    project = {
        "domain": "imagery",
        "title": "朝阳区新建视频监控点位（补盲）",
        "devices": _planned(kind, district, lat, lon, pole),
    }
    sent = [
        (DEMO_APPLICANT, post(DEMO_APPLICANT, f"/v1/carriers/{pole}/reuse-requests", reuse, "demo-reuse-1")),
        (DEMO_APPLICANT, post(DEMO_APPLICANT, "/v1/reviews", project, "demo-review-1")),
    ]
    for org, response in sent:
        _wait_confirmed(client, orgs[org]["token"], response)
    project_id = _newest_project(client, applicant)
    count = sum(len(bodies) for bodies in carriers.values())
    return (
        f"{count} carriers, a pending reuse request of {pole}, and review project {project_id} of {DEMO_APPLICANT} "
        f"(2 planned {kind}, one 30 m from an existing one) awaiting BJ-PSB: dirchain reviews show {project_id}"
    )
