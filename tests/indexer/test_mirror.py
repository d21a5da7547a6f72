"""The mirror follows the chain: consortium, code rules, devices with their full history, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from eth_utils import keccak
from sqlalchemy import select
from sqlmodel import Session
from web3 import Web3

from chain_gateway.deployments import write_deployment
from chain_gateway.devnet import DEMO_CODE_RULES, AnvilNode, SeededConsortium
from chain_gateway.governance import contract, role_id
from chain_gateway.settings import Settings
from indexer.models import Account, AccountRole, CodeRule, Device, DeviceEvent, Inspection, Member, Proposal
from indexer.service import Indexer
from tests.indexer.support import (
    ACTIVE,
    REGISTRAR_ORG,
    assert_equals_fresh_replay,
    device_input,
    open_indexer,
    registry_call,
)

ISSUES = 1  # IDeviceRegistry.InspectionResult
ACTIVATE, SUSPEND, REPLACE = 0, 1, 4  # IDeviceRegistry.Action


def test_seeded_consortium_is_mirrored(chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str) -> None:
    with open_indexer(database_url, anvil.url, chain.deployment) as indexer:
        result = indexer.sync_once()
        assert result.from_block == chain.deployment["deploy_block"]
        assert result.to_block == result.chain_head == w3.eth.block_number
        with Session(indexer.engine) as session:
            members = {m.code: m for m in session.exec(select(Member)).scalars()}
            accounts = {a.address: a.org_id for a in session.exec(select(Account)).scalars()}
            roles = {(r.address, r.role) for r in session.exec(select(AccountRole)).scalars()}
            rules = session.exec(select(CodeRule).order_by(CodeRule.type_id)).scalars().all()
            proposals = session.exec(select(Proposal)).scalars().all()

    assert len(members) == 7
    assert {code: (m.kind, m.active) for code, m in members.items()} == {
        code: (org.kind, True) for code, org in chain.orgs.items()
    }
    expected_roles: set[tuple[str, str]] = set()
    for code, org in chain.orgs.items():
        assert accounts[org.account] == members[code].org_id
        expected_roles |= {(org.account, role) for role in org.roles}
        for approver, _ in org.approvers:
            assert accounts[approver] == members[code].org_id
            expected_roles.add((approver, "APPROVER"))
    consortium = contract(w3, chain.deployment, "Consortium")
    default_admins = {address for address, role in roles if role == "DEFAULT_ADMIN"}
    assert roles - {(a, "DEFAULT_ADMIN") for a in default_admins} == expected_roles
    for address, role in roles:
        role_hash = b"\x00" * 32 if role == "DEFAULT_ADMIN" else role_id(role)
        assert consortium.functions.hasRole(role_hash, address).call()
    assert [(r.type_id, r.type_name, r.prefix, r.length, r.charset) for r in rules] == list(DEMO_CODE_RULES)
    assert proposals and all(p.executed for p in proposals)


def test_registered_devices_are_mirrored_with_history(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str
) -> None:
    inputs = [device_input(i, status=ACTIVE if i % 2 else 1) for i in range(1, 6)]
    batch_receipt = registry_call(w3, chain, "registerDevices", inputs[:4])
    single_receipt = registry_call(w3, chain, "registerDevice", inputs[4])
    registrar = chain.orgs[REGISTRAR_ORG].account
    with open_indexer(database_url, anvil.url, chain.deployment) as indexer:
        indexer.sync_once()
        with Session(indexer.engine) as session:
            devices = {d.code: d for d in session.exec(select(Device)).scalars()}
            events = session.exec(select(DeviceEvent).order_by(DeviceEvent.block_number, DeviceEvent.log_index))
            history = events.scalars().all()
            psb_id = session.exec(select(Member.org_id).where(Member.code == REGISTRAR_ORG)).scalar_one()

    assert sorted(devices) == sorted(i[0] for i in inputs)
    for item, receipt in zip(inputs, [batch_receipt] * 4 + [single_receipt], strict=True):
        code, type_id, status, district, lat, lon, built_at, attributes = item
        device = devices[code]
        assert (device.type_id, device.owner_org_id, device.status) == (
            type_id,
            psb_id,
            ["", "planned", "active"][status],
        )
        assert (device.district, device.lat_e6, device.lon_e6, device.built_at) == (district, lat, lon, built_at)
        assert device.attributes == attributes
        assert device.attributes_hash == "0x" + keccak(text=attributes).hex()
        assert device.tx_hash == "0x" + bytes(receipt["transactionHash"]).hex().removeprefix("0x")
        assert device.block_number == device.updated_block == receipt["blockNumber"]
        assert device.replaced_by is None and device.last_inspected_at is None

    assert [e.code for e in history] == [i[0] for i in inputs]
    for event in history:
        block = w3.eth.get_block(event.block_number)
        assert event.event == "DeviceRegistered"
        assert event.sender == registrar
        assert event.block_hash == "0x" + bytes(block["hash"]).hex().removeprefix("0x")
        assert event.block_time == block["timestamp"]
        data = json.loads(event.data)
        assert data["code"] == event.code and data["ownerOrg"] == psb_id
        assert data["status"] in ("planned", "active")
    assert [e.log_index for e in history[:4]] == [0, 1, 2, 3]


def test_lifecycle_update_and_inspection_are_mirrored(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str, replay_url: str
) -> None:
    a, b, c = (device_input(i, status=ACTIVE) for i in (11, 12, 13))
    with open_indexer(database_url, anvil.url, chain.deployment) as indexer:
        registry_call(w3, chain, "registerDevices", [a, b, c])
        indexer.sync_once()  # the later changes are applied to rows from an earlier sync
        update = registry_call(w3, chain, "updateDevice", a[0], 110108, 39_990_000, 116_300_000, '{"brand":"dahua"}')
        inspected_at = w3.eth.get_block("latest")["timestamp"] - 60
        report = keccak(text="report")
        registry_call(w3, chain, "recordInspection", a[0], ISSUES, inspected_at, report, "lens dirty")
        registry_call(w3, chain, "changeLifecycle", a[0], SUSPEND, "", "repair")
        replace = registry_call(w3, chain, "changeLifecycle", b[0], REPLACE, c[0], "new pole")
        result = indexer.sync_once()
        assert result.events == 4
        with Session(indexer.engine) as session:
            devices = {d.code: d for d in session.exec(select(Device)).scalars()}
            inspections = session.exec(select(Inspection)).scalars().all()
            history_a = session.exec(
                select(DeviceEvent).where(DeviceEvent.code == a[0]).order_by(DeviceEvent.block_number)
            ).scalars()
            kinds_a = [e.event for e in history_a]

    device_a, device_b = devices[a[0]], devices[b[0]]
    assert (device_a.district, device_a.lat_e6, device_a.lon_e6) == (110108, 39_990_000, 116_300_000)
    assert device_a.attributes == '{"brand":"dahua"}'
    assert device_a.attributes_hash == "0x" + keccak(text='{"brand":"dahua"}').hex()
    assert device_a.status == "suspended" and device_a.last_inspected_at == inspected_at
    assert device_a.updated_block == update["blockNumber"] + 2
    assert (device_b.status, device_b.replaced_by) == ("replaced", c[0])
    assert device_b.updated_block == replace["blockNumber"]
    assert devices[c[0]].status == "active" and devices[c[0]].updated_block == devices[c[0]].block_number
    assert kinds_a == ["DeviceRegistered", "DeviceUpdated", "DeviceInspected", "DeviceLifecycleChanged"]
    assert [(i.code, i.result, i.inspected_at, i.report_hash, i.note) for i in inspections] == [
        (a[0], "issues", inspected_at, "0x" + report.hex(), "lens dirty")
    ]
    assert_equals_fresh_replay(database_url, replay_url, anvil.url, chain.deployment)


def test_small_ranges_give_the_same_mirror(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str, replay_url: str
) -> None:
    registry_call(w3, chain, "registerDevices", [device_input(i) for i in range(20, 30)])
    registry_call(w3, chain, "changeLifecycle", device_input(20)[0], ACTIVATE, "", "")
    with open_indexer(database_url, anvil.url, chain.deployment, max_block_range=1) as indexer:
        result = indexer.sync_once()
        assert result.ranges == result.blocks == w3.eth.block_number - chain.deployment["deploy_block"] + 1
    assert_equals_fresh_replay(database_url, replay_url, anvil.url, chain.deployment)


def test_sync_without_new_blocks_is_a_no_op_and_status_reports_lag(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str
) -> None:
    with open_indexer(database_url, anvil.url, chain.deployment, finality_depth=4) as indexer:
        assert indexer.status.checkpoint is None
        first = indexer.sync_once()
        again = indexer.sync_once()
        assert (again.blocks, again.events, again.from_block) == (0, 0, first.to_block + 1)
        status = indexer.status
        assert (status.checkpoint, status.chain_head, status.lag) == (first.to_block, w3.eth.block_number, 0)
        assert status.last_error is None and not status.fatal
        assert indexer.head == status.chain_head and indexer.checkpoint == status.checkpoint
        stored = [b.number for b in indexer.store.recent_blocks()]
        assert stored == list(range(first.to_block, first.to_block - 5, -1))  # only the finality window


def test_scheduled_job_follows_the_chain(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str
) -> None:
    scheduler = BackgroundScheduler()
    with open_indexer(database_url, anvil.url, chain.deployment, poll_seconds=0.1) as indexer:
        indexer.schedule(scheduler)
        scheduler.start()
        try:
            registry_call(w3, chain, "registerDevice", device_input(40))
            head = w3.eth.block_number
            deadline = time.monotonic() + 20
            while indexer.checkpoint != head and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            scheduler.shutdown(wait=True)
        assert indexer.checkpoint == head
        assert indexer.status.last_error is None


def test_run_loop_stops_when_asked(chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str) -> None:
    stop = threading.Event()
    with open_indexer(database_url, anvil.url, chain.deployment, poll_seconds=0.05) as indexer:
        worker = threading.Thread(target=indexer.run, args=(stop,))
        worker.start()
        try:
            registry_call(w3, chain, "registerDevice", device_input(41))
            head = w3.eth.block_number
            deadline = time.monotonic() + 20
            while indexer.checkpoint != head and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            worker.join(10)
        assert not worker.is_alive()
        assert indexer.checkpoint == head


def test_from_settings_builds_and_closes_its_own_resources(
    chain: SeededConsortium, anvil: AnvilNode, tmp_path: Path, database_url: str
) -> None:
    path = tmp_path / "deployment.json"
    write_deployment(chain.deployment, path)
    settings = Settings(rpc_urls=[anvil.url], database_url=database_url, deployments_path=path, _env_file=None)
    with Indexer.from_settings(settings) as indexer:
        indexer.create_tables()
        assert indexer.sync_once().events > 0
        assert indexer.finality_depth == settings.indexer_finality_depth
