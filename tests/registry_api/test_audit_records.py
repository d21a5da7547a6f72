"""Record audits (GET /v1/audit/records/{kind}/{id}, `dirchain audit record`) on the real anvil with SQLite and
PostgreSQL: untampered records verify with their whole trail from the chain, a mirror edited in SQL fails exactly
the checks it should, a proof with a flipped byte does not verify, and bad requests answer stable 4xx codes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_account import Account
from eth_utils import keccak
from sqlalchemy import text
from typer.testing import CliRunner
from web3 import Web3

from chain_gateway.devnet import AnvilNode, SeededConsortium
from chain_gateway.governance import contract
from chain_gateway.rpc import JsonRpcClient
from chain_gateway.settings import Settings, get_settings
from registry_api.audit.proof_layout import storage_layouts
from registry_api.audit.proofs import ProofError, prove_storage, verify_account_proof, verify_storage_proof
from registry_api.audit.trail import audit_record
from registry_api.cli import app as cli
from tests.indexer.support import (
    catalog_call,
    device_input,
    entry_input,
    open_indexer,
    registry_call,
    relay_approval,
    request_sharing,
    sign_decision,
)
from tests.indexer.test_algorithms import listed
from tests.indexer.test_review_carriers import LEAD, OWNER, carrier_input, file, planned, send
from tests.registry_api.audit_support import cli_env
from tests.registry_api.support import Api

ACTIVE = 2  # IDeviceRegistry.Status.Active
SUSPEND, RESUME = 1, 2  # IDeviceRegistry.Action
PASSED = 0  # IDeviceRegistry.InspectionResult
NEW_ATTRIBUTES = '{"brand":"dahua","pole":"P-7"}'
DEVICE_CHECKS = {
    "checkpoint", "mirror_record", "mirror_history", "attributes_hash", "account_proof", "storage_proof", "proven_state"
}  # fmt: skip
LONG_CARRIER_CODE = "BJ-POLE-110105-CHAOYANG-JIANGUOLU-000001"  # > 31 bytes: stored as a long string on-chain


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex().removeprefix("0x")


def _device_history(w3: Web3, chain: SeededConsortium) -> tuple[str, list[dict[str, Any]]]:
    """A device registered active, updated, suspended, resumed and inspected; its code and the receipts."""
    code = device_input(7, status=ACTIVE)[0]
    receipts = [
        registry_call(w3, chain, "registerDevice", device_input(7, status=ACTIVE)),
        registry_call(w3, chain, "updateDevice", code, 110105, 39_910_000, 116_410_000, NEW_ATTRIBUTES),
        registry_call(w3, chain, "changeLifecycle", code, SUSPEND, "", "镜头维修"),
        registry_call(w3, chain, "changeLifecycle", code, RESUME, "", ""),
    ]
    inspected_at = int(w3.eth.get_block("latest")["timestamp"])
    receipts.append(registry_call(w3, chain, "recordInspection", code, PASSED, inspected_at, b"\x11" * 32, "巡检正常"))
    return code, receipts


def _audit(api: Api, kind: str, record_id: str, **params: Any) -> dict[str, Any]:
    answer = api.get(f"/v1/audit/records/{kind}/{record_id}", "AU-BJ", params=params)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _check(audit: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in audit["checks"] if c["name"] == name)


def test_untampered_device_verifies_with_its_full_trail_from_the_chain(api: Api) -> None:
    code, receipts = _device_history(api.w3, api.chain)
    api.sync()

    audit = _audit(api, "device", code)

    assert audit["verified"] and audit["failed"] == [], audit["checks"]
    assert {c["name"] for c in audit["checks"]} == DEVICE_CHECKS
    trail = audit["trail"]["data"]
    assert [e["event"] for e in trail] == [
        "DeviceRegistered", "DeviceUpdated", "DeviceLifecycleChanged", "DeviceLifecycleChanged", "DeviceInspected"
    ]  # fmt: skip
    assert [e["tx_hash"] for e in trail] == [_hex(r["transactionHash"]) for r in receipts]
    assert [(e["block_number"], e["log_index"]) for e in trail] == [
        (r["blockNumber"], r["logs"][0]["logIndex"]) for r in receipts
    ]
    registrar = api.chain.orgs["BJ-PSB"].account
    for event, receipt in zip(trail, receipts, strict=True):
        block = api.w3.eth.get_block(receipt["blockNumber"])
        assert (event["signer"], event["block_hash"], event["block_time"]) == (
            registrar, _hex(block["hash"]), block["timestamp"]
        )  # fmt: skip
        assert event["args"]["code"] == code and event["approval"] is None
    assert trail[2]["args"]["note"] == "镜头维修"
    assert audit["block_number"] == api.w3.eth.block_number and audit["chain_record"] == audit["record"]
    assert audit["record"]["attributes"] == NEW_ATTRIBUTES and audit["record"]["status"] == "active"
    proven = audit["proven"]
    assert proven["attributesHash"] == "0x" + keccak(text=NEW_ATTRIBUTES).hex()
    assert (proven["status"], proven["lat"], proven["lastInspectedAt"]) == (
        ACTIVE, 39_910_000, trail[4]["args"]["inspectedAt"]
    )  # fmt: skip
    state = _check(audit, "proven_state")
    assert {f["field"] for f in state["fields"]} >= {"ownerOrg", "status", "attributesHash", "lastInspectedAt"}
    assert _check(audit, "account_proof")["expected"] == _hex(api.w3.eth.get_block(audit["block_number"])["stateRoot"])

    paged = _audit(api, "device", code, limit=2, offset=1)
    assert [e["event"] for e in paged["trail"]["data"]] == ["DeviceUpdated", "DeviceLifecycleChanged"]
    assert (paged["trail"]["count"], paged["trail"]["limit"], paged["trail"]["offset"]) == (5, 2, 1)


def test_device_attributes_edited_in_sql_fail_exactly_the_attributes_hash_and_that_field(api: Api) -> None:
    code, _ = _device_history(api.w3, api.chain)
    api.sync()
    forged = '{"brand":"hik","pole":"P-7"}'
    with api.app.state.engine.begin() as conn:
        conn.execute(text("UPDATE devices SET attributes = :a WHERE code = :c"), {"a": forged, "c": code})

    audit = _audit(api, "device", code)

    assert not audit["verified"]
    assert sorted(audit["failed"]) == ["attributes_hash", "mirror_record"]
    record = _check(audit, "mirror_record")
    assert [(f["field"], f["expected"], f["actual"]) for f in record["fields"] if not f["ok"]] == [
        ("attributes", NEW_ATTRIBUTES, forged)
    ]
    hashed = _check(audit, "attributes_hash")
    assert (hashed["expected"], hashed["actual"]) == (
        "0x" + keccak(text=NEW_ATTRIBUTES).hex(), "0x" + keccak(text=forged).hex()
    )  # fmt: skip


def test_untampered_catalog_entry_and_sharing_request_verify_with_their_approvals(api: Api) -> None:
    w3, chain = api.w3, api.chain
    entry_id = int(contract(w3, chain.deployment, "DataCatalog").functions.entryCount().call()) + 1
    catalog_call(w3, chain, "createEntry", entry_input("卡口过车流量"), True)
    catalog_call(w3, chain, "reviseEntry", entry_id, entry_input("卡口过车流量（小时）", grade=3), False)
    request_id = request_sharing(w3, chain, entry_id)
    approvals = [relay_approval(w3, chain, request_id, sign_decision(w3, chain, request_id, i)) for i in (0, 1)]
    api.sync()

    entry = _audit(api, "catalog-entry", str(entry_id))
    assert entry["verified"], entry["checks"]
    assert [e["event"] for e in entry["trail"]["data"]] == [
        "CatalogEntryVersioned", "CatalogEntryStatusChanged", "CatalogEntryStatusChanged", "CatalogEntryVersioned"
    ]  # fmt: skip
    assert {"schema_hash", "version_hash"} <= {c["name"] for c in entry["checks"]}
    assert entry["proven"]["versionHash"] == entry["record"]["version_hash"] and entry["proven"]["minor"] == 1
    with api.app.state.engine.begin() as conn:  # a retitled entry no longer hashes to the chain's version hash
        conn.execute(text("UPDATE catalog_entries SET title = 'x' WHERE entry_id = :e"), {"e": entry_id})
    retitled = _audit(api, "catalog-entry", str(entry_id))
    assert sorted(retitled["failed"]) == ["mirror_record", "version_hash"]
    assert _check(retitled, "version_hash")["expected"] == entry["proven"]["versionHash"]

    request = _audit(api, "sharing-request", str(request_id))
    assert request["verified"], request["checks"]
    trail = request["trail"]["data"]
    assert [e["event"] for e in trail] == ["SharingRequested", "SharingApproved", "SharingApproved", "SharingGranted"]
    decisions = [e for e in trail if e["event"] == "SharingApproved"]
    assert [e["tx_hash"] for e in decisions] == [_hex(r["transactionHash"]) for r in approvals]
    approvers = [chain.orgs["BJ-PSB"].approvers[i][0] for i in (0, 1)]
    assert [e["approval"]["signer"] for e in decisions] == approvers
    assert all(e["approval"]["verified"] for e in decisions)
    relayer = Account.from_key(chain.deployer_key).address  # relayed from the deployer: only the signature counts
    assert {e["signer"] for e in decisions} == {relayer}
    assert _check(request, "approval_provenance")["ok"]
    assert {f"approvedBy[{a}]" for a in approvers} <= set(request["proven"])
    assert all(request["proven"][f"approvedBy[{a}]"] is True for a in approvers)
    assert request["proven"]["status"] == 2 and request["record"]["status"] == "granted"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_unknown_kind_bad_id_and_unknown_record_answer_stable_4xx_codes(api: Api) -> None:
    cases = {
        "/v1/audit/records/lamp-post/BJ-1": (422, "UNKNOWN_KIND", "kind"),
        "/v1/audit/records/catalog-entry/abc": (422, "INVALID_ID", "id"),
        "/v1/audit/records/catalog-entry/0": (422, "INVALID_ID", "id"),
        "/v1/audit/records/device/BJ CAMR": (422, "INVALID_ID", "id"),
        "/v1/audit/records/device/BJ-CAMR-110105999999": (404, "RECORD_NOT_FOUND", "id"),
        "/v1/audit/records/sharing-request/999": (404, "RECORD_NOT_FOUND", "id"),
        "/v1/audit/records/member/NO-SUCH-ORG": (404, "RECORD_NOT_FOUND", "id"),
    }
    for path, expected in cases.items():
        answer = api.get(path)
        body = answer.json()
        assert (answer.status_code, body["code"], body["field"]) == expected, (path, body)
    assert api.client.get("/v1/audit/records/device/BJ-CAMR-110105999999").status_code == 401


def test_algorithm_project_carrier_and_member_records_verify(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str
) -> None:
    algorithm_id = listed(w3, chain, "grouped_count")
    devices = [planned(21), planned(22)]
    project_id = file(w3, chain, devices)
    send(w3, chain, LEAD, "ReviewBoard", "approve", project_id, devices)
    send(w3, chain, OWNER, "CarrierRegistry", "register", carrier_input(LONG_CARRIER_CODE))
    send(w3, chain, OWNER, "CarrierRegistry", "setUsage", LONG_CARRIER_CODE, 1, 1)
    with open_indexer(database_url, anvil.url, chain.deployment) as indexer, JsonRpcClient([anvil.url]) as rpc:
        indexer.sync_once()
        audits = {
            (kind, record_id): audit_record(rpc, indexer.engine, chain.deployment, kind, record_id)
            for kind, record_id in [
                ("algorithm", str(algorithm_id)),
                ("project", str(project_id)),
                ("carrier", LONG_CARRIER_CODE),
                ("member", "BJ-PSB"),
                ("device", devices[0][0]),  # registered by the project's approval, sent by the reviewer
            ]
        }
    for key, audit in audits.items():
        assert audit.verified, (key, [(c.name, c.message) for c in audit.checks if not c.ok])
    algorithm = audits[("algorithm", str(algorithm_id))]
    assert [e.event for e in algorithm.trail] == [
        "AlgorithmSubmitted", "AlgorithmEvaluated", "AlgorithmStatusChanged", "AlgorithmStatusChanged"
    ]  # fmt: skip
    assert "input_hash" in {c.name for c in algorithm.checks}
    project = audits[("project", str(project_id))]
    assert [e.event for e in project.trail] == ["ProjectFiled", "ProjectDecided"]
    assert project.proven["devicesHash"] == project.record["devices_hash"]  # type: ignore[index]
    carrier = audits[("carrier", LONG_CARRIER_CODE)]
    assert carrier.proven["code"] == LONG_CARRIER_CODE and carrier.proven["slotsUsed"] == 1
    assert len(next(c for c in carrier.checks if c.name == "storage_proof").fields) > 4  # the string's data slots too
    member = audits[("member", "BJ-PSB")]
    assert member.proven["name"] == member.record["name"]  # type: ignore[index]
    roles = {k for k, v in member.proven.items() if k.startswith("hasRole[") and v is True}
    assert f"hasRole[REGISTRAR][{chain.orgs['BJ-PSB'].account}]" in roles
    assert {e.event for e in member.trail} >= {"MemberAdmitted", "AccountAdded", "RoleGranted"}
    reviewed = audits[("device", devices[0][0])]
    assert reviewed.trail[0].signer == chain.orgs[LEAD].account


def _flip(node: str) -> str:
    """The 0x-hex trie node with one bit flipped in its middle byte."""
    raw = bytearray(bytes.fromhex(node[2:]))
    raw[len(raw) // 2] ^= 0x01
    return "0x" + raw.hex()


def test_a_proof_with_a_flipped_byte_does_not_verify(chain: SeededConsortium, w3: Web3, anvil: AnvilNode) -> None:
    code = device_input(9, status=ACTIVE)[0]
    registry_call(w3, chain, "registerDevice", device_input(9, status=ACTIVE))
    layout = storage_layouts(("DeviceRegistry",))["DeviceRegistry"]
    slot = layout.key(layout.variable("_devices"), "0x" + keccak(text=code).hex()).slot
    address = chain.deployment["contracts"]["DeviceRegistry"]["address"]
    with JsonRpcClient([anvil.url]) as rpc:
        block = rpc.get_block("latest")
        assert block is not None
        number = int(block["number"], 16)
        answer = rpc.call("eth_getProof", [address, [hex(slot)], hex(number)])
        account = verify_account_proof(block["stateRoot"], address, answer["accountProof"])
        storage = answer["storageProof"][0]["proof"]
        assert verify_storage_proof(account.storage_hash, slot, storage) == int(answer["storageProof"][0]["value"], 16)
        assert verify_storage_proof(account.storage_hash, slot, storage) != 0

        for i in range(len(storage)):
            tampered = [*storage[:i], _flip(storage[i]), *storage[i + 1 :]]
            with pytest.raises(ProofError):
                verify_storage_proof(account.storage_hash, slot, tampered)
        accounts = answer["accountProof"]
        with pytest.raises(ProofError):
            verify_account_proof(block["stateRoot"], address, [*accounts[:-1], _flip(accounts[-1])])
        with pytest.raises(ProofError):  # a valid proof of another slot does not prove this one
            verify_storage_proof(account.storage_hash, slot + 1, storage)

        older = rpc.get_block(number - 1)
        assert older is not None
        result = prove_storage(rpc, address, [slot], number, older["stateRoot"])  # proofs against the wrong root
        refused = prove_storage(rpc, address, [slot], number + 1_000, block["stateRoot"])  # a block it does not have
    assert not result.ok and result.account_error is not None and result.words() == {}
    assert not refused.ok and (refused.account_error or "").startswith("the node gave no proof")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cli_prints_the_audit_and_exits_1_when_a_check_fails(
    api: Api, api_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _ = _device_history(api.w3, api.chain)
    api.sync()
    for name, value in cli_env(api_settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COLUMNS", "220")
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        shown = runner.invoke(cli, ["audit", "record", "device", code])
        assert shown.exit_code == 0, shown.output
        assert "VERIFIED" in shown.output and "DeviceInspected" in shown.output and "proven_state" in shown.output
        as_json = runner.invoke(cli, ["audit", "record", "device", code, "--json", "--limit", "1"])
        assert as_json.exit_code == 0, as_json.output
        parsed = json.loads(as_json.output)
        assert parsed["verified"] and parsed["trail"]["count"] == 5 and len(parsed["trail"]["data"]) == 1

        with api.app.state.engine.begin() as conn:
            conn.execute(text("UPDATE devices SET lat_e6 = lat_e6 + 1 WHERE code = :c"), {"c": code})
        failed = runner.invoke(cli, ["audit", "record", "device", code])
        assert failed.exit_code == 1, failed.output
        assert "FAILED" in failed.output and "lat_e6" in failed.output and "proven_state" in failed.output

        unknown = runner.invoke(cli, ["audit", "record", "lamp-post", "X-1"])
        assert unknown.exit_code == 2 and "UNKNOWN_KIND" in unknown.output
        helped = runner.invoke(cli, ["audit", "record", "--help"])
        assert helped.exit_code == 0 and "eth_getProof" in helped.output and "--json" in helped.output
    finally:
        get_settings.cache_clear()
