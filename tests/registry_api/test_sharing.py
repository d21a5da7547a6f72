"""Sharing through the API against anvil and each database: approvals signed by the approvers themselves."""

from __future__ import annotations

from typing import Any

from chain_gateway.eip712 import Decision, decision_typed_data, sign_typed_data
from tests.registry_api.catalog_support import approver, create_entry, entry, request_grant, signed
from tests.registry_api.support import Api


def _relay(api: Api, path: str, body: dict[str, Any], org: str = "BJ-PSB") -> dict[str, Any]:
    answer = api.post(path, body, org)
    assert answer.status_code == 202, answer.text
    op = api.settle(answer.json()["operation_id"], org)
    assert op["status"] == "confirmed", op
    return op


def _advance(api: Api, seconds: int) -> None:
    api.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    api.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    api.sync()


def test_grade_3_request_is_granted_after_the_second_approval(api: Api) -> None:
    entry_id = create_entry(api, entry())
    request_id = request_grant(api, entry_id)
    queue = api.get("/v1/sharing-requests", params={"pending_for_me": True}).json()
    assert [r["id"] for r in queue["data"]] == [request_id]
    assert queue["data"][0]["approvals_needed"] == 2 and queue["data"][0]["requester_org"] == "BJ-CMC"

    first, second = approver(api, index=0), approver(api, index=1)
    op1 = _relay(api, f"/v1/sharing-requests/{request_id}/approvals", signed(api, request_id, first))
    pending = api.get(f"/v1/sharing-requests/{request_id}").json()
    assert pending["status"] == "pending" and pending["approvals"] == 1 and not pending["active"]
    assert [(d["approver"], d["tx_hash"]) for d in pending["decisions"]] == [(first[0], op1["tx_hash"])]
    assert api.get("/v1/grants", "BJ-CMC").json()["count"] == 0

    op2 = _relay(api, f"/v1/sharing-requests/{request_id}/approvals", signed(api, request_id, second))
    granted = api.get(f"/v1/sharing-requests/{request_id}", "BJ-CMC").json()
    assert granted["status"] == "granted" and granted["active"] and granted["approvals"] == 2
    grants = api.get("/v1/grants", "BJ-CMC").json()
    assert grants["count"] == 1
    grant = grants["data"][0]
    assert grant["id"] == request_id and grant["form"] == "desensitized" and grant["active"]
    assert grant["approvers"] == [first[0], second[0]]
    assert grant["approval_tx_hashes"] == [op1["tx_hash"], op2["tx_hash"]]
    assert grant["grant_tx_hash"] == op2["tx_hash"] and grant["expires_at"]
    # the relaying account is the owner org's, never the approver's: the gateway only relays
    assert {d["relayed_by"] for d in grant["decisions"]} <= {api.chain.orgs["BJ-PSB"].account, None}

    # visible to requester, owner and auditors only
    assert api.get(f"/v1/sharing-requests/{request_id}", "BJ-EMB").json()["code"] == "REQUEST_NOT_FOUND"
    assert api.get(f"/v1/sharing-requests/{request_id}", "AU-BJ").status_code == 200
    assert api.get("/v1/grants", "BJ-EMB").json()["count"] == 0


def test_bad_approvals_are_refused_with_clear_codes(api: Api) -> None:
    entry_id = create_entry(api, entry())
    request_id = request_grant(api, entry_id)
    path = f"/v1/sharing-requests/{request_id}/approvals"
    first, second = approver(api, index=0), approver(api, index=1)

    # signed by an approver of another org (and by the owner's own non-approver account)
    outsider = approver(api, "BJ-CMC")
    typed_for_outsider = api.get(
        f"/v1/sharing-requests/{request_id}/approval-typed-data", params={"approver": outsider[0]}
    )
    assert typed_for_outsider.status_code == 403 and typed_for_outsider.json()["code"] == "NOT_AN_APPROVER"
    typed = api.get(f"/v1/sharing-requests/{request_id}/approval-typed-data", params={"approver": first[0]}).json()
    message = typed["message"]
    for account, key in (outsider, (api.chain.orgs["BJ-PSB"].account, api.chain.orgs["BJ-PSB"].private_key)):
        body = {"approver": account, "signature": sign_typed_data(key, typed), **_nd(message)}
        refused = api.post(path, body)
        assert refused.status_code == 403 and refused.json()["code"] == "NOT_AN_APPROVER", refused.text

    # one approver's signature claimed for another
    forged = {"approver": first[0], "signature": sign_typed_data(second[1], typed), **_nd(message)}
    answer = api.post(path, forged)
    assert answer.status_code == 403 and answer.json()["code"] == "BAD_SIGNATURE"
    assert answer.json()["field"] == "signature"
    tampered = {**signed(api, request_id, first), "deadline": message["deadline"] + 1}
    assert api.post(path, tampered).json()["code"] == "BAD_SIGNATURE"

    # a signature whose deadline the chain has passed
    late = api.get(
        f"/v1/sharing-requests/{request_id}/approval-typed-data",
        params={"approver": first[0], "deadline_seconds": 30},
    ).json()
    late_body = {"approver": first[0], "signature": sign_typed_data(first[1], late), **_nd(late["message"])}
    _advance(api, 120)
    expired = api.post(path, late_body)
    assert expired.status_code == 403 and expired.json()["code"] == "SIGNATURE_EXPIRED"

    # replay: the same signature again, after it was used
    good = signed(api, request_id, first)
    _relay(api, path, good)
    replayed = api.post(path, good)
    assert replayed.status_code == 409 and replayed.json()["code"] == "SIGNATURE_REPLAYED", replayed.text
    # a fresh signature of an approver who already approved
    assert api.post(path, _sign(api, request_id, first)).json()["code"] == "ALREADY_APPROVED"
    # the contract refuses the same on its own (the gateway's simulation), e.g. a replay sent straight to it
    gateway = api.app.state.gateway
    op = gateway.enqueue(
        org_code="BJ-PSB",
        account=api.chain.orgs["BJ-PSB"].account,
        contract="SharingAgreements",
        function="approve",
        args=[request_id, good["approver"], good["nonce"], good["deadline"], good["signature"]],
        simulate=False,
    )
    settled = api.settle(op.id)
    assert settled["status"] == "failed" and settled["error"]["code"] == "SIGNATURE_REPLAYED"


def _nd(message: dict[str, Any]) -> dict[str, Any]:
    return {"nonce": message["nonce"], "deadline": message["deadline"]}


def _sign(api: Api, request_id: int, who: tuple[str, str]) -> dict[str, Any]:
    """An approval signed with the approver's current nonce, built without the typed-data route."""
    nonce = api.app.state.gateway.rpc.call(
        "eth_call",
        [
            {
                "to": api.chain.deployment["contracts"]["SharingAgreements"]["address"],
                "data": "0x7ecebe00" + who[0][2:].lower().rjust(64, "0"),
            },
            "latest",
        ],
    )
    deadline = int(api.w3.eth.get_block("latest")["timestamp"]) + 600
    typed = decision_typed_data(
        chain_id=api.chain.deployment["chain_id"],
        contract=api.chain.deployment["contracts"]["SharingAgreements"]["address"],
        request_id=request_id,
        decision=Decision.APPROVE,
        reason="",
        nonce=int(nonce, 16),
        deadline=deadline,
    )
    return {
        "approver": who[0],
        "signature": sign_typed_data(who[1], typed),
        "nonce": int(nonce, 16),
        "deadline": deadline,
    }


def test_request_for_a_not_shareable_entry_is_refused(api: Api) -> None:
    entry_id = create_entry(api, entry("人脸抓拍点位分布", grade=4, share_condition="not_shareable"))
    body = {"entry_id": entry_id, "form": "result_only", "purpose": "研究", "duration_days": 30}
    answer = api.post("/v1/sharing-requests", body, "BJ-CMC")
    assert answer.status_code == 409 and answer.json()["code"] == "NOT_SHAREABLE"
    assert answer.json()["field"] == "entry_id"
    shareable = create_entry(api, entry())
    wrong_form = api.post("/v1/sharing-requests", {**body, "entry_id": shareable, "form": "raw"}, "BJ-CMC")
    assert wrong_form.status_code == 422 and wrong_form.json()["code"] == "FORM_NOT_ALLOWED"
    assert wrong_form.json()["contract_error"]["name"] == "SharingFormNotAllowed"
    own = api.post("/v1/sharing-requests", {**body, "entry_id": shareable, "form": "desensitized"})
    assert own.status_code == 422 and own.json()["code"] == "OWN_ENTRY"


def test_revoked_and_expired_grants_are_no_longer_active(api: Api) -> None:
    entry_id = create_entry(api, entry(grade=1))  # one approval
    revoked_id = request_grant(api, entry_id, days=30)
    expiring_id = request_grant(api, entry_id, requester="BJ-EMB", days=1)
    first = approver(api)
    for request_id in (revoked_id, expiring_id):
        requester = "BJ-CMC" if request_id == revoked_id else "BJ-EMB"
        _relay(api, f"/v1/sharing-requests/{request_id}/approvals", signed(api, request_id, first))
        assert api.get(f"/v1/grants/{request_id}", requester).json()["active"]
    assert api.get("/v1/grants").json()["count"] == 2

    revocation = signed(api, revoked_id, first, decision="revoke", reason="用途变更，停止共享")
    _relay(api, f"/v1/grants/{revoked_id}/revoke", revocation)
    revoked = api.get(f"/v1/grants/{revoked_id}", "BJ-CMC").json()
    assert revoked["status"] == "revoked" and not revoked["active"]
    assert revoked["revocation_reason"] == "用途变更，停止共享"
    assert [g["id"] for g in api.get("/v1/grants").json()["data"]] == [expiring_id]
    again = api.post(f"/v1/grants/{revoked_id}/revoke", revocation)
    assert again.status_code == 409 and again.json()["code"] == "NOT_GRANTED"

    _advance(api, 2 * 86_400)  # the chain's clock, not the wall clock
    assert api.get("/v1/grants").json()["count"] == 0
    expired = api.get("/v1/grants", params={"status": "expired"}).json()
    assert [g["id"] for g in expired["data"]] == [expiring_id] and expired["data"][0]["expired"]
    assert api.get("/v1/sharing-requests", "BJ-EMB", params={"status": "active"}).json()["count"] == 0
    assert api.get("/v1/grants", params={"status": "revoked"}).json()["data"][0]["id"] == revoked_id


def test_refusal_with_a_reason_closes_the_request(api: Api) -> None:
    entry_id = create_entry(api, entry())
    request_id = request_grant(api, entry_id)
    body = signed(api, request_id, approver(api), decision="refuse", reason="用途不明确")
    not_owner = api.post(f"/v1/sharing-requests/{request_id}/refusals", body, "BJ-CMC")
    assert not_owner.status_code == 403 and not_owner.json()["code"] == "NOT_OWNER_ORG"
    _relay(api, f"/v1/sharing-requests/{request_id}/refusals", body)
    refused = api.get(f"/v1/sharing-requests/{request_id}", "BJ-CMC").json()
    assert refused["status"] == "refused" and refused["refusal_reason"] == "用途不明确"
    late = api.get(f"/v1/sharing-requests/{request_id}/approval-typed-data", params={"approver": approver(api)[0]})
    assert late.status_code == 409 and late.json()["code"] == "REQUEST_NOT_PENDING"
