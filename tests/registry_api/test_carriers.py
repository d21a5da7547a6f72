"""Carriers (感知载体) through the API against anvil and each database: registration, usage, the reuse flow (request,
grant taking the capacity and re-checking it, refusal, withdrawal), lists with filters and near, and every refusal
with its stable code and field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.registry_api.review_support import ORIGIN, accept, carrier, confirmed, north_of, refused, register_carrier
from tests.registry_api.support import Api

OWNER, REQUESTER, OTHER = "BJ-PSB", "BJ-CMC", "BJ-EMB"
POLE = "BJ-POLE-110105-0001"


def request_reuse(api: Api, slots: int, ports: int, org: str = REQUESTER, code: str = POLE) -> int:
    """Apply to reuse `code`, settle, and return the new request's id (the newest the org made)."""
    confirmed(
        api, f"/v1/carriers/{code}/reuse-requests", {"slots": slots, "ports": ports, "purpose": "加装传感器"}, org
    )
    made = api.get("/v1/carrier-reuse-requests", org, params={"role": "requester"}).json()
    return max(int(r["id"]) for r in made["data"])


def usage(api: Api, code: str = POLE) -> tuple[int, int, int, int]:
    shown = api.get(f"/v1/carriers/{code}", OWNER).json()
    return shown["slots_used"], shown["ports_used"], shown["slots_free"], shown["ports_free"]


def test_reuse_flow_grant_takes_the_capacity_and_is_rechecked_at_grant_time(api: Api) -> None:
    registered = register_carrier(api, carrier(POLE), OWNER)
    assert (registered["owner_org"], registered["kind"], registered["district"]) == (OWNER, "pole", 110105)
    assert registered["attributes"] == {"height_m": 8, "power": "市电"}
    assert registered["location"] == north_of(ORIGIN, 0) and registered["reuse_requests"] == []
    confirmed(api, f"/v1/carriers/{POLE}/usage", {"slots_used": 1, "ports_used": 0}, OWNER)
    assert usage(api) == (1, 0, 3, 2)

    first = request_reuse(api, 2, 1)
    request = api.get(f"/v1/carrier-reuse-requests/{first}", OWNER).json()
    assert (request["carrier_code"], request["requester_org"], request["owner_org"], request["status"]) == (
        POLE,
        REQUESTER,
        OWNER,
        "requested",
    )
    assert (request["slots"], request["ports"], request["purpose"]) == (2, 1, "加装传感器")
    assert usage(api) == (1, 0, 3, 2)  # nothing is taken before the owner grants
    refused(api.get(f"/v1/carrier-reuse-requests/{first}", OTHER), 404, "REUSE_REQUEST_NOT_FOUND", "id")
    assert [r["id"] for r in api.get(f"/v1/carriers/{POLE}", OWNER).json()["reuse_requests"]] == [first]
    assert api.get(f"/v1/carriers/{POLE}", OTHER).json()["reuse_requests"] == []

    decision = f"/v1/carrier-reuse-requests/{first}/decision"
    refused(api.post(decision, {"grant": True}, REQUESTER), 403, "CARRIER_NOT_OWNED")
    op = confirmed(api, decision, {"grant": True, "reason": "同意共杆"}, OWNER)
    granted = api.get(f"/v1/carrier-reuse-requests/{first}", REQUESTER).json()
    assert (granted["status"], granted["reason"], granted["decided_by"]) == (
        "granted",
        "同意共杆",
        api.chain.orgs[OWNER].account,
    )
    assert (granted["closed_tx_hash"], granted["closed_block"]) == (op["tx_hash"], op["block_number"])
    assert usage(api) == (3, 1, 1, 1)
    refused(api.post(decision, {"grant": False, "reason": "改变主意"}, OWNER), 409, "REUSE_REQUEST_CLOSED")

    # beyond the spare capacity now: refused at request time
    path = f"/v1/carriers/{POLE}/reuse-requests"
    body = refused(api.post(path, {"slots": 2, "purpose": "加装摄像机"}, OTHER), 409, "NO_CAPACITY")
    assert (body["slots_free"], body["ports_free"]) == (1, 1)
    # each fits alone, not both: the second grant is refused when it comes
    second, third = request_reuse(api, 1, 0), request_reuse(api, 1, 1, OTHER)
    confirmed(api, f"/v1/carrier-reuse-requests/{second}/decision", {"grant": True}, OWNER)
    late = f"/v1/carrier-reuse-requests/{third}/decision"
    refused(api.post(late, {"grant": True}, OWNER), 409, "NO_CAPACITY")
    refused(api.post(late, {"grant": False}, OWNER), 422, "VALIDATION_ERROR", "reason")
    confirmed(api, late, {"grant": False, "reason": "杆位已满"}, OWNER)
    assert api.get(f"/v1/carrier-reuse-requests/{third}", OTHER).json()["status"] == "refused"
    assert usage(api) == (4, 1, 0, 1)


def test_requester_withdraws_an_open_request(api: Api) -> None:
    register_carrier(api, carrier(POLE), OWNER)
    request_id = request_reuse(api, 0, 1)
    withdrawal = f"/v1/carrier-reuse-requests/{request_id}/withdrawal"
    refused(api.post(withdrawal, {}, OWNER), 403, "NOT_REQUESTER")
    confirmed(api, withdrawal, {}, REQUESTER)
    withdrawn = api.get(f"/v1/carrier-reuse-requests/{request_id}", OWNER).json()
    assert (withdrawn["status"], withdrawn["decided_by"]) == ("withdrawn", api.chain.orgs[REQUESTER].account)
    refused(api.post(withdrawal, {}, REQUESTER), 409, "REUSE_REQUEST_CLOSED")
    body = refused(
        api.post(f"/v1/carrier-reuse-requests/{request_id}/decision", {"grant": True}, OWNER),
        409,
        "REUSE_REQUEST_CLOSED",
    )
    assert body["status"] == "withdrawn"
    refused(api.post("/v1/carrier-reuse-requests/99/withdrawal", {}, REQUESTER), 404, "REUSE_REQUEST_NOT_FOUND")
    assert usage(api) == (0, 0, 4, 2)


def test_refusals_answer_stable_codes_with_the_field_at_fault(api: Api) -> None:
    register_carrier(api, carrier(POLE), OWNER)

    def post(path: str, body: dict[str, Any], org: str = OWNER) -> Any:
        return api.post(path, body, org)

    refused(post("/v1/carriers", carrier(POLE, 100), REQUESTER), 409, "CARRIER_DUPLICATE", "code")
    refused(post("/v1/carriers", carrier("pole 1")), 422, "VALIDATION_ERROR", "code")
    refused(post("/v1/carriers", carrier("P" * 65)), 422, "VALIDATION_ERROR", "code")
    refused(post("/v1/carriers", carrier("BJ-POLE-2", kind="tower")), 422, "VALIDATION_ERROR", "kind")
    refused(post("/v1/carriers", carrier("BJ-POLE-2", slots=70_000)), 422, "VALIDATION_ERROR", "slots")
    far_north = carrier("BJ-POLE-2", location={"lat": 91, "lon": 116.4})
    refused(post("/v1/carriers", far_north), 422, "VALIDATION_ERROR", "location.lat")
    owner_phone = carrier("BJ-POLE-2", attributes={"owner_phone_number": "13800000000"})
    refused(post("/v1/carriers", owner_phone), 422, "PERSONAL_DATA_NOT_ALLOWED", "attributes.owner_phone_number")
    body = refused(post("/v1/carriers", carrier("BJ-POLE-2"), "CO-ZHCS"), 403, "ROLE_REQUIRED")
    assert body["role"] == "REGISTRAR"

    usage_path = f"/v1/carriers/{POLE}/usage"
    refused(post(usage_path, {"slots_used": 5, "ports_used": 0}), 422, "USAGE_EXCEEDS_CAPACITY", "slots_used")
    refused(post(usage_path, {"slots_used": 0, "ports_used": 3}), 422, "USAGE_EXCEEDS_CAPACITY", "ports_used")
    refused(post(usage_path, {"slots_used": 1, "ports_used": 0}, REQUESTER), 403, "CARRIER_NOT_OWNED", "code")
    missing = "/v1/carriers/BJ-POLE-NONE/usage"
    refused(post(missing, {"slots_used": 1, "ports_used": 0}), 404, "CARRIER_NOT_FOUND", "code")
    refused(api.get("/v1/carriers/BJ-POLE-NONE"), 404, "CARRIER_NOT_FOUND", "code")

    reuse = f"/v1/carriers/{POLE}/reuse-requests"
    refused(post(reuse, {"slots": 1, "purpose": "自用"}), 422, "OWN_CARRIER", "code")
    refused(post(reuse, {"purpose": "无"}, REQUESTER), 422, "VALIDATION_ERROR", "slots")
    refused(post(reuse, {"slots": 1, "purpose": ""}, REQUESTER), 422, "VALIDATION_ERROR", "purpose")
    refused(post(reuse, {"slots": 1, "purpose": "  "}, REQUESTER), 422, "VALIDATION_ERROR", "purpose")
    refused(post(reuse, {"slots": 1, "purpose": "x"}, "CO-ZHCS"), 403, "ROLE_REQUIRED")
    refused(
        post("/v1/carriers/BJ-POLE-NONE/reuse-requests", {"slots": 1, "purpose": "x"}, REQUESTER),
        404,
        "CARRIER_NOT_FOUND",
    )
    refused(post("/v1/carrier-reuse-requests/7/decision", {"grant": True}), 404, "REUSE_REQUEST_NOT_FOUND", "id")
    assert api.get("/v1/carrier-reuse-requests", OWNER).json() == {"data": [], "count": 0}


def test_lists_filter_by_owner_district_kind_spare_capacity_and_distance(api: Api) -> None:
    register_carrier(api, carrier("BJ-POLE-A", 0), OWNER)
    register_carrier(api, carrier("BJ-CAB-B", 80, kind="cabinet", slots=1, ports=8), OWNER)
    register_carrier(api, carrier("BJ-POLE-C", 300, district=110108), REQUESTER)
    confirmed(api, "/v1/carriers/BJ-CAB-B/usage", {"slots_used": 1, "ports_used": 2}, OWNER)

    def codes(**params: Any) -> list[str]:
        answer = api.get("/v1/carriers", params=params)
        assert answer.status_code == 200, answer.text
        return [c["code"] for c in answer.json()["data"]]

    assert codes() == ["BJ-CAB-B", "BJ-POLE-A", "BJ-POLE-C"]
    assert codes(owner=REQUESTER) == ["BJ-POLE-C"]
    assert codes(district=110105) == ["BJ-CAB-B", "BJ-POLE-A"]
    assert codes(kind="cabinet") == ["BJ-CAB-B"]
    assert codes(has_spare=True) == ["BJ-POLE-A", "BJ-POLE-C"]
    assert codes(has_spare=False) == ["BJ-CAB-B"]
    lat, lon = north_of(ORIGIN, 100)["lat"], ORIGIN[1]
    nearest = api.get("/v1/carriers", params={"near": f"{lat},{lon},250"}).json()
    assert [(c["code"], c["distance_m"]) for c in nearest["data"]] == [
        ("BJ-CAB-B", pytest.approx(20, abs=0.5)),
        ("BJ-POLE-A", pytest.approx(100, abs=0.5)),
        ("BJ-POLE-C", pytest.approx(200, abs=0.5)),
    ]
    assert codes(near=f"{lat},{lon},150", has_spare=True) == ["BJ-POLE-A"]
    page = api.get("/v1/carriers", params={"limit": 1, "offset": 1}).json()
    assert ([c["code"] for c in page["data"]], page["count"]) == (["BJ-POLE-A"], 3)
    refused(api.get("/v1/carriers", params={"near": "39.9,116.4"}), 422, "VALIDATION_ERROR", "near")
    refused(api.get("/v1/carriers", params={"near": "39.9,116.4,0"}), 422, "VALIDATION_ERROR", "near")


def test_idempotency_key_replays_the_registration(api: Api) -> None:
    key = {"Idempotency-Key": "pole-a"}
    operation = accept(api, "/v1/carriers", carrier("BJ-POLE-A"), OWNER, key)
    again = api.post("/v1/carriers", carrier("BJ-POLE-A"), OWNER, key)
    assert (again.status_code, again.json()["operation_id"]) == (202, operation)
    refused(api.post("/v1/carriers", carrier("BJ-POLE-B"), OWNER, key), 409, "IDEMPOTENCY_CONFLICT")
    assert api.settle(operation, OWNER)["status"] == "confirmed"
    assert api.get("/v1/carriers").json()["count"] == 1
