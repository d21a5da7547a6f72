"""The algorithm center through the API against anvil and each database: submit, evaluate, list, admit, delist,
withdraw; every refusal with its stable code; role checks; pagination; idempotency."""

from __future__ import annotations

from typing import Any

from eth_utils import keccak

from registry_api.encoding import canonical_json
from tests.registry_api.catalog_support import create_entry, entry
from tests.registry_api.support import Api

SUBMITTER, REVIEWER, OTHER_REVIEWER, OWNER = "CO-ZHCS", "BJ-EIB", "BJ-CMC", "BJ-PSB"
OUTPUTS = {"type": "table", "columns": ["group", "count"], "min_group_size": 10, "说明": "分组计数"}


def algorithm(name: str, version: str = "1.0.0", **changes: Any) -> dict[str, Any]:
    """An algorithm as a client submits it; the code hash is derived from name and version."""
    body: dict[str, Any] = {
        "name": name,
        "version": version,
        "code_hash": "0x" + keccak(text=f"{name}@{version}").hex(),
        "outputs": OUTPUTS,
    }
    body.update(changes)
    return body


def accept(api: Api, path: str, body: Any, org: str, headers: dict[str, str] | None = None) -> str:
    """POST a write, assert 202 with an operation, return its id."""
    answer = api.post(path, body, org, headers)
    assert answer.status_code == 202, answer.text
    assert answer.headers["Location"] == answer.json()["links"]["operation"]
    operation_id: str = answer.json()["operation_id"]
    return operation_id


def confirmed(api: Api, path: str, body: Any, org: str) -> dict[str, Any]:
    """POST a write and settle it; asserts it is confirmed and returns the operation."""
    op = api.settle(accept(api, path, body, org), org)
    assert op["status"] == "confirmed", op
    return op


def submit(api: Api, body: dict[str, Any], org: str = SUBMITTER) -> int:
    """Submit, settle and return the new algorithm's id (found by name and version)."""
    confirmed(api, "/v1/algorithms", body, org)
    found = api.get("/v1/algorithms", org, params={"name": body["name"], "limit": 1000}).json()
    return next(int(a["id"]) for a in found["data"] if a["version"] == body["version"])


def evaluated(api: Api, algorithm_id: int, score: int, org: str = REVIEWER) -> None:
    body = {"report": f"测评报告 {algorithm_id}: 得分 {score}", "score": score}
    confirmed(api, f"/v1/algorithms/{algorithm_id}/evaluations", body, org)


def listed(api: Api, name: str) -> int:
    """A submitted, evaluated (80) and listed algorithm's id."""
    algorithm_id = submit(api, algorithm(name))
    evaluated(api, algorithm_id, 80)
    confirmed(api, f"/v1/algorithms/{algorithm_id}/listing", {}, REVIEWER)
    return algorithm_id


def refused(answer: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    """Assert an error answer's status, stable code and field; returns the body."""
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert body["code"] == code, body
    if field is not None:
        assert body["field"] == field, body
    return body


def test_life_cycle_submit_evaluate_list_admit_delist_withdraw(api: Api) -> None:
    entry_id = create_entry(api, entry())
    body = algorithm("grouped_count")
    algorithm_id = submit(api, body)
    submitted = api.get(f"/v1/algorithms/{algorithm_id}").json()
    assert (submitted["name"], submitted["version"], submitted["code_hash"]) == (
        "grouped_count",
        "1.0.0",
        body["code_hash"],
    )
    assert submitted["outputs"] == OUTPUTS and submitted["submitter_org"] == SUBMITTER
    assert (submitted["status"], submitted["score"], submitted["passed"]) == ("submitted", None, None)
    assert submitted["submitter"] == api.chain.orgs[SUBMITTER].account
    assert submitted["evaluations"] == [] and submitted["admissions"] == []

    # the report's keccak256 is what the chain keeps; a JSON report is hashed as canonical JSON
    report = {"k_anonymity": 10, "结论": "通过", "cases": 42}
    op = confirmed(api, f"/v1/algorithms/{algorithm_id}/evaluations", {"report": report, "score": 85}, REVIEWER)
    evaluation = api.get(f"/v1/algorithms/{algorithm_id}").json()
    assert (evaluation["status"], evaluation["score"], evaluation["passed"]) == ("evaluated", 85, True)
    expected_hash = "0x" + keccak(text=canonical_json(report)).hex()
    assert evaluation["report_hash"] == expected_hash
    assert [
        (e["reviewer_org"], e["score"], e["passed"], e["report_hash"], e["tx_hash"]) for e in evaluation["evaluations"]
    ] == [(REVIEWER, 85, True, expected_hash, op["tx_hash"])]

    confirmed(api, f"/v1/algorithms/{algorithm_id}/listing", {}, REVIEWER)
    assert api.get(f"/v1/algorithms/{algorithm_id}").json()["status"] == "listed"
    assert [a["id"] for a in api.get("/v1/algorithms", params={"status": "listed"}).json()["data"]] == [algorithm_id]

    path = f"/v1/catalog/{entry_id}/algorithms"
    admission = confirmed(api, path, {"algorithm_id": algorithm_id}, OWNER)
    admitted = api.get(path, "BJ-CMC").json()  # any member sees what an entry admits
    assert (admitted["entry_id"], admitted["count"], admitted["usable"]) == (entry_id, 1, 1)
    item = admitted["data"][0]
    assert item["algorithm"]["id"] == algorithm_id and item["usable"] and item["algorithm"]["status"] == "listed"
    assert (item["admitted_by"], item["tx_hash"]) == (api.chain.orgs[OWNER].account, admission["tx_hash"])
    shown = api.get(f"/v1/algorithms/{algorithm_id}").json()["admissions"]
    assert [(a["entry_id"], a["entry_title"], a["owner_org"]) for a in shown] == [(entry_id, entry()["title"], OWNER)]

    # delisting takes effect at once: the admission stays until withdrawn, but is no longer usable
    confirmed(api, f"/v1/algorithms/{algorithm_id}/delisting", {"reason": "输出可识别个人信息"}, OTHER_REVIEWER)
    delisted = api.get(f"/v1/algorithms/{algorithm_id}").json()
    assert (delisted["status"], delisted["status_reason"]) == ("delisted", "输出可识别个人信息")
    after = api.get(path).json()
    assert (after["count"], after["usable"]) == (1, 0)
    assert not after["data"][0]["usable"] and after["data"][0]["algorithm"]["status"] == "delisted"

    api.settle(accept_delete(api, f"{path}/{algorithm_id}", OWNER), OWNER)
    assert api.get(path).json() == {"entry_id": entry_id, "data": [], "count": 0, "usable": 0}
    assert api.get(f"/v1/algorithms/{algorithm_id}").json()["admissions"] == []


def accept_delete(api: Api, path: str, org: str, headers: dict[str, str] | None = None) -> str:
    """DELETE (a withdrawal), assert 202, return the operation id."""
    answer = api.client.delete(path, headers={**api.auth(org), **(headers or {})})
    assert answer.status_code == 202, answer.text
    operation_id: str = answer.json()["operation_id"]
    return operation_id


def test_contract_refusals_answer_stable_codes_with_the_field_at_fault(api: Api) -> None:
    entry_id = create_entry(api, entry())
    own = submit(api, algorithm("mean"), org="BJ-EMB")  # BJ-EMB is a REVIEWER too
    refused(
        api.post(f"/v1/algorithms/{own}/evaluations", {"report_hash": "0x" + "11" * 32, "score": 90}, "BJ-EMB"),
        403,
        "SELF_EVALUATION",
        "algorithm_id",
    )
    duplicate = refused(api.post("/v1/algorithms", algorithm("mean"), SUBMITTER), 409, "ALGORITHM_DUPLICATE", "version")
    assert duplicate["contract_error"]["name"] == "AlgorithmDuplicate"

    missing = 10_000
    refused(api.get(f"/v1/algorithms/{missing}"), 404, "ALGORITHM_NOT_FOUND", "algorithm_id")
    refused(
        api.post(f"/v1/algorithms/{missing}/evaluations", {"report": "r", "score": 70}, REVIEWER),
        404,
        "ALGORITHM_NOT_FOUND",
        "algorithm_id",
    )
    illegal = refused(api.post(f"/v1/algorithms/{own}/listing", {}, REVIEWER), 409, "ILLEGAL_STATUS", "algorithm_id")
    assert illegal["status"] == "submitted"
    path = f"/v1/catalog/{entry_id}/algorithms"
    not_listed = refused(api.post(path, {"algorithm_id": own}, OWNER), 409, "ALGORITHM_NOT_LISTED", "algorithm_id")
    assert not_listed["status"] == "submitted"

    evaluated(api, own, 40)
    not_passed = refused(api.post(f"/v1/algorithms/{own}/listing", {}, REVIEWER), 409, "NOT_PASSED", "algorithm_id")
    assert (not_passed["score"], not_passed["pass_mark"]) == (40, 60)

    usable = listed(api, "histogram")
    refused(api.post(path, {"algorithm_id": usable}, "BJ-CMC"), 403, "NOT_ENTRY_OWNER", "entry_id")
    refused(
        api.post("/v1/catalog/9999/algorithms", {"algorithm_id": usable}, OWNER), 404, "ENTRY_NOT_FOUND", "entry_id"
    )
    refused(api.client.delete(f"{path}/{usable}", headers=api.auth(OWNER)), 404, "NOT_ADMITTED", "algorithm_id")
    confirmed(api, path, {"algorithm_id": usable}, OWNER)
    refused(api.post(path, {"algorithm_id": usable}, OWNER), 409, "ALREADY_ADMITTED", "algorithm_id")

    confirmed(api, f"/v1/algorithms/{usable}/delisting", {"reason": "停用"}, REVIEWER)
    refused(api.post(f"/v1/algorithms/{usable}/delisting", {"reason": "again"}, REVIEWER), 409, "ALGORITHM_DELISTED")
    refused(
        api.post(f"/v1/algorithms/{usable}/evaluations", {"report": "复测", "score": 95}, OTHER_REVIEWER),
        409,
        "ALGORITHM_DELISTED",
        "algorithm_id",
    )
    refused(api.post(path, {"algorithm_id": usable}, OWNER), 409, "ALGORITHM_NOT_LISTED", "algorithm_id")


def test_bad_bodies_are_refused_before_the_chain(api: Api) -> None:
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/v1/algorithms", algorithm("a", code_hash="0x1234"), "code_hash"),
        ("/v1/algorithms", algorithm("a", code_hash="0x" + "00" * 32), "code_hash"),
        ("/v1/algorithms", algorithm("", version="1"), "name"),
        ("/v1/algorithms", {**algorithm("a"), "outputs": ["not", "an", "object"]}, "outputs"),
        ("/v1/algorithms/1/evaluations", {"report": "r", "score": 101}, "score"),
        ("/v1/algorithms/1/evaluations", {"score": 70}, None),
        ("/v1/algorithms/1/evaluations", {"report": "r", "report_hash": "0x" + "22" * 32, "score": 70}, None),
        ("/v1/algorithms/1/delisting", {"reason": ""}, "reason"),
    ]
    for path, body, field in cases:
        answer = api.post(path, body, REVIEWER)
        error = refused(answer, 422, "VALIDATION_ERROR")
        if field is not None:
            assert error["field"] == field, (body, error)


def test_role_checks_come_before_the_chain_and_name_the_missing_role(api: Api) -> None:
    entry_id = create_entry(api, entry())
    algorithm_id = submit(api, algorithm("top_k"))  # a company without roles may submit: it is a member
    for path, body in (
        (f"/v1/algorithms/{algorithm_id}/evaluations", {"report": "r", "score": 90}),
        (f"/v1/algorithms/{algorithm_id}/listing", {}),
        (f"/v1/algorithms/{algorithm_id}/delisting", {"reason": "r"}),
    ):
        error = refused(api.post(path, body, SUBMITTER), 403, "ROLE_REQUIRED")
        assert error["role"] == "REVIEWER" and "contract_error" not in error
    admission = refused(
        api.post(f"/v1/catalog/{entry_id}/algorithms", {"algorithm_id": algorithm_id}, "AU-BJ"), 403, "ROLE_REQUIRED"
    )
    assert admission["role"] == "REGISTRAR"
    withdrawal = api.client.delete(f"/v1/catalog/{entry_id}/algorithms/{algorithm_id}", headers=api.auth(SUBMITTER))
    assert refused(withdrawal, 403, "ROLE_REQUIRED")["role"] == "REGISTRAR"
    refused(api.client.post("/v1/algorithms", json=algorithm("x")), 401, "UNAUTHENTICATED")
    refused(api.client.get("/v1/algorithms"), 401, "UNAUTHENTICATED")
    assert api.get(f"/v1/algorithms/{algorithm_id}").json()["status"] == "submitted"  # nothing was queued


def test_lists_page_and_filter(api: Api) -> None:
    names = ["count", "mean", "histogram"]
    operations = [(accept(api, "/v1/algorithms", algorithm(n), SUBMITTER), SUBMITTER) for n in names]
    operations.append((accept(api, "/v1/algorithms", algorithm("mean", version="2.0.0"), "BJ-EMB"), "BJ-EMB"))
    for operation_id, org in operations:
        assert api.settle(operation_id, org)["status"] == "confirmed"
    everything = api.get("/v1/algorithms").json()
    assert everything["count"] == 4
    ids = [a["id"] for a in everything["data"]]
    assert ids == sorted(ids)
    first = api.get("/v1/algorithms", params={"limit": 3}).json()
    rest = api.get("/v1/algorithms", params={"limit": 3, "offset": 3}).json()
    assert (first["count"], rest["count"]) == (4, 4)
    assert [a["id"] for a in first["data"]] + [a["id"] for a in rest["data"]] == ids
    by_name = api.get("/v1/algorithms", params={"name": "mean"}).json()
    assert sorted(a["version"] for a in by_name["data"]) == ["1.0.0", "2.0.0"] and by_name["count"] == 2
    by_org = api.get("/v1/algorithms", params={"submitter": "BJ-EMB"}).json()
    assert [(a["name"], a["version"]) for a in by_org["data"]] == [("mean", "2.0.0")]
    evaluated(api, ids[0], 70)
    assert [a["id"] for a in api.get("/v1/algorithms", params={"status": "evaluated"}).json()["data"]] == [ids[0]]
    assert api.get("/v1/algorithms", params={"status": "listed"}).json() == {"data": [], "count": 0}
    refused(api.get("/v1/algorithms", params={"status": "gone"}), 422, "VALIDATION_ERROR", "status")
    refused(api.get("/v1/algorithms", params={"limit": 0}), 422, "VALIDATION_ERROR", "limit")

    entry_id = create_entry(api, entry())
    admitted = [listed(api, f"k_{i}") for i in range(3)]
    path = f"/v1/catalog/{entry_id}/algorithms"
    for algorithm_id in admitted:
        confirmed(api, path, {"algorithm_id": algorithm_id}, OWNER)
    page = api.get(path, params={"limit": 2, "offset": 1}).json()
    assert (page["count"], page["usable"]) == (3, 3)
    assert [a["algorithm"]["id"] for a in page["data"]] == admitted[1:]


def test_idempotency_key_replays_the_same_operation_and_refuses_another_body(api: Api) -> None:
    key = {"Idempotency-Key": "submit-grouped-count-1"}
    body = algorithm("grouped_count")
    first = api.post("/v1/algorithms", body, SUBMITTER, key)
    assert first.status_code == 202 and "Idempotent-Replayed" not in first.headers
    operation_id = first.json()["operation_id"]
    assert api.settle(operation_id, SUBMITTER)["status"] == "confirmed"
    # a replay after the write is on-chain answers the same operation (not ALGORITHM_DUPLICATE)
    again = api.post("/v1/algorithms", body, SUBMITTER, key)
    assert again.status_code == 202 and again.json()["operation_id"] == operation_id
    assert again.headers["Idempotent-Replayed"] == "true"
    conflict = api.post("/v1/algorithms", algorithm("grouped_count", version="1.0.1"), SUBMITTER, key)
    refused(conflict, 409, "IDEMPOTENCY_CONFLICT", "Idempotency-Key")
    assert api.get("/v1/algorithms", params={"name": "grouped_count"}).json()["count"] == 1

    entry_id = create_entry(api, entry())
    algorithm_id = listed(api, "mean")
    path = f"/v1/catalog/{entry_id}/algorithms"
    admit_key = {"Idempotency-Key": "admit-mean"}
    admitted = accept(api, path, {"algorithm_id": algorithm_id}, OWNER, admit_key)
    api.settle(admitted, OWNER)
    assert accept(api, path, {"algorithm_id": algorithm_id}, OWNER, admit_key) == admitted
    withdraw_key = {"Idempotency-Key": "withdraw-mean"}
    withdrawn = accept_delete(api, f"{path}/{algorithm_id}", OWNER, withdraw_key)
    api.settle(withdrawn, OWNER)
    assert accept_delete(api, f"{path}/{algorithm_id}", OWNER, withdraw_key) == withdrawn
    assert api.get(path).json()["count"] == 0
