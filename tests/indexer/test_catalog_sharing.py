"""The mirror follows the data catalog and sharing agreements: entries with versions and lineage, search text,
requests with their signed approvals, grants, refusals, revocations and thresholds, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import eth_abi
from eth_utils import keccak
from sqlalchemy import select
from sqlmodel import Session
from web3 import Web3

from chain_gateway.devnet import AnvilNode, SeededConsortium
from chain_gateway.eip712 import Decision
from chain_gateway.governance import contract, govern
from indexer.models import (
    ApprovalThreshold,
    CatalogEntry,
    CatalogEntryVersion,
    CatalogLineage,
    CatalogSearch,
    SharingApproval,
    SharingRequest,
)
from tests.indexer.support import (
    DAY,
    NOT_SHAREABLE,
    RAW,
    REGISTRAR_ORG,
    REQUESTER_ORG,
    RESULT_ONLY,
    UNCONDITIONAL,
    assert_equals_fresh_replay,
    catalog_call,
    device_input,
    entry_input,
    open_indexer,
    registry_call,
    relay_approval,
    relay_refusal,
    relay_revocation,
    request_sharing,
    sign_decision,
)

ENTRY_INPUT_TYPE = "(string,string,uint8,uint8,uint8,string,string[],uint64[])"
DEPRECATED = 3  # IDataCatalog.EntryStatus
PUBLISHED = 2


def version_hash(entry: tuple[Any, ...]) -> str:
    """keccak256(abi.encode(EntryInput)), as the contract computes it."""
    return "0x" + keccak(eth_abi.encode([ENTRY_INPUT_TYPE], [entry])).hex()


def mined(receipt: dict[str, Any]) -> tuple[int, str]:
    """(block number, 0x tx hash) of a receipt, as the mirror stores them."""
    return receipt["blockNumber"], "0x" + receipt["transactionHash"].hex()


def org_id(w3: Web3, chain: SeededConsortium, code: str) -> int:
    return int(contract(w3, chain.deployment, "Consortium").functions.orgOf(chain.orgs[code].account).call())


def rows(session: Session, model: Any, *order: Any) -> list[Any]:
    return list(session.exec(select(model).order_by(*order)).scalars().all())  # type: ignore[call-overload]


def test_created_revised_and_published_entry_is_mirrored_with_versions_and_lineage(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str, replay_url: str
) -> None:
    devices = [device_input(700 + i) for i in range(3)]
    codes = [d[0] for d in devices]
    registry_call(w3, chain, "registerDevices", devices)
    first = entry_input("卡口过车流量（小时统计）", devices=codes[:2], grade=1)
    created = catalog_call(w3, chain, "createEntry", first, False)
    derived = entry_input("区域流量模型结果", devices=[codes[2]], upstream=[1], condition=UNCONDITIONAL, forms=RAW)
    catalog_call(w3, chain, "createEntry", derived, True)
    with open_indexer(database_url, anvil.url, chain.deployment) as indexer:
        indexer.sync_once()  # the mirror is built in two syncs: the second one revises indexed rows
        minor = entry_input("卡口过车流量（小时统计，含方向）", devices=[codes[1], codes[2], codes[1]], grade=2)
        catalog_call(w3, chain, "reviseEntry", 1, minor, False)
        major = entry_input(
            "卡口过车流量", devices=[codes[2]], upstream=[], grade=3, fields=("hour", "direction", "plate_number")
        )
        revised = catalog_call(w3, chain, "reviseEntry", 1, major, True)
        published = catalog_call(w3, chain, "setStatus", 1, PUBLISHED)
        catalog_call(w3, chain, "setStatus", 2, DEPRECATED)
        indexer.sync_once()
        with Session(indexer.engine) as session:
            entries = {e.entry_id: e for e in rows(session, CatalogEntry, CatalogEntry.entry_id)}
            order = (CatalogEntryVersion.block_number, CatalogEntryVersion.log_index)
            versions = rows(session, CatalogEntryVersion, *order)
            lineage = {
                (r.entry_id, r.kind, r.ref): r.position
                for r in rows(session, CatalogLineage, CatalogLineage.entry_id, CatalogLineage.position)
            }
            search = {s.entry_id: s.text for s in rows(session, CatalogSearch, CatalogSearch.entry_id)}

    owner = org_id(w3, chain, REGISTRAR_ORG)
    entry = entries[1]
    assert (entry.owner_org_id, entry.title, entry.classification, entry.grade) == (owner, "卡口过车流量", major[1], 3)
    assert (entry.share_condition, json.loads(entry.forms), entry.forms_mask) == (
        "conditional",
        ["desensitized", "result_only"],
        6,
    )
    assert entry.schema_ == major[5]
    assert entry.schema_hash == "0x" + keccak(text=major[5]).hex()
    assert (entry.status, entry.major, entry.minor, entry.version_hash) == ("published", 2, 0, version_hash(major))
    assert (entry.created_block, entry.created_tx_hash) == mined(created)
    assert (entry.updated_block, entry.updated_tx_hash) == mined(published)
    on_chain = contract(w3, chain.deployment, "DataCatalog").functions.getEntry(1).call()
    assert tuple(on_chain[5:7]) == (entry.major, entry.minor)
    assert "0x" + on_chain[7].hex() == entry.version_hash

    other = entries[2]
    assert (other.status, other.share_condition, json.loads(other.forms), other.forms_mask) == (
        "deprecated",
        "unconditional",
        ["raw"],
        RAW,
    )
    assert (json.loads(other.device_codes), json.loads(other.upstream)) == ([codes[2]], [1])

    assert [(v.entry_id, v.major, v.minor) for v in versions] == [(1, 1, 0), (2, 1, 0), (1, 1, 1), (1, 2, 0)]
    by_version = {(v.entry_id, v.major, v.minor): v for v in versions}
    for (entry_id, major_no, minor_no), record in ((1, 1, 0), first), ((1, 1, 1), minor), ((1, 2, 0), major):
        v = by_version[(entry_id, major_no, minor_no)]
        assert (v.title, v.classification, v.grade, v.schema_) == (record[0], record[1], record[2], record[5])
        assert (json.loads(v.device_codes), json.loads(v.upstream)) == (record[6], record[7])
        assert v.version_hash == version_hash(record)
        assert v.sender == chain.orgs[REGISTRAR_ORG].account
        assert v.block_time == w3.eth.get_block(v.block_number)["timestamp"]
    assert by_version[(1, 2, 0)].tx_hash == "0x" + revised["transactionHash"].hex()

    # Lineage is the current version's only: entry 1 now derives from device 3 alone.
    assert lineage == {(1, "device", codes[2]): 0, (2, "device", codes[2]): 0, (2, "entry", "1"): 0}
    assert search == {
        1: "卡口过车流量\n城市影像/交通卡口\nhour direction plate_number",
        2: "区域流量模型结果\n城市影像/交通卡口\nhour checkpoint_code vehicle_count",
    }
    assert_equals_fresh_replay(database_url, replay_url, anvil.url, chain.deployment)


def publish_conditional_entry(w3: Web3, chain: SeededConsortium, grade: int = 3) -> int:
    """A published conditional entry of BJ-PSB of `grade` (desensitized and result-only forms); returns its id."""
    catalog = contract(w3, chain.deployment, "DataCatalog")
    entry_id = int(catalog.functions.entryCount().call()) + 1
    catalog_call(w3, chain, "createEntry", entry_input(f"卡口过车流量 {entry_id}", grade=grade), True)
    return entry_id


def test_request_is_granted_after_two_signed_approvals(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str, replay_url: str
) -> None:
    entry_id = publish_conditional_entry(w3, chain, grade=3)
    request_id = request_sharing(w3, chain, entry_id, duration=90 * DAY)
    with open_indexer(database_url, anvil.url, chain.deployment) as indexer:
        indexer.sync_once()
        first = relay_approval(w3, chain, request_id, sign_decision(w3, chain, request_id, 0))
        indexer.sync_once()
        with Session(indexer.engine) as session:
            pending = session.get(SharingRequest, request_id)
            assert pending is not None
            assert (pending.status, pending.approvals, pending.approvals_needed) == ("pending", 1, 2)
            assert pending.granted_at is None and pending.expires_at is None

        second = relay_approval(w3, chain, request_id, sign_decision(w3, chain, request_id, 1))
        indexer.sync_once()
        with Session(indexer.engine) as session:
            granted = session.get(SharingRequest, request_id)
            approvals = rows(session, SharingApproval, SharingApproval.block_number, SharingApproval.log_index)

    assert granted is not None
    requested_block = w3.eth.get_block(granted.request_block)
    assert (granted.entry_id, granted.requester_org_id, granted.owner_org_id) == (
        entry_id,
        org_id(w3, chain, REQUESTER_ORG),
        org_id(w3, chain, REGISTRAR_ORG),
    )
    assert (granted.requester, granted.form, granted.purpose, granted.duration) == (
        chain.orgs[REQUESTER_ORG].account,
        "desensitized",
        "交通拥堵治理研判",
        90 * DAY,
    )
    assert granted.requested_at == requested_block["timestamp"]
    assert (granted.status, granted.approvals, granted.approvals_needed) == ("granted", 2, 2)
    grant_time = w3.eth.get_block(second["blockNumber"])["timestamp"]
    assert (granted.granted_at, granted.expires_at) == (grant_time, grant_time + 90 * DAY)
    assert (granted.grant_block, granted.grant_tx_hash) == mined(second)
    assert granted.refusal_reason is None and granted.revocation_reason is None

    approvers = [a for a, _ in chain.orgs[REGISTRAR_ORG].approvers]
    assert [(a.request_id, a.approver, a.decision, a.approvals_after, a.nonce) for a in approvals] == [
        (request_id, approvers[0], "approve", 1, "0"),
        (request_id, approvers[1], "approve", 2, "0"),
    ]
    assert [a.tx_hash for a in approvals] == ["0x" + r["transactionHash"].hex() for r in (first, second)]
    assert all(a.sender == w3.eth.account.from_key(chain.deployer_key).address for a in approvals)
    sharing = contract(w3, chain.deployment, "SharingAgreements")
    on_chain = sharing.functions.getRequest(request_id).call()
    assert (on_chain[8], on_chain[9], on_chain[10]) == (granted.requested_at, granted.granted_at, granted.expires_at)
    assert sharing.functions.isActive(request_id).call()
    assert_equals_fresh_replay(database_url, replay_url, anvil.url, chain.deployment)


def test_refused_and_revoked_requests_keep_their_reasons(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str, replay_url: str
) -> None:
    conditional = publish_conditional_entry(w3, chain, grade=4)
    open_entry = 1 + conditional
    air = entry_input("空气质量", condition=UNCONDITIONAL, forms=RAW | RESULT_ONLY)
    catalog_call(w3, chain, "createEntry", air, True)
    closed = entry_input("人脸抓拍原始图像", condition=NOT_SHAREABLE, grade=4)
    catalog_call(w3, chain, "createEntry", closed, True)

    refused = request_sharing(w3, chain, conditional)
    relay_approval(w3, chain, refused, sign_decision(w3, chain, refused, 0))
    refusal = relay_refusal(
        w3, chain, refused, sign_decision(w3, chain, refused, 1, Decision.REFUSE, "用途不明确"), "用途不明确"
    )
    granted = request_sharing(w3, chain, open_entry, form=RESULT_ONLY)  # unconditional: granted at request
    revocation = relay_revocation(
        w3, chain, granted, sign_decision(w3, chain, granted, 0, Decision.REVOKE, "合同到期"), "合同到期"
    )
    with open_indexer(database_url, anvil.url, chain.deployment) as indexer:
        indexer.sync_once()
        with Session(indexer.engine) as session:
            requests = {r.request_id: r for r in rows(session, SharingRequest, SharingRequest.request_id)}
            decisions = rows(session, SharingApproval, SharingApproval.block_number, SharingApproval.log_index)

    approvers = [a for a, _ in chain.orgs[REGISTRAR_ORG].approvers]
    r = requests[refused]
    assert (r.status, r.approvals, r.approvals_needed, r.refusal_reason, r.revocation_reason) == (
        "refused",
        1,
        2,
        "用途不明确",
        None,
    )
    assert (r.closed_tx_hash, r.closed_at) == (
        "0x" + refusal["transactionHash"].hex(),
        w3.eth.get_block(refusal["blockNumber"])["timestamp"],
    )
    assert r.granted_at is None and r.grant_tx_hash is None

    g = requests[granted]
    assert (g.status, g.form, g.approvals, g.approvals_needed, g.revocation_reason) == (
        "revoked",
        "result_only",
        0,
        0,
        "合同到期",
    )
    assert g.grant_tx_hash == g.request_tx_hash and g.granted_at == g.requested_at
    assert g.expires_at == g.granted_at + 30 * DAY
    assert g.closed_tx_hash == "0x" + revocation["transactionHash"].hex()
    assert not contract(w3, chain.deployment, "SharingAgreements").functions.isActive(granted).call()

    assert [(d.request_id, d.approver, d.decision, d.approvals_after, d.nonce, d.reason) for d in decisions] == [
        (refused, approvers[0], "approve", 1, "0", ""),
        (refused, approvers[1], "refuse", 1, "0", "用途不明确"),
        (granted, approvers[0], "revoke", 0, "1", "合同到期"),
    ]
    assert_equals_fresh_replay(database_url, replay_url, anvil.url, chain.deployment)


def test_approval_thresholds_follow_consortium_votes(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str
) -> None:
    with open_indexer(database_url, anvil.url, chain.deployment) as indexer:
        indexer.sync_once()
        with Session(indexer.engine) as session:
            initial = {t.grade: t.approvals for t in rows(session, ApprovalThreshold, ApprovalThreshold.grade)}
        assert initial == {1: 1, 2: 1, 3: 2, 4: 2}  # the contract's defaults, set at deployment

        govern(w3, chain.deployment, chain.admin_keys(), [("SharingAgreements", "setApprovalThreshold", [3, 3])], "3")
        entry_id = publish_conditional_entry(w3, chain, grade=3)
        request_id = request_sharing(w3, chain, entry_id)
        indexer.sync_once()
        with Session(indexer.engine) as session:
            changed = session.get(ApprovalThreshold, 3)
            request = session.get(SharingRequest, request_id)
    assert changed is not None and changed.approvals == 3
    assert changed.block_number > chain.deployment["deploy_block"]
    assert request is not None and request.approvals_needed == 3
