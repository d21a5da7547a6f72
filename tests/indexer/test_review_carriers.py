"""The mirror follows joint review (projects, their planned devices, lead orgs, the ledger rows an approval adds) and
carriers (capacity, usage, reuse requests), on SQLite and PostgreSQL; a reorg that replaces decisions rewinds them
exactly: the mirror equals a fresh replay of the chain."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from sqlalchemy import select
from sqlmodel import Session
from web3 import Web3

from chain_gateway.devnet import DEMO_REVIEW_LEADS, AnvilNode, SeededConsortium
from chain_gateway.governance import contract
from indexer.models import Carrier, CarrierReuseRequest, Device, Project, ProjectDevice, ReviewLead
from tests.indexer.support import assert_equals_fresh_replay, call, open_indexer
from tests.indexer.test_algorithms import (  # noqa: F401  (fixtures: a fresh node per reorg test, see there)
    fresh_anvil,
    fresh_chain,
    fresh_w3,
)
from tests.indexer.test_reorg import anvil_reorg, signed_tx

APPLICANT, LEAD, OWNER, REQUESTER, OTHER = "BJ-CY", "BJ-PSB", "BJ-PSB", "BJ-CMC", "BJ-EMB"
IMAGERY, CITY_MANAGEMENT = 0, 1  # IReviewBoard.Domain
DOMAIN_NAMES = ("imagery", "city_management", "emergency", "other")
DEVICES_TYPE = "(string,uint16,uint8,uint32,int32,int32,uint40,string)[]"
POLE, CABINET = "BJ-POLE-110105-0001", "BJ-CAB-110105-0002"


def planned(serial: int, carrier: str | None = None) -> tuple[Any, ...]:
    """A planned road camera DeviceInput in Chaoyang, with the carrier it will be mounted on when given."""
    attributes = {"vendor": "海康威视", **({"carrier": carrier} if carrier else {})}
    canonical = json.dumps(attributes, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (
        f"BJ-CAMR-110105{serial:06d}",
        1,
        1,
        110105,
        39_921_000 + 90 * serial,
        116_443_000,
        1_700_000_000,
        canonical,
    )


def carrier_input(code: str, kind: int = 0, slots: int = 4, ports: int = 2) -> tuple[Any, ...]:
    """A CarrierInput in Chaoyang (kind 0 pole, 2 cabinet)."""
    return (code, kind, 110105, 39_921_500, 116_443_500, slots, ports, '{"height_m":8}')


def send(w3: Web3, chain: SeededConsortium, org: str, contract_name: str, function: str, *args: Any) -> Any:
    """`contract_name`.`function`(*args) sent as demo org `org`'s main account; the receipt."""
    return call(w3, chain, chain.orgs[org].private_key, contract_name, function, *args)


def file(w3: Web3, chain: SeededConsortium, devices: list[tuple[Any, ...]], domain: int = IMAGERY) -> int:
    """File `devices` as BJ-CY; returns the project id."""
    board = contract(w3, chain.deployment, "ReviewBoard")
    project_id = int(board.functions.projectCount().call()) + 1
    send(w3, chain, APPLICANT, "ReviewBoard", "file", domain, f"新建项目 {project_id}", devices)
    return project_id


def org_id(w3: Web3, chain: SeededConsortium, code: str) -> int:
    return int(contract(w3, chain.deployment, "Consortium").functions.orgIdByCode(code).call())


def rows(engine: Any, model: Any) -> list[Any]:
    with Session(engine) as session:
        return list(session.exec(select(model)).scalars())


def test_joint_review_and_carriers_are_mirrored(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str, replay_url: str
) -> None:
    approved_devices = [planned(1, carrier=POLE), planned(2)]
    approved = file(w3, chain, approved_devices)
    refused = file(w3, chain, [planned(3)], CITY_MANAGEMENT)
    withdrawn = file(w3, chain, [planned(4)])
    send(w3, chain, OWNER, "CarrierRegistry", "register", carrier_input(POLE))
    send(w3, chain, OWNER, "CarrierRegistry", "register", carrier_input(CABINET, kind=2, slots=1, ports=8))
    send(w3, chain, REQUESTER, "CarrierRegistry", "requestReuse", POLE, 1, 1, "加装空气质量传感器")
    with open_indexer(database_url, anvil.url, chain.deployment) as indexer:
        indexer.sync_once()  # the mirror is built in two syncs: the second one changes indexed rows
        open_ = file(w3, chain, [planned(5)], CITY_MANAGEMENT)
        approval = send(w3, chain, LEAD, "ReviewBoard", "approve", approved, approved_devices)
        send(w3, chain, "BJ-CMC", "ReviewBoard", "refuse", refused, "500 米内已有同类设备")
        withdrawal = send(w3, chain, APPLICANT, "ReviewBoard", "withdraw", withdrawn)
        send(w3, chain, OWNER, "CarrierRegistry", "setUsage", POLE, 1, 0)
        grant = send(w3, chain, OWNER, "CarrierRegistry", "decideReuse", 1, True, "同意共杆")
        send(w3, chain, OTHER, "CarrierRegistry", "requestReuse", CABINET, 0, 4, "接入水位监测")
        send(w3, chain, OWNER, "CarrierRegistry", "decideReuse", 2, False, "端口已预留")
        send(w3, chain, OTHER, "CarrierRegistry", "requestReuse", POLE, 1, 0, "加装摄像机")
        send(w3, chain, OTHER, "CarrierRegistry", "withdrawReuse", 3)
        indexer.sync_once()
        engine = indexer.engine
        leads = {r.domain: r.org_id for r in rows(engine, ReviewLead)}
        projects = {p.project_id: p for p in rows(engine, Project)}
        planned_rows = sorted(rows(engine, ProjectDevice), key=lambda d: (d.project_id, d.position))
        devices = {d.code: d for d in rows(engine, Device)}
        carriers = {c.code: c for c in rows(engine, Carrier)}
        requests = {r.request_id: r for r in rows(engine, CarrierReuseRequest)}

    assert leads == {DOMAIN_NAMES[d]: org_id(w3, chain, code) for d, code in DEMO_REVIEW_LEADS}
    cy, psb, cmc = (org_id(w3, chain, c) for c in (APPLICANT, LEAD, "BJ-CMC"))
    summary = {
        p.project_id: (p.domain, p.status, p.reviewer_org_id, p.reason, p.device_count) for p in projects.values()
    }
    assert summary == {
        approved: ("imagery", "approved", psb, "", 2),
        refused: ("city_management", "refused", cmc, "500 米内已有同类设备", 1),
        withdrawn: ("imagery", "withdrawn", None, "", 1),
        open_: ("city_management", "filed", None, "", 1),
    }
    first = projects[approved]
    assert (first.applicant_org_id, first.applicant, first.title) == (cy, chain.orgs[APPLICANT].account, "新建项目 1")
    assert first.devices_hash == "0x" + keccak(abi_encode([DEVICES_TYPE], [approved_devices])).hex()
    assert first.filed_at == w3.eth.get_block(first.filed_block)["timestamp"]
    assert (first.reviewer, first.closed_block, first.closed_tx_hash) == (
        chain.orgs[LEAD].account,
        approval["blockNumber"],
        "0x" + approval["transactionHash"].hex(),
    )
    assert first.closed_at == w3.eth.get_block(approval["blockNumber"])["timestamp"]
    assert projects[withdrawn].closed_tx_hash == "0x" + withdrawal["transactionHash"].hex()

    # the planned devices exactly as filed, the ones of the approved project also on the ledger for the applicant
    assert [(d.project_id, d.position, d.code, d.carrier) for d in planned_rows] == [
        (approved, 0, approved_devices[0][0], POLE),
        (approved, 1, approved_devices[1][0], None),
        (refused, 0, planned(3)[0], None),
        (withdrawn, 0, planned(4)[0], None),
        (open_, 0, planned(5)[0], None),
    ]
    filed = planned_rows[0]
    _, type_id, _, district, lat, lon, built_at, attributes = approved_devices[0]
    assert (filed.type_id, filed.district, filed.lat_e6, filed.lon_e6, filed.built_at, filed.attributes) == (
        type_id,
        district,
        lat,
        lon,
        built_at,
        attributes,
    )
    assert filed.attributes_hash == "0x" + keccak(text=attributes).hex()
    on_ledger = {code: (d.owner_org_id, d.status) for code, d in devices.items()}
    assert on_ledger == {d[0]: (cy, "planned") for d in approved_devices}

    pole, cabinet = carriers[POLE], carriers[CABINET]
    assert (pole.kind, pole.owner_org_id, pole.slots, pole.slots_used, pole.ports, pole.ports_used) == (
        "pole",
        psb,
        4,
        2,
        2,
        1,
    )
    assert (pole.updated_block, pole.carrier_hash) == (grant["blockNumber"], "0x" + keccak(text=POLE).hex())
    assert (cabinet.kind, cabinet.slots_used, cabinet.ports_used) == ("cabinet", 0, 0)
    assert pole.attributes_hash == "0x" + keccak(text='{"height_m":8}').hex()
    assert {i: (r.carrier_code, r.status, r.reason, r.slots, r.ports) for i, r in requests.items()} == {
        1: (POLE, "granted", "同意共杆", 1, 1),
        2: (CABINET, "refused", "端口已预留", 0, 4),
        3: (POLE, "withdrawn", "", 1, 0),
    }
    assert (requests[1].requester_org_id, requests[1].owner_org_id, requests[1].decided_by) == (
        cmc,
        psb,
        chain.orgs[OWNER].account,
    )
    assert requests[3].decided_by == chain.orgs[OTHER].account
    assert requests[1].requested_at == w3.eth.get_block(requests[1].request_block)["timestamp"]
    assert_equals_fresh_replay(database_url, replay_url, anvil.url, chain.deployment)


@pytest.mark.parametrize("depth", [2, 4])
def test_reorg_replacing_decisions_equals_a_fresh_replay(
    depth: int,
    fresh_chain: SeededConsortium,  # noqa: F811  (the fixture imported above)
    fresh_w3: Web3,  # noqa: F811  (the fixture imported above)
    fresh_anvil: AnvilNode,  # noqa: F811  (the fixture imported above)
    database_url: str,
    replay_url: str,
) -> None:
    chain, w3 = fresh_chain, fresh_w3
    first_devices = [planned(11, carrier=POLE), planned(12)]
    first, second = file(w3, chain, first_devices), file(w3, chain, [planned(13)])
    send(w3, chain, OWNER, "CarrierRegistry", "register", carrier_input(POLE))
    send(w3, chain, REQUESTER, "CarrierRegistry", "requestReuse", POLE, 2, 1, "加装摄像机")
    with open_indexer(database_url, fresh_anvil.url, chain.deployment) as indexer:
        indexer.sync_once()
        start = w3.eth.block_number
        # Four blocks, one transaction each, that the reorg will (partly) replace.
        send(w3, chain, LEAD, "ReviewBoard", "approve", first, first_devices)
        send(w3, chain, OWNER, "CarrierRegistry", "decideReuse", 1, True, "同意")
        send(w3, chain, OTHER, "CarrierRegistry", "requestReuse", POLE, 1, 0, "加装传感器")
        send(w3, chain, APPLICANT, "ReviewBoard", "withdraw", second)
        indexed = indexer.sync_once()
        head = w3.eth.block_number
        assert indexed.to_block == head == start + 4

        fork = head - depth
        lead = chain.orgs[LEAD]
        nonce = w3.eth.get_transaction_count(lead.account, fork)
        if depth == 4:  # the lead refuses both instead of approving and granting
            calls = [
                ("ReviewBoard", "refuse", [first, "重组分支：重复建设"]),
                ("CarrierRegistry", "decideReuse", [1, False, "不同意"]),
            ]
        else:  # approval and grant stay; the lead refuses the project its applicant withdrew on the replaced branch
            calls = [("ReviewBoard", "refuse", [second, "重组分支：不予建设"])]
        raw = [
            signed_tx(w3, chain, lead.private_key, nonce + i, name, fn, *args)
            for i, (name, fn, args) in enumerate(calls)
        ]
        anvil_reorg(w3, depth, [(tx, 0) for tx in raw])
        status = contract(w3, chain.deployment, "ReviewBoard").functions.getProject(first if depth == 4 else second)
        assert status.call()[2] == 3, "the replacement refusal is not on the chain"
        result = indexer.sync_once()
        assert result.reorg is not None and result.reorg.ancestor == fork
        projects = {p.project_id: (p.status, p.reason) for p in rows(indexer.engine, Project)}
        devices = {d.code for d in rows(indexer.engine, Device)}
        pole = next(c for c in rows(indexer.engine, Carrier) if c.code == POLE)
        requests = {r.request_id: r.status for r in rows(indexer.engine, CarrierReuseRequest)}
    if depth == 4:
        assert projects == {first: ("refused", "重组分支：重复建设"), second: ("filed", "")}
        assert devices == set()
        assert (pole.slots_used, pole.ports_used, requests) == (0, 0, {1: "refused"})
    else:
        assert projects == {first: ("approved", ""), second: ("refused", "重组分支：不予建设")}
        assert devices == {d[0] for d in first_devices}
        assert (pole.slots_used, pole.ports_used, requests) == (2, 1, {1: "granted"})
    assert_equals_fresh_replay(database_url, replay_url, fresh_anvil.url, chain.deployment)
