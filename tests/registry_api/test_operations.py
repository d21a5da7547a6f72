"""Operations: idempotency, visibility to the org that made them, and the decoded reason of a failure."""

from __future__ import annotations

from tests.registry_api.support import Api, device


def test_same_idempotency_key_and_body_answer_the_same_operation(api: Api) -> None:
    key = {"Idempotency-Key": "batch-2024-06-01"}
    first = api.post("/v1/devices", {"devices": [device(1), device(2)]}, headers=key)
    assert first.status_code == 202, first.text
    again = api.post("/v1/devices", {"devices": [device(1), device(2)]}, headers=key)
    assert again.status_code == 202
    assert again.json()["operation_id"] == first.json()["operation_id"]
    assert again.headers.get("Idempotent-Replayed") == "true" and "Idempotent-Replayed" not in first.headers
    op = api.settle(first.json()["operation_id"])
    assert op["status"] == "confirmed" and op["idempotency_key"] == "batch-2024-06-01"
    # a replay after confirmation still answers the first operation (not a duplicate-code refusal)
    late = api.post("/v1/devices", {"devices": [device(1), device(2)]}, headers=key)
    assert late.status_code == 202 and late.json()["operation_id"] == op["id"]
    assert api.get("/v1/devices").json()["count"] == 2


def test_same_idempotency_key_with_another_body_is_409(api: Api) -> None:
    key = {"Idempotency-Key": "k-1"}
    assert api.post("/v1/devices", device(1), headers=key).status_code == 202
    conflict = api.post("/v1/devices", device(2), headers=key)
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "IDEMPOTENCY_CONFLICT" and conflict.json()["field"] == "Idempotency-Key"
    # keys are per org: another org may use the same key for its own request
    assert api.post("/v1/devices", device(3), org="BJ-CY", headers=key).status_code == 202


def test_operation_is_visible_only_to_its_org(api: Api) -> None:
    accepted = api.post("/v1/devices", device(1)).json()
    path = f"/v1/operations/{accepted['operation_id']}"
    mine = api.get(path)
    assert mine.status_code == 200 and mine.json()["status"] == "queued" and mine.json()["tx_hash"] is None
    other = api.get(path, org="BJ-CMC")
    assert other.status_code == 404 and other.json()["code"] == "OPERATION_NOT_FOUND"
    assert api.get("/v1/operations/does-not-exist").status_code == 404
    assert api.client.get(path).status_code == 401


def test_write_that_fails_on_chain_reports_the_decoded_error(api: Api) -> None:
    """Two registrations of one code both pass simulation; the second one fails when mined."""
    first = api.post("/v1/devices", device(1)).json()
    second = api.post("/v1/devices", device(1, attributes={"v": 2})).json()
    assert api.settle(first["operation_id"])["status"] == "confirmed"
    failed = api.settle(second["operation_id"])
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "DUPLICATE_CODE"
    assert failed["error"]["name"] == "DeviceRegistryDuplicateCode"
    assert failed["error"]["args"] == {"code": "BJ-CAMR-110105000001"}
    assert "already registered" in failed["error"]["message"]
    assert api.get("/v1/devices/BJ-CAMR-110105000001").json()["attributes"]["vendor"] == "海康威视"
