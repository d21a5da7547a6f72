"""The dev profile's demo filing end to end: what `scripts/run` files through the API on a fresh chain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from web3 import Web3

from chain_gateway.devnet import AnvilNode
from registry_api.demo import DEMO_ADMISSIONS, DEMO_CATALOG, DEMO_REQUESTS, file_demo_data
from registry_api.devnet import prepare_devnet
from registry_api.zone.algorithms import BUILTIN_ALGORITHMS
from tests.registry_api.live import blocks, scheduled, serve


@pytest.fixture
def fresh_node() -> Iterator[AnvilNode]:
    with AnvilNode() as node:
        yield node


def test_demo_filing_lists_algorithms_grants_and_runs_a_zone_job(fresh_node: AnvilNode, tmp_path: Path) -> None:
    settings, _ = prepare_devnet(fresh_node.url, "http://127.0.0.1:0", tmp_path, tmp_path / "deployments")
    orgs = json.loads((tmp_path / "dev" / "credentials.json").read_text(encoding="utf-8"))["orgs"]
    w3 = Web3(Web3.HTTPProvider(fresh_node.url))
    with blocks(w3), serve(scheduled(settings)) as (url, _):
        summary = file_demo_data(url, {"orgs": orgs}, 10)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {orgs['CO-ZHCS']['token']}"}) as client:
            algorithms = client.get("/v1/algorithms", params={"status": "listed"}).json()
            admitted = {e: client.get(f"/v1/catalog/{e}/algorithms").json() for e in DEMO_ADMISSIONS}
            grants = client.get("/v1/grants").json()
            receipt = client.get("/v1/zone/receipts/1")
            auditor = {"Authorization": f"Bearer {orgs['AU-BJ']['token']}"}
            verdict = client.get("/v1/audit/verify", headers=auditor).json()

    assert "zone job" in summary, summary
    assert algorithms["count"] == len(BUILTIN_ALGORITHMS)
    for entry_id, names in DEMO_ADMISSIONS.items():
        usable = {item["algorithm"]["name"] for item in admitted[entry_id]["data"] if item["usable"]}
        assert usable == set(names), entry_id
    granted = {(g["entry_id"], g["form"]) for g in grants["data"]}
    assert {(2, "raw"), (1, "result_only")} <= granted  # unconditional at request; two approvers' signatures
    assert len(DEMO_REQUESTS) == 5 and len(DEMO_CATALOG) == 7
    assert receipt.status_code == 200, receipt.text
    assert receipt.json()["entry_id"] == 2
    # every mirror table of the whole demo (devices, catalog, sharing, algorithms, reviews, carriers)
    # equals the chain's logs replayed
    assert verdict["ok"] is True, [t for t in verdict["tables"] if not t["ok"]]
    assert {t["table"] for t in verdict["tables"] if t["chain_rows"] > 0} >= {
        "devices", "sharing_approvals", "algorithms", "projects", "carriers", "carrier_reuse_requests"
    }  # fmt: skip
