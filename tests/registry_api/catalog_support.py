"""Helpers of the catalog and sharing tests: entries filed through the API, approvers signing typed data."""

from __future__ import annotations

from typing import Any

from chain_gateway.eip712 import sign_typed_data
from tests.registry_api.support import Api, device

__all__ = ["approver", "create_entry", "entry", "request_grant", "signed"]


def entry(title: str = "卡口过车流量（小时统计）", **changes: Any) -> dict[str, Any]:
    """A grade-3 conditional entry as a client files it; `changes` override members."""
    body: dict[str, Any] = {
        "title": title,
        "classification": "城市影像/交通卡口",
        "grade": 3,
        "share_condition": "conditional",
        "forms": ["desensitized", "result_only"],
        "schema": {"fields": [{"name": "hour", "type": "datetime"}, {"name": "vehicle_count", "type": "integer"}]},
        "device_codes": [],
        "upstream": [],
        "publish": True,
    }
    body.update(changes)
    return body


def create_entry(api: Api, body: dict[str, Any], org: str = "BJ-PSB") -> int:
    """File an entry, settle it and return its id (the newest entry of the org)."""
    answer = api.post("/v1/catalog", body, org)
    assert answer.status_code == 202, answer.text
    op = api.settle(answer.json()["operation_id"], org)
    assert op["status"] == "confirmed", op
    listed = api.get("/v1/catalog", org, params={"owner": org, "limit": 1000}).json()
    return max(e["id"] for e in listed["data"])


def approver(api: Api, org: str = "BJ-PSB", index: int = 0) -> tuple[str, str]:
    """(account, private key) of one of an org's approvers."""
    return api.chain.orgs[org].approvers[index]


def signed(
    api: Api, request_id: int, who: tuple[str, str], decision: str = "approve", reason: str = "", org: str = "BJ-PSB"
) -> dict[str, Any]:
    """The decision body an approver posts: typed data fetched from the API and signed with the approver's key."""
    params: dict[str, Any] = {"approver": who[0], "decision": decision}
    if reason:
        params["reason"] = reason
    answer = api.get(f"/v1/sharing-requests/{request_id}/approval-typed-data", org, params=params)
    assert answer.status_code == 200, answer.text
    typed = answer.json()
    body: dict[str, Any] = {
        "approver": who[0],
        "signature": sign_typed_data(who[1], typed),
        "nonce": typed["message"]["nonce"],
        "deadline": typed["message"]["deadline"],
    }
    if reason:
        body["reason"] = reason
    return body


def request_grant(
    api: Api, entry_id: int, requester: str = "BJ-CMC", form: str = "desensitized", days: int = 30
) -> int:
    """File a sharing request, settle it and return its id."""
    body = {"entry_id": entry_id, "form": form, "purpose": "交通拥堵治理：早晚高峰流量分析", "duration_days": days}
    answer = api.post("/v1/sharing-requests", body, requester)
    assert answer.status_code == 202, answer.text
    op = api.settle(answer.json()["operation_id"], requester)
    assert op["status"] == "confirmed", op
    listed = api.get("/v1/sharing-requests", requester, params={"entry": entry_id}).json()
    return int(listed["data"][0]["id"])


def register_camera(api: Api, serial: int = 1) -> str:
    """Register one road camera of BJ-PSB and return its code."""
    body = device(serial)
    api.register([body])
    return str(body["code"])
