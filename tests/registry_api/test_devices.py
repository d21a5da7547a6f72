"""Devices end to end: filed through the API, mined by the gateway, mirrored by the indexer, read back."""

from __future__ import annotations

from tests.registry_api.support import Api, device


def test_two_devices_are_registered_confirmed_and_readable_with_tx_and_block(api: Api) -> None:
    answer = api.post("/v1/devices", {"devices": [device(1), device(2, status="planned")]})
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert accepted["status"] == "queued"
    assert accepted["links"]["operation"] == f"/v1/operations/{accepted['operation_id']}"
    assert answer.headers["Location"] == accepted["links"]["operation"]

    op = api.settle(accepted["operation_id"])
    assert op["status"] == "confirmed"
    assert op["function"] == "registerDevices"
    assert op["tx_hash"].startswith("0x") and op["block_number"] > 0 and op["block_hash"].startswith("0x")
    assert op["error"] is None

    one = api.get("/v1/devices/BJ-CAMR-110105000001").json()
    assert one["tx_hash"] == op["tx_hash"] and one["block_number"] == op["block_number"]
    assert one["type"] == "camera.road" and one["owner_org"] == "BJ-PSB" and one["status"] == "active"
    assert one["location"] == {"lat": 39.9219, "lon": 116.4436}
    assert one["built_at"] == "2023-06-01T00:00:00Z"
    assert one["attributes"] == {"vendor": "海康威视", "model": "DS-2CD3T47G2", "poe": True}
    assert one["attributes_hash"].startswith("0x") and len(one["attributes_hash"]) == 66
    assert one["district"] == 110105 and one["updated_block"] == op["block_number"]
    two = api.get("/v1/devices/BJ-CAMR-110105000002").json()
    assert two["status"] == "planned"


def test_attributes_hash_is_keccak_of_canonical_json(api: Api) -> None:
    api.register([device(1, attributes={"z": 1, "a": {"y": "北京", "b": [1, 2]}})])
    one = api.get("/v1/devices/BJ-CAMR-110105000001").json()
    canonical = '{"a":{"b":[1,2],"y":"北京"},"z":1}'
    assert one["attributes_hash"] == "0x" + api.w3.keccak(text=canonical).hex().removeprefix("0x")


def test_unknown_device_is_404_device_not_found(api: Api) -> None:
    answer = api.get("/v1/devices/BJ-CAMR-110105999999")
    assert answer.status_code == 404
    assert answer.json()["code"] == "DEVICE_NOT_FOUND"
    assert api.get("/v1/devices/BJ-CAMR-110105999999/history").json()["code"] == "DEVICE_NOT_FOUND"


def test_history_lists_the_on_chain_events_in_order(api: Api) -> None:
    registered = api.register([device(1)])
    suspend = api.post("/v1/devices/BJ-CAMR-110105000001/lifecycle", {"action": "suspend", "note": "维修"})
    assert suspend.status_code == 202, suspend.text
    suspended = api.settle(suspend.json()["operation_id"])
    inspect = api.post(
        "/v1/devices/BJ-CAMR-110105000001/inspections",
        {"result": "issues", "inspected_at": "2024-03-01T08:00:00+08:00", "report_hash": "0x" + "ab" * 32},
    )
    assert inspect.status_code == 202, inspect.text
    inspected = api.settle(inspect.json()["operation_id"])
    assert inspected["status"] == "confirmed"

    history = api.get("/v1/devices/BJ-CAMR-110105000001/history").json()
    assert history["count"] == 3
    events = history["data"]
    assert [e["event"] for e in events] == ["DeviceRegistered", "DeviceLifecycleChanged", "DeviceInspected"]
    assert events[0]["tx_hash"] == registered["tx_hash"] and events[0]["block_number"] == registered["block_number"]
    assert events[0]["block_hash"] == registered["block_hash"]
    assert events[1]["tx_hash"] == suspended["tx_hash"]
    assert events[1]["args"]["action"] == "suspend" and events[1]["args"]["toStatus"] == "suspended"
    assert events[1]["args"]["note"] == "维修"
    assert events[2]["args"]["result"] == "issues"
    assert events[2]["sender"] == api.chain.orgs["BJ-PSB"].account
    assert all(e["time"].endswith("Z") and isinstance(e["log_index"], int) for e in events)
    one = api.get("/v1/devices/BJ-CAMR-110105000001").json()
    assert one["status"] == "suspended"
    assert one["last_inspected_at"] == "2024-03-01T00:00:00Z"
    paged = api.get("/v1/devices/BJ-CAMR-110105000001/history", params={"limit": 1, "offset": 1}).json()
    assert paged["count"] == 3 and [e["event"] for e in paged["data"]] == ["DeviceLifecycleChanged"]


def test_update_changes_location_and_replaces_attributes(api: Api) -> None:
    api.register([device(1)])
    answer = api.patch(
        "/v1/devices/BJ-CAMR-110105000001", {"location": {"lat": 39.95, "lon": 116.5}, "attributes": {"vendor": "大华"}}
    )
    assert answer.status_code == 202, answer.text
    assert api.settle(answer.json()["operation_id"])["status"] == "confirmed"
    one = api.get("/v1/devices/BJ-CAMR-110105000001").json()
    assert one["location"] == {"lat": 39.95, "lon": 116.5}
    assert one["attributes"] == {"vendor": "大华"} and one["district"] == 110105


def test_replace_and_retire_follow_the_life_cycle(api: Api) -> None:
    api.register([device(1), device(2, status="planned")])
    replace = api.post(
        "/v1/devices/BJ-CAMR-110105000001/lifecycle", {"action": "replace", "replaced_by": "BJ-CAMR-110105000002"}
    )
    assert replace.status_code == 202, replace.text
    assert api.settle(replace.json()["operation_id"])["status"] == "confirmed"
    old = api.get("/v1/devices/BJ-CAMR-110105000001").json()
    assert old["status"] == "replaced" and old["replaced_by"] == "BJ-CAMR-110105000002"
    retire = api.post("/v1/devices/BJ-CAMR-110105000002/lifecycle", {"action": "retire"})
    assert api.settle(retire.json()["operation_id"])["status"] == "confirmed"
    assert api.get("/v1/devices/BJ-CAMR-110105000002").json()["status"] == "retired"


def test_forbidden_transition_is_409_with_the_contract_error(api: Api) -> None:
    api.register([device(1)])
    answer = api.post("/v1/devices/BJ-CAMR-110105000001/lifecycle", {"action": "activate"})
    assert answer.status_code == 409
    body = answer.json()
    assert body["code"] == "ILLEGAL_TRANSITION"
    assert body["contract_error"]["name"] == "DeviceRegistryIllegalTransition"
    assert body["contract_error"]["args"]["code"] == "BJ-CAMR-110105000001"
    assert "active" in body["message"] and "activate" in body["message"]


def test_another_org_changing_a_device_is_403_device_not_owned(api: Api) -> None:
    api.register([device(1)])
    for answer in (
        api.post("/v1/devices/BJ-CAMR-110105000001/lifecycle", {"action": "suspend"}, org="BJ-CMC"),
        api.patch("/v1/devices/BJ-CAMR-110105000001", {"district": 110101}, org="BJ-CY"),
        api.post(
            "/v1/devices/BJ-CAMR-110105000001/inspections",
            {"result": "passed", "inspected_at": "2024-01-01"},
            org="BJ-EIB",
        ),
    ):
        assert answer.status_code == 403, answer.text
        body = answer.json()
        assert body["code"] == "DEVICE_NOT_OWNED"
        assert body["contract_error"]["name"] == "DeviceRegistryNotOwner"
    assert api.get("/v1/devices/BJ-CAMR-110105000001").json()["status"] == "active"


def test_change_of_an_unregistered_device_is_404(api: Api) -> None:
    answer = api.post("/v1/devices/BJ-CAMR-110105000404/lifecycle", {"action": "retire"})
    assert answer.status_code == 404
    assert answer.json()["contract_error"]["name"] == "DeviceRegistryUnknownDevice"


def test_code_breaking_its_type_rule_is_422_naming_the_field(api: Api) -> None:
    batch = api.post("/v1/devices", {"devices": [device(1), device(2, code="BJ-CAMR-11010500000X")]})
    assert batch.status_code == 422
    body = batch.json()
    assert body["code"] == "CODE_RULE_VIOLATION" and body["field"] == "devices[1].code"
    assert body["rule"]["prefix"] == "BJ-CAMR-" and body["rule"]["example"] in body["message"]
    single = api.post("/v1/devices", device(1, code="BJ-CAMK-110105000001"))
    assert single.status_code == 422
    assert single.json()["code"] == "CODE_RULE_VIOLATION" and single.json()["field"] == "code"
    short = api.post("/v1/devices", {"devices": [device(1, code="BJ-CAMR-1101")]})
    assert short.json()["field"] == "devices[0].code" and "20 characters" in short.json()["message"]


def test_unknown_type_and_duplicates_in_a_request_are_422(api: Api) -> None:
    unknown = api.post("/v1/devices", {"devices": [device(1), device(2, type="camera.drone")]})
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "UNKNOWN_TYPE" and unknown.json()["field"] == "devices[1].type"
    duplicate = api.post("/v1/devices", {"devices": [device(1), device(2), device(1)]})
    assert duplicate.status_code == 422
    body = duplicate.json()
    assert body["code"] == "DUPLICATE_CODE_IN_REQUEST" and body["field"] == "devices[2].code"


def test_registering_an_existing_code_is_409_duplicate_code(api: Api) -> None:
    api.register([device(1)])
    answer = api.post("/v1/devices", {"devices": [device(5), device(1)]}, org="BJ-CY")
    assert answer.status_code == 409
    body = answer.json()
    assert body["code"] == "DUPLICATE_CODE" and body["field"] == "devices[1].code"
    assert body["contract_error"]["name"] == "DeviceRegistryDuplicateCode"


def test_personal_data_in_attributes_is_refused(api: Api) -> None:
    for attributes, key in (
        ({"vendor": "x", "maintainer": {"phone_number": "13800000000"}}, "maintainer.phone_number"),
        ({"姓名": "张三"}, "姓名"),
        ({"owner_name": "someone"}, "owner_name"),
        ({"contacts": [{"IdCard": "110101199001011234"}]}, "contacts[0].IdCard"),
    ):
        answer = api.post("/v1/devices", {"devices": [device(1, attributes=attributes)]})
        assert answer.status_code == 422, attributes
        body = answer.json()
        assert body["code"] == "PERSONAL_DATA_NOT_ALLOWED"
        assert body["field"] == f"devices[0].attributes.{key}"
    microphone = api.post("/v1/devices", device(1, attributes={"microphone": True, "model_name": "X1"}))
    assert microphone.status_code == 202, microphone.text
