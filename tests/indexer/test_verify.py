"""Mirror verification: a mirror rebuilt from the chain's logs is compared with the live one, and every tampering
(a row edited, deleted or added in SQL, a forged approval) is reported exactly, with the first divergent block;
an untampered mirror verifies clean, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, text
from web3 import Web3

from chain_gateway.devnet import AnvilNode, SeededConsortium
from chain_gateway.governance import contract
from chain_gateway.rpc import JsonRpcClient
from indexer.service import Indexer
from indexer.verify import VerifyError, VerifyReport, mirror_digests, verify_mirror
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

ACTIVE = 2  # IDeviceRegistry.Status
SUSPEND = 1  # IDeviceRegistry.Action
PASSED = 0  # IDeviceRegistry.InspectionResult


@dataclass(frozen=True)
class History:
    """What the chain holds for these tests: devices with a full life, an entry, a request approved twice."""

    codes: list[str]
    request_id: int
    approval_blocks: list[int]
    first_block: int  # the first block of this history's transactions


@pytest.fixture(scope="module")
def history(w3: Web3, seeded: SeededConsortium) -> History:
    """Written once per module on the module's anvil (tests only read the chain)."""
    devices = [device_input(900 + i, status=ACTIVE) for i in range(6)]
    codes = [d[0] for d in devices]
    first = registry_call(w3, seeded, "registerDevices", devices)
    registry_call(w3, seeded, "updateDevice", codes[0], 110105, 39_920_000, 116_440_000, '{"brand":"dahua"}')
    registry_call(w3, seeded, "changeLifecycle", codes[1], SUSPEND, "", "pole repairs")
    inspected_at = w3.eth.get_block("latest")["timestamp"]
    registry_call(w3, seeded, "recordInspection", codes[2], PASSED, inspected_at, b"\xab" * 32, "monthly")
    catalog = contract(w3, seeded.deployment, "DataCatalog")
    entry_id = int(catalog.functions.entryCount().call()) + 1
    catalog_call(w3, seeded, "createEntry", entry_input("卡口过车流量 verify", devices=codes[:2], grade=3), True)
    request_id = request_sharing(w3, seeded, entry_id)
    approvals = [relay_approval(w3, seeded, request_id, sign_decision(w3, seeded, request_id, i)) for i in (0, 1)]
    return History(codes, request_id, [a["blockNumber"] for a in approvals], first["blockNumber"])


@pytest.fixture
def live(history: History, anvil: AnvilNode, seeded: SeededConsortium, database_url: str) -> Iterator[Indexer]:
    """The live mirror, indexed to the chain head."""
    with open_indexer(database_url, anvil.url, seeded.deployment) as indexer:
        indexer.sync_once()
        yield indexer


def verify(indexer: Indexer, **kwargs: Any) -> VerifyReport:
    return verify_mirror(indexer.engine, indexer.rpc, indexer.deployment, **kwargs)


def tamper(engine: Engine, sql: str, **params: Any) -> None:
    with engine.begin() as conn:
        assert conn.execute(text(sql), params).rowcount == 1


def only_difference(report: VerifyReport) -> tuple[str, Any]:
    """(table, the one difference) of a report that has exactly one differing row."""
    bad = [t for t in report.comparison.tables if not t.ok]
    assert len(bad) == 1, [(t.table, t.missing, t.extra, t.differing) for t in bad]
    table = bad[0]
    assert table.missing + table.extra + table.differing == 1
    assert len(table.samples) == 1
    return table.table, table.samples[0]


def test_an_untampered_mirror_verifies_clean(live: Indexer, history: History) -> None:
    report = verify(live)

    assert report.ok
    assert report.block == live.checkpoint
    assert report.events > 0
    comparison = report.comparison
    assert comparison.first_divergent_block is None and comparison.divergent_blocks == []
    assert comparison.live_digest == comparison.chain_digest
    assert comparison.live_digest == mirror_digests(live.engine)[0]
    counts = {t.table: (t.live_rows, t.chain_rows) for t in comparison.tables}
    assert counts["devices"][0] == counts["devices"][1] >= 6
    assert counts["sharing_approvals"][0] == counts["sharing_approvals"][1] >= 2


def test_an_edited_row_is_reported_with_its_columns_and_block(live: Indexer, history: History) -> None:
    code = history.codes[0]  # updated after registration: its block is the update's
    tamper(live.engine, 'UPDATE devices SET attributes = \'{"brand":"forged"}\' WHERE code = :code', code=code)

    report = verify(live)

    assert not report.ok
    table, difference = only_difference(report)
    assert (table, difference.kind, difference.key) == ("devices", "differing", {"code": code})
    assert difference.columns == ["attributes"]
    assert difference.live["attributes"] == '{"brand":"forged"}'
    assert difference.chain["attributes"] == '{"brand":"dahua"}'
    updated_block = difference.chain["updated_block"]
    assert updated_block > history.first_block
    assert report.comparison.first_divergent_block == difference.block == updated_block
    assert [b.number for b in report.comparison.divergent_blocks] == [updated_block]
    assert report.comparison.live_digest != report.comparison.chain_digest


def test_a_deleted_history_row_is_reported_missing(live: Indexer, history: History) -> None:
    tamper(
        live.engine,
        "DELETE FROM device_events WHERE code = :code AND event = 'DeviceInspected'",
        code=history.codes[2],
    )

    report = verify(live)

    table, difference = only_difference(report)
    assert (table, difference.kind) == ("device_events", "missing")
    assert difference.live is None and difference.chain["code"] == history.codes[2]
    assert difference.chain["event"] == "DeviceInspected"
    assert difference.key == {"block_number": difference.block, "log_index": difference.chain["log_index"]}
    assert report.comparison.first_divergent_block == difference.block


def test_an_extra_row_is_reported_with_the_block_it_claims(live: Indexer, history: History) -> None:
    claimed = history.first_block + 1
    tamper(
        live.engine,
        "INSERT INTO devices (code, type_id, owner_org_id, status, district, lat_e6, lon_e6, built_at, attributes, "
        "attributes_hash, tx_hash, block_number, updated_block, updated_tx_hash) VALUES ('BJ-CAMR-110105999999', 1, "
        "2, 'active', 110105, 39900000, 116400000, 1700000000, '{}', '0x00', '0x01', :b, :b, '0x01')",
        b=claimed,
    )

    report = verify(live)

    table, difference = only_difference(report)
    assert (table, difference.kind, difference.key) == ("devices", "extra", {"code": "BJ-CAMR-110105999999"})
    assert difference.chain is None and difference.block == claimed
    assert report.comparison.first_divergent_block == claimed


def test_a_forged_approval_is_reported_and_the_first_of_several_divergent_blocks(
    live: Indexer, history: History, seeded: SeededConsortium
) -> None:
    forger = seeded.orgs["CO-ZHCS"].account
    second_block = history.approval_blocks[1]
    tamper(
        live.engine,
        "UPDATE sharing_approvals SET approver = :forger WHERE request_id = :r AND block_number = :b",
        forger=forger,
        r=history.request_id,
        b=second_block,
    )
    tamper(live.engine, "UPDATE devices SET status = 'retired' WHERE code = :code", code=history.codes[1])

    report = verify(live)

    bad = {t.table: t for t in report.comparison.tables if not t.ok}
    assert set(bad) == {"sharing_approvals", "devices"}
    forged = bad["sharing_approvals"].samples
    assert len(forged) == 1 and forged[0].kind == "differing" and forged[0].columns == ["approver"]
    assert (forged[0].live["approver"], forged[0].block) == (forger, second_block)
    assert forged[0].chain["approver"] != forger
    device_block = bad["devices"].samples[0].block
    assert device_block < second_block  # the life-cycle change came before the approvals
    assert report.comparison.first_divergent_block == device_block
    assert [b.number for b in report.comparison.divergent_blocks] == [device_block, second_block]


def test_blocks_past_the_live_checkpoint_are_not_counted_against_it(
    live: Indexer, history: History, w3: Web3, chain: SeededConsortium
) -> None:
    registry_call(w3, chain, "registerDevices", [device_input(990)])  # mined, not yet indexed by the live mirror

    report = verify(live)

    assert report.ok and report.block == live.checkpoint < w3.eth.block_number


def test_a_mirror_on_blocks_the_chain_does_not_have_is_refused(live: Indexer, history: History) -> None:
    tamper(live.engine, "UPDATE indexer_checkpoints SET block_hash = :h", h="0x" + "11" * 32)

    with pytest.raises(VerifyError, match="reorganised fork"):
        verify(live)


def test_sqlite_and_postgresql_mirrors_have_the_same_digest(
    history: History, anvil: AnvilNode, seeded: SeededConsortium, postgres: Any, tmp_path: Any
) -> None:
    head = JsonRpcClient([anvil.url])
    try:
        at = head.block_number()
    finally:
        head.close()
    digests = []
    for url in (f"sqlite:///{tmp_path / 'a.db'}", postgres.create_database("v_digest")):
        with open_indexer(url, anvil.url, seeded.deployment) as indexer:
            indexer.sync_once(until=at)
            digests.append(mirror_digests(indexer.engine))
    assert digests[0] == digests[1]
    assert len(digests[0][1]) > 5
