"""Helpers of the joint-review and carrier tests: points at a distance, planned devices, carriers, filed projects."""

from __future__ import annotations

import math
from typing import Any

from registry_api.crud import EARTH_RADIUS_M
from tests.registry_api.support import Api, device
from tests.registry_api.test_algorithms import accept, confirmed, refused

__all__ = [
    "ORIGIN",
    "accept",
    "carrier",
    "confirmed",
    "file_review",
    "north_of",
    "planned",
    "refused",
    "register_carrier",
]

ORIGIN = (39.9219, 116.4436)  # Chaoyang, where the tests' existing camera stands


def north_of(point: tuple[float, float], metres: float) -> dict[str, float]:
    """The location `metres` due north of `point` (lat, lon), rounded to micro-degrees as the chain keeps it."""
    lat, lon = point
    return {"lat": round(lat + math.degrees(metres / EARTH_RADIUS_M), 6), "lon": lon}


def planned(serial: int, metres_north: float = 0.0, **changes: Any) -> dict[str, Any]:
    """A planned road camera `metres_north` of ORIGIN as a client files it in a project."""
    body = device(serial, location=north_of(ORIGIN, metres_north), **changes)
    body.pop("status")
    return body


def carrier(code: str, metres_north: float = 0.0, **changes: Any) -> dict[str, Any]:
    """A pole with 4 slots and 2 ports `metres_north` of ORIGIN as a client registers it."""
    body: dict[str, Any] = {
        "code": code,
        "kind": "pole",
        "district": 110105,
        "location": north_of(ORIGIN, metres_north),
        "slots": 4,
        "ports": 2,
        "attributes": {"height_m": 8, "power": "市电"},
    }
    body.update(changes)
    return body


def register_carrier(api: Api, body: dict[str, Any], org: str = "BJ-CMC") -> dict[str, Any]:
    """Register a carrier, settle it and return it as GET /v1/carriers/{code} shows it."""
    confirmed(api, "/v1/carriers", body, org)
    answer = api.get(f"/v1/carriers/{body['code']}", org)
    assert answer.status_code == 200, answer.text
    shown: dict[str, Any] = answer.json()
    return shown


def file_review(
    api: Api,
    devices: list[dict[str, Any]],
    domain: str = "imagery",
    org: str = "BJ-CY",
    title: str = "新建视频监控点位",
) -> int:
    """File a project, settle it and return its id (the newest project of `org`)."""
    confirmed(api, "/v1/reviews", {"domain": domain, "title": title, "devices": devices}, org)
    listed = api.get("/v1/reviews", org, params={"applicant": org, "limit": 1000}).json()
    return max(int(r["id"]) for r in listed["data"])
