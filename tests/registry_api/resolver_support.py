"""Helpers of the resolver, zone and receipt tests: the app with its own keys, grants made with real EIP-712
approvals, built-in algorithms listed and admitted, chain time moved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chain_gateway.settings import Settings
from registry_api.zone.algorithms import BUILTIN_ALGORITHMS
from tests.registry_api.catalog_support import approver, entry, request_grant, signed
from tests.registry_api.support import Api
from tests.registry_api.test_algorithms import REVIEWER, algorithm, confirmed, evaluated, submit
from tests.registry_api.test_sharing import _advance as advance  # move the chain's clock, mine, index

__all__ = [
    "OWNER",
    "advance",
    "builtin",
    "grant",
    "hotline_entry",
    "listed_builtin",
    "resolve",
    "zone_settings",
]

OWNER = "BJ-PSB"


def zone_settings(service_settings: Settings, tmp_path: Path) -> Settings:
    """The API settings of these tests: gateway and indexer driven by hand, keys under tmp_path, no anchoring job."""
    return service_settings.model_copy(
        update={
            "confirmations": 1,
            "run_gateway_in_api": False,
            "run_indexer_in_api": False,
            "capability_key_path": tmp_path / "keys" / "capability.pem",
            "zone_masking_key_path": tmp_path / "keys" / "masking.key",
            "receipt_anchor_interval_seconds": 0,
        }
    )


@pytest.fixture
def api_settings(service_settings: Settings, tmp_path: Path) -> Settings:
    return zone_settings(service_settings, tmp_path)


def hotline_entry(**changes: Any) -> dict[str, Any]:
    """A 12345 hotline entry with personal fields and masking rules, every form allowed, grade 2 (one approval)."""
    body = entry(
        "朝阳区12345热线诉求工单",
        classification="城市体征/热线诉求",
        grade=2,
        forms=["raw", "desensitized", "result_only"],
        schema={
            "fields": [
                {"name": "received_at", "type": "datetime", "mask": {"rule": "generalize", "to": "day"}},
                {"name": "category", "type": "string"},
                {"name": "street", "type": "string"},
                {"name": "caller_name", "type": "string", "personal": True, "mask": "mask_middle"},
                {"name": "caller_phone", "type": "string", "personal": True, "mask": "keep_last_4"},
                {"name": "content", "type": "text", "personal": True},
            ]
        },
    )
    body.update(changes)
    return body


def grant(api: Api, entry_id: int, requester: str = "BJ-CMC", form: str = "desensitized", days: int = 30) -> int:
    """A grant of `form` to `requester`: the request, then the owner's approvers' own EIP-712 signatures relayed
    until the threshold is met. Returns the grant (request) id."""
    request_id = request_grant(api, entry_id, requester=requester, form=form, days=days)
    for index in range(2):
        if api.get(f"/v1/sharing-requests/{request_id}", requester).json()["status"] == "granted":
            break
        body = signed(api, request_id, approver(api, OWNER, index))
        confirmed(api, f"/v1/sharing-requests/{request_id}/approvals", body, OWNER)
    assert api.get(f"/v1/grants/{request_id}", requester).json()["active"]
    return request_id


def builtin(name: str) -> dict[str, Any]:
    """The submission of a built-in algorithm: its pinned code hash and declared outputs."""
    impl = next(i for i in BUILTIN_ALGORITHMS.values() if i.name == name)
    return algorithm(impl.name, impl.version, code_hash=impl.code_hash, outputs=dict(impl.outputs))


def listed_builtin(api: Api, name: str, entry_id: int | None = None, body: dict[str, Any] | None = None) -> int:
    """Submit, evaluate and list a built-in algorithm (or `body`); admit it for `entry_id` if given."""
    algorithm_id = submit(api, body or builtin(name))
    evaluated(api, algorithm_id, 90)
    confirmed(api, f"/v1/algorithms/{algorithm_id}/listing", {}, REVIEWER)
    if entry_id is not None:
        confirmed(api, f"/v1/catalog/{entry_id}/algorithms", {"algorithm_id": algorithm_id}, OWNER)
    return algorithm_id


def resolve(api: Api, org: str, entry_id: int, action: str, **extra: Any) -> dict[str, Any]:
    """POST /v1/resolve as `org`; asserts 200 and returns the answer."""
    answer = api.post("/v1/resolve", {"entry_id": entry_id, "action": action, **extra}, org)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result
