"""Bad input always answers 4xx with the JSON error body (code, message, field), never a 500 or a traceback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from registry_api.encoding import canonical_json, code_example, code_pattern, code_rule_violation, to_unix
from registry_api.errors import describe_revert, field_path
from tests.registry_api.support import Api, device


def _error(answer: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert body["code"] == code and isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in answer.text
    if field is not None:
        assert body["field"] == field, body
    return body


def test_malformed_json_is_400(api: Api) -> None:
    answer = api.client.post(
        "/v1/devices",
        content=b'{"devices": [',
        headers={**api.auth("BJ-PSB"), "Content-Type": "application/json"},
    )
    _error(answer, 400, "MALFORMED_JSON")


def test_wrong_types_are_422_with_the_field_path(api: Api) -> None:
    cases: list[tuple[Any, str]] = [
        ({"devices": [device(1), device(2, district="chaoyang")]}, "devices[1].district"),
        ({"devices": [device(1, location={"lat": "north", "lon": 116.4})]}, "devices[0].location.lat"),
        ({"devices": [device(1, location={"lat": 91, "lon": 116.4})]}, "devices[0].location.lat"),
        (device(1, status="retired"), "status"),
        (device(1, attributes=["not", "an", "object"]), "attributes"),
        (device(1, built_at="yesterday"), "built_at"),
        (device(1, district=1234567), "district"),
        ({"devices": []}, "devices"),
        ({"devices": "all of them"}, "devices"),
        ([device(1)], None),
        ("just a string", None),
    ]
    for body, field in cases:
        answer = api.post("/v1/devices", body)
        error = _error(answer, 422, "VALIDATION_ERROR", field)
        assert error["errors"] and all("field" in e and "message" in e for e in error["errors"])


def test_missing_member_and_unknown_member_are_422(api: Api) -> None:
    body = device(1)
    del body["location"]
    _error(api.post("/v1/devices", body), 422, "VALIDATION_ERROR", "location")
    _error(api.post("/v1/devices", device(1, colour="red")), 422, "VALIDATION_ERROR", "colour")


def test_future_build_date_is_refused(api: Api) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    _error(api.post("/v1/devices", device(1, built_at=tomorrow)), 422, "VALIDATION_ERROR", "built_at")


def test_too_many_devices_in_one_request_are_refused(api: Api) -> None:
    devices = [device(i) for i in range(501)]
    _error(api.post("/v1/devices", {"devices": devices}), 422, "VALIDATION_ERROR", "devices")


def test_oversized_attributes_are_refused(api: Api) -> None:
    _error(api.post("/v1/devices", device(1, attributes={"blob": "x" * 9000})), 422, "VALIDATION_ERROR", "attributes")


def test_bad_lifecycle_and_inspection_bodies(api: Api) -> None:
    path = "/v1/devices/BJ-CAMR-110105000001"
    _error(api.post(f"{path}/lifecycle", {"action": "explode"}), 422, "VALIDATION_ERROR", "action")
    _error(api.post(f"{path}/lifecycle", {"action": "replace"}), 422, "VALIDATION_ERROR", "replaced_by")
    _error(api.post(f"{path}/lifecycle", {"action": "retire", "replaced_by": "X"}), 422, "VALIDATION_ERROR")
    _error(api.post(f"{path}/inspections", {"result": "passed"}), 422, "VALIDATION_ERROR", "inspected_at")
    _error(
        api.post(f"{path}/inspections", {"result": "passed", "inspected_at": "2024-01-01", "report_hash": "0x12"}),
        422,
        "VALIDATION_ERROR",
        "report_hash",
    )
    _error(api.patch(path, {}), 422, "VALIDATION_ERROR")


def test_unknown_routes_and_methods_answer_the_error_body(api: Api) -> None:
    _error(api.get("/v1/nothing-here"), 404, "NOT_FOUND")
    _error(api.client.delete("/v1/devices", headers=api.auth("BJ-PSB")), 405, "METHOD_NOT_ALLOWED")


def test_field_path_renders_client_paths() -> None:
    assert field_path(("body", "batch", "devices", 0, "code")) == "devices[0].code"
    assert field_path(("body", "single", "location", "lat")) == "location.lat"
    assert field_path(("query", "limit")) == "limit"
    assert field_path(("body",)) is None


@pytest.mark.parametrize(
    ("name", "args", "status", "code"),
    [
        ("DeviceRegistryNotOwner", {"code": "X", "callerOrg": 2, "ownerOrg": 3}, 403, "DEVICE_NOT_OWNED"),
        ("ConsortiumMissingRole", {"account": "0x" + "11" * 20, "role": "0x" + "00" * 32}, 403, "ROLE_REQUIRED"),
        ("ConsortiumUnknownAccount", {"account": "0x" + "11" * 20}, 403, "ACCOUNT_UNKNOWN"),
        ("ConsortiumOrgInactive", {"orgId": 4}, 403, "ORG_INACTIVE"),
        ("DeviceRegistryIllegalTransition", {"code": "X", "status": 5, "action": 0}, 409, "ILLEGAL_TRANSITION"),
        ("DeviceRegistryDuplicateCode", {"code": "X"}, 409, "DUPLICATE_CODE"),
        ("DeviceRegistryCodePrefix", {"code": "X", "prefix": "BJ-"}, 422, "CODE_RULE_VIOLATION"),
        ("DeviceRegistryUnknownDevice", {"code": "X"}, 404, "DEVICE_NOT_FOUND"),
        ("DeviceRegistryBadLocation", {"lat": 1, "lon": 2}, 422, "BAD_LOCATION"),
        ("SomethingNew", {"x": 1}, 422, "CONTRACT_REJECTED"),
    ],
)
def test_contract_errors_map_to_stable_codes(name: str, args: dict[str, Any], status: int, code: str) -> None:
    info = describe_revert(name, args)
    assert (info.status, info.code) == (status, code)


def test_code_rule_encoding_helpers() -> None:
    import re

    assert code_pattern("BJ-CAMR-", 20, 1) == r"^BJ\-CAMR\-[0-9]{12}$"
    example = code_example("BJ-CAMR-", 20, 1)
    assert (
        re.fullmatch(code_pattern("BJ-CAMR-", 20, 1), example)
        and code_rule_violation(example, "BJ-CAMR-", 20, 1) is None
    )
    for charset in (2, 4, 2 | 8, 1 | 2 | 4 | 8):
        example = code_example("T-", 10, charset)
        assert re.fullmatch(code_pattern("T-", 10, charset), example), charset
        assert code_rule_violation(example, "T-", 10, charset) is None
    assert "character 19" in (code_rule_violation("BJ-CAMR-11010500000a", "BJ-CAMR-", 20, 1) or "")
    assert "non-ASCII" in (code_rule_violation("BJ-CAMR-11010500000中", "BJ-CAMR-", 22, 1) or "")
    assert canonical_json({"b": [1, {"d": 1, "c": "é"}], "a": None}) == '{"a":null,"b":[1,{"c":"é","d":1}]}'
    assert to_unix(datetime(2024, 1, 1, 8, tzinfo=UTC)) == 1704096000
