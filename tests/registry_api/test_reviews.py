"""Joint review (联审) through the API against anvil and each database: the review view shows the existing devices of
the same type near each planned one; approval puts the planned devices on the ledger for the applicant; refusals,
withdrawals, role and lead-org checks answer stable codes with the field at fault."""

from __future__ import annotations

from typing import Any

import pytest

from registry_api.crud import haversine_m
from tests.registry_api.review_support import (
    ORIGIN,
    accept,
    carrier,
    confirmed,
    file_review,
    north_of,
    planned,
    refused,
    register_carrier,
)
from tests.registry_api.support import Api, device

APPLICANT, LEAD, OTHER_REVIEWER = "BJ-CY", "BJ-PSB", "BJ-CMC"


def nearby(review: dict[str, Any], position: int = 0) -> list[tuple[str, float]]:
    """(code, distance) of the existing devices the review view lists next to planned device `position`."""
    return [(d["code"], d["distance_m"]) for d in review["devices"][position]["nearby_devices"]]


def test_review_of_a_planned_camera_30_m_from_an_existing_one_shows_that_camera(api: Api) -> None:
    existing = device(1, location=north_of(ORIGIN, 0))
    checkpoint = device(2, type="camera.checkpoint", code="BJ-CAMK-110105000002", location=north_of(ORIGIN, 25))
    far = device(3, location=north_of(ORIGIN, 530))  # 500 m from the planned camera
    api.register([existing, checkpoint, far])
    planned_camera = planned(10, 30, attributes={"vendor": "大华", "carrier": "BJ-POLE-0001"})
    register_carrier(api, carrier("BJ-POLE-0001", 32))
    register_carrier(api, carrier("BJ-POLE-FULL", 31, slots=0))  # no spare slot: not offered
    project_id = file_review(api, [planned_camera])

    review = api.get(f"/v1/reviews/{project_id}", LEAD).json()
    assert (review["status"], review["domain"], review["applicant_org"], review["lead_org"]) == (
        "filed",
        "imagery",
        APPLICANT,
        LEAD,
    )
    assert (review["radius_m"], review["device_count"], review["devices_with_neighbours"]) == (100.0, 1, 1)
    [shown] = review["devices"]
    assert (shown["code"], shown["type"], shown["carrier"], shown["on_ledger"]) == (
        planned_camera["code"],
        "camera.road",
        "BJ-POLE-0001",
        False,
    )
    assert shown["location"] == planned_camera["location"]
    # the existing road camera 30 m away; not the checkpoint camera 5 m away (another type), not the one 500 m away
    [(code, distance)] = nearby(review)
    expected = haversine_m(ORIGIN[0], ORIGIN[1], planned_camera["location"]["lat"], planned_camera["location"]["lon"])
    assert code == existing["code"] and distance == pytest.approx(30, abs=0.5)
    assert distance == pytest.approx(expected, abs=0.1)
    near = shown["nearby_devices"][0]
    assert (near["type"], near["owner_org"], near["status"]) == ("camera.road", LEAD, "active")
    assert [(c["code"], c["slots_free"], c["ports_free"]) for c in shown["nearby_carriers"]] == [("BJ-POLE-0001", 4, 2)]
    assert shown["nearby_carriers"][0]["distance_m"] == pytest.approx(2, abs=0.5)

    wider = api.get(f"/v1/reviews/{project_id}", LEAD, params={"radius_m": 600}).json()
    assert [code for code, _ in nearby(wider)] == [existing["code"], far["code"]]
    assert wider["devices"][0]["nearby_devices"][1]["distance_m"] == pytest.approx(500, abs=1)
    closer = api.get(f"/v1/reviews/{project_id}", LEAD, params={"radius_m": 20}).json()
    assert (nearby(closer), closer["devices_with_neighbours"]) == ([], 0)
    refused(api.get(f"/v1/reviews/{project_id}", LEAD, params={"radius_m": 0}), 422, "VALIDATION_ERROR", "radius_m")


def test_approval_puts_the_planned_devices_on_the_ledger_for_the_applicant(api: Api) -> None:
    devices = [planned(20, 0), planned(21, 40, type="camera.face", code="BJ-CAMF-110105000021")]
    project_id = file_review(api, devices)
    assert api.get(f"/v1/devices/{devices[0]['code']}").status_code == 404

    op = confirmed(api, f"/v1/reviews/{project_id}/approval", {}, LEAD)
    for body in devices:
        on_ledger = api.get(f"/v1/devices/{body['code']}").json()
        assert (on_ledger["status"], on_ledger["owner_org"], on_ledger["type"]) == ("planned", APPLICANT, body["type"])
        assert (on_ledger["location"], on_ledger["attributes"]) == (body["location"], body["attributes"])
        assert on_ledger["tx_hash"] == op["tx_hash"]
    review = api.get(f"/v1/reviews/{project_id}").json()
    assert (review["status"], review["reviewer_org"], review["reviewer"]) == (
        "approved",
        LEAD,
        api.chain.orgs[LEAD].account,
    )
    assert (review["closed_tx_hash"], review["closed_block"]) == (op["tx_hash"], op["block_number"])
    assert [d["on_ledger"] for d in review["devices"]] == [True, True]
    assert nearby(review) == []  # a project's own devices are not its neighbours
    history = api.get(f"/v1/devices/{devices[0]['code']}/history").json()["data"]
    assert [e["event"] for e in history] == ["DeviceRegistered"]

    # the applicant owns them now: it builds and activates them; the lead org does not
    lifecycle = f"/v1/devices/{devices[0]['code']}/lifecycle"
    refused(api.post(lifecycle, {"action": "activate"}, LEAD), 403, "DEVICE_NOT_OWNED")
    confirmed(api, lifecycle, {"action": "activate"}, APPLICANT)
    assert api.get(f"/v1/devices/{devices[0]['code']}").json()["status"] == "active"
    refused(api.post(f"/v1/reviews/{project_id}/approval", {}, LEAD), 409, "REVIEW_NOT_FILED")


def test_only_a_reviewer_of_the_lead_org_decides_and_refusals_need_a_reason(api: Api) -> None:
    project_id = file_review(api, [planned(30)])
    approval, refusal = f"/v1/reviews/{project_id}/approval", f"/v1/reviews/{project_id}/refusal"

    body = refused(api.post(approval, {}, APPLICANT), 403, "ROLE_REQUIRED")
    assert body["role"] == "REVIEWER"
    body = refused(api.post(approval, {}, OTHER_REVIEWER), 403, "NOT_LEAD_ORG")
    assert body["contract_error"]["name"] == "ReviewNotLead"
    refused(api.post(refusal, {"reason": "不同意"}, OTHER_REVIEWER), 403, "NOT_LEAD_ORG")
    refused(api.post(refusal, {"reason": ""}, LEAD), 422, "VALIDATION_ERROR", "reason")
    refused(api.post(refusal, {"reason": "   "}, LEAD), 422, "VALIDATION_ERROR", "reason")
    refused(api.post(refusal, {}, LEAD), 422, "VALIDATION_ERROR", "reason")

    reason = "30 米内已有同类摄像机，重复建设"
    confirmed(api, refusal, {"reason": reason}, LEAD)
    review = api.get(f"/v1/reviews/{project_id}").json()
    assert (review["status"], review["reason"], review["reviewer_org"]) == ("refused", reason, LEAD)
    assert api.get(f"/v1/devices/{planned(30)['code']}").status_code == 404
    body = refused(api.post(approval, {}, LEAD), 409, "REVIEW_NOT_FILED")
    assert body["status"] == "refused"
    refused(api.post(f"/v1/reviews/{project_id}/withdrawal", {}, APPLICANT), 409, "REVIEW_NOT_FILED")

    # the other domains have their own leads
    city = file_review(api, [planned(31, type="sensor.gas", code="BJ-GASS-110105000031")], "city_management")
    refused(api.post(f"/v1/reviews/{city}/approval", {}, LEAD), 403, "NOT_LEAD_ORG")
    confirmed(api, f"/v1/reviews/{city}/approval", {}, OTHER_REVIEWER)
    assert api.get(f"/v1/reviews/{city}").json()["reviewer_org"] == OTHER_REVIEWER

    missing = project_id + 99
    refused(api.get(f"/v1/reviews/{missing}"), 404, "REVIEW_NOT_FOUND", "id")
    refused(api.post(f"/v1/reviews/{missing}/approval", {}, LEAD), 404, "REVIEW_NOT_FOUND", "id")
    refused(api.post(f"/v1/reviews/{missing}/refusal", {"reason": "x"}, LEAD), 404, "REVIEW_NOT_FOUND", "id")


def test_applicant_withdraws_a_filed_project_and_no_one_else_may(api: Api) -> None:
    project_id = file_review(api, [planned(40)])
    withdrawal = f"/v1/reviews/{project_id}/withdrawal"
    refused(api.post(withdrawal, {}, LEAD), 403, "NOT_APPLICANT")
    refused(api.post(withdrawal, {}, "CO-ZHCS"), 403, "ROLE_REQUIRED")
    confirmed(api, withdrawal, {}, APPLICANT)
    assert api.get(f"/v1/reviews/{project_id}").json()["status"] == "withdrawn"
    refused(api.post(f"/v1/reviews/{project_id}/approval", {}, LEAD), 409, "REVIEW_NOT_FILED")
    # a withdrawn project's codes are free to plan again
    assert file_review(api, [planned(40)]) == project_id + 1


def test_device_filed_on_the_ledger_meanwhile_refuses_the_approval_as_a_whole(api: Api) -> None:
    devices = [planned(50), planned(51, 20)]
    project_id = file_review(api, devices)
    api.register([device(51, location=devices[1]["location"])])

    body = refused(api.post(f"/v1/reviews/{project_id}/approval", {}, LEAD), 409, "DUPLICATE_CODE", "devices[1].code")
    assert body["contract_error"]["name"] == "DeviceRegistryDuplicateCode"
    review = api.get(f"/v1/reviews/{project_id}").json()
    assert (review["status"], [d["on_ledger"] for d in review["devices"]]) == ("filed", [False, True])
    assert api.get(f"/v1/devices/{devices[0]['code']}").status_code == 404
    confirmed(api, f"/v1/reviews/{project_id}/refusal", {"reason": f"{devices[1]['code']} 已登记在册"}, LEAD)


def test_filing_is_checked_before_the_chain_with_the_field_at_fault(api: Api) -> None:
    api.register([device(60)])
    open_project = file_review(api, [planned(61)])

    def filing(devices: list[dict[str, Any]], **changes: Any) -> Any:
        return api.post(
            "/v1/reviews", {"domain": "imagery", "title": "新建点位", "devices": devices, **changes}, APPLICANT
        )

    refused(filing([{**planned(62), "status": "active"}]), 422, "NOT_PLANNED", "devices[0].status")
    refused(filing([planned(62), planned(62)]), 422, "DUPLICATE_CODE_IN_REQUEST", "devices[1].code")
    refused(filing([planned(62, code="BJ-CAMR-11010500006X")]), 422, "CODE_RULE_VIOLATION", "devices[0].code")
    refused(filing([planned(62, type="camera.thermal")]), 422, "UNKNOWN_TYPE", "devices[0].type")
    refused(filing([planned(62), planned(60)]), 409, "DUPLICATE_CODE", "devices[1].code")
    body = refused(filing([planned(61)]), 409, "CODE_IN_OPEN_PROJECT", "devices[0].code")
    assert body["project_id"] == open_project
    missing = planned(62, attributes={"carrier": "BJ-POLE-NONE"})
    refused(filing([missing]), 422, "UNKNOWN_CARRIER", "devices[0].attributes.carrier")
    refused(filing([planned(62, attributes={"carrier": 7})]), 422, "VALIDATION_ERROR", "devices[0].attributes.carrier")
    personal = planned(62, attributes={"联系电话": "13800000000"})
    refused(filing([personal]), 422, "PERSONAL_DATA_NOT_ALLOWED", "devices[0].attributes.联系电话")
    refused(filing([planned(62 + i) for i in range(201)]), 422, "VALIDATION_ERROR", "devices")
    refused(filing([]), 422, "VALIDATION_ERROR", "devices")
    refused(filing([planned(62)], domain="transport"), 422, "VALIDATION_ERROR", "domain")
    refused(filing([planned(62)], title=" "), 422, "VALIDATION_ERROR", "title")
    company = api.post("/v1/reviews", {"domain": "other", "title": "t", "devices": [planned(62)]}, "CO-ZHCS")
    body = refused(company, 403, "ROLE_REQUIRED")
    assert body["role"] == "REGISTRAR"
    assert api.get("/v1/reviews").json()["count"] == 1  # nothing else was filed


def test_lists_filter_and_page_and_idempotency_replays_the_filing(api: Api) -> None:
    first = file_review(api, [planned(70)])
    second = file_review(api, [planned(71, type="sensor.gas", code="BJ-GASS-110105000071")], "city_management")
    key = {"Idempotency-Key": "cmc-project-1"}
    air = planned(72, type="sensor.air", code="BJ-AIRQ-110105000072")
    body = {"domain": "other", "title": "新建空气质量监测点", "devices": [air]}
    operation = accept(api, "/v1/reviews", body, "BJ-CMC", key)
    again = api.post("/v1/reviews", body, "BJ-CMC", key)
    assert (again.status_code, again.json()["operation_id"], again.headers["Idempotent-Replayed"]) == (
        202,
        operation,
        "true",
    )
    refused(api.post("/v1/reviews", {**body, "title": "另一个项目"}, "BJ-CMC", key), 409, "IDEMPOTENCY_CONFLICT")
    api.settle(operation, "BJ-CMC")
    confirmed(api, f"/v1/reviews/{first}/refusal", {"reason": "重复建设"}, LEAD)

    def ids(**params: Any) -> list[int]:
        return [r["id"] for r in api.get("/v1/reviews", params=params).json()["data"]]

    third = second + 1
    assert ids() == [first, second, third]
    assert ids(status="filed") == [second, third]
    assert ids(domain="city_management") == [second]
    assert ids(applicant="BJ-CMC") == [third]
    assert ids(limit=1, offset=1) == [second]
    page = api.get("/v1/reviews", params={"limit": 1}).json()
    assert page["count"] == 3 and len(page["data"]) == 1
    leads = {r["domain"]: r["lead_org"] for r in api.get("/v1/reviews").json()["data"]}
    assert leads == {"imagery": "BJ-PSB", "city_management": "BJ-CMC", "other": "BJ-EIB"}
    refused(api.get("/v1/reviews", params={"status": "pending"}), 422, "VALIDATION_ERROR", "status")
