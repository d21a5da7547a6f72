"""Reorgs made with anvil_reorg: after a rewind and re-index the mirror equals a fresh replay of the chain."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from chain_gateway.devnet import AnvilNode, SeededConsortium
from chain_gateway.eip712 import Decision
from chain_gateway.governance import contract, govern, role_id
from indexer.errors import ReorgTooDeepError
from indexer.snapshot import dump_mirror
from tests.indexer.support import (
    ACTIVE,
    DESENSITIZED,
    REGISTRAR_ORG,
    REQUESTER_ORG,
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
from tests.support.seeded_chain import SeededChain

PASSED = 0
ACTIVATE, SUSPEND, RETIRE = 0, 1, 5


# Each reorg test gets its own fresh node. On the long-lived session node (hundreds of evm_snapshot/evm_revert
# rounds earlier in the suite) anvil_reorg sometimes rebuilt the fork point from a state anvil no longer held:
# contracts vanished at `latest` (CI, depth 6) or the replacement transaction was left out (depth 8).
@pytest.fixture
def anvil() -> Iterator[AnvilNode]:
    with AnvilNode() as node:
        yield node


@pytest.fixture
def w3(anvil: AnvilNode) -> Web3:
    return Web3(Web3.HTTPProvider(anvil.url))


@pytest.fixture
def chain(w3: Web3, seeded_chain: SeededChain) -> SeededConsortium:
    return seeded_chain.load_into(w3)


def anvil_reorg(w3: Web3, depth: int, txs: list[tuple[str, int]]) -> None:
    """Replace the last `depth` blocks by `depth` new ones holding `txs` ((raw tx, block offset) pairs)."""
    answer = w3.provider.make_request("anvil_reorg", [depth, [list(t) for t in txs]])  # type: ignore[arg-type]
    assert "error" not in answer, answer


def signed_registry_tx(w3: Web3, chain: SeededConsortium, nonce: int, function: str, *args: Any) -> str:
    """A raw DeviceRegistry transaction from the BJ-PSB registrar with an explicit nonce (no estimate)."""
    return signed_tx(w3, chain, chain.orgs[REGISTRAR_ORG].private_key, nonce, "DeviceRegistry", function, *args)


def signed_tx(
    w3: Web3, chain: SeededConsortium, key: str, nonce: int, contract_name: str, function: str, *args: Any
) -> str:
    """A raw transaction calling `contract_name`.`function` signed by `key` with an explicit nonce (no estimate)."""
    target = contract(w3, chain.deployment, contract_name)
    tx = getattr(target.functions, function)(*args).build_transaction(
        {
            "from": Account.from_key(key).address,
            "nonce": nonce,
            "gas": 3_000_000,
            "gasPrice": w3.eth.gas_price * 2,
            "chainId": w3.eth.chain_id,
        }
    )
    return "0x" + Account.sign_transaction(tx, key).raw_transaction.hex()


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_reorg_rewinds_to_the_common_ancestor_and_equals_a_fresh_replay(
    depth: int, chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str, replay_url: str
) -> None:
    a, b, c, d = (device_input(100 + i) for i in range(4))
    registry_call(w3, chain, "registerDevices", [a, b, c])
    with open_indexer(database_url, anvil.url, chain.deployment) as indexer:
        indexer.sync_once()
        # Five blocks that the reorg will (partly) replace; some change rows that existed before them.
        registry_call(w3, chain, "changeLifecycle", a[0], ACTIVATE, "", "on")
        registry_call(w3, chain, "updateDevice", b[0], 110101, 39_900_000, 116_400_000, '{"moved":true}')
        registry_call(w3, chain, "registerDevice", d)
        at = w3.eth.get_block("latest")["timestamp"]
        registry_call(w3, chain, "recordInspection", a[0], PASSED, at, b"\x01" * 32, "ok")
        registry_call(w3, chain, "changeLifecycle", a[0], SUSPEND, "", "off")
        indexed = indexer.sync_once()
        head = w3.eth.block_number
        assert indexed.to_block == head

        fork = head - depth
        registrar = chain.orgs[REGISTRAR_ORG].account
        nonce = w3.eth.get_transaction_count(registrar, fork)
        e = device_input(200 + depth, status=ACTIVE)
        replacement = [
            (signed_registry_tx(w3, chain, nonce, "registerDevice", e), 0),
            (signed_registry_tx(w3, chain, nonce + 1, "changeLifecycle", c[0], RETIRE, "", "gone"), 0),
        ]
        anvil_reorg(w3, depth, replacement)
        assert w3.eth.block_number == head

        result = indexer.sync_once()
        assert result.reorg is not None
        assert (result.reorg.ancestor, result.reorg.depth) == (fork, depth)
        assert result.to_block == head
        rows = {r[0]: r for r in dump_mirror(indexer.engine)["devices"]}
    assert e[0] in rows
    assert rows[c[0]][3] == "retired"
    assert rows[a[0]][3] == ("active" if depth == 1 else "planned" if depth == 5 else "active")
    assert (d[0] in rows) == (depth < 3)
    assert_equals_fresh_replay(database_url, replay_url, anvil.url, chain.deployment)


def test_reorg_restores_members_roles_and_proposals(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str, replay_url: str
) -> None:
    company = chain.orgs["CO-ZHCS"]
    district = chain.orgs["BJ-CY"]
    with open_indexer(database_url, anvil.url, chain.deployment) as indexer:
        indexer.sync_once()
        before = dump_mirror(indexer.engine)
        head = w3.eth.block_number
        govern(
            w3,
            chain.deployment,
            chain.admin_keys(),
            [
                ("Consortium", "setMemberActive", ["CO-ZHCS", False]),
                ("Consortium", "grantRole", [role_id("RELAYER"), company.account]),
                ("Consortium", "revokeRole", [role_id("REGISTRAR"), district.account]),
            ],
            "suspend a company, move roles",
        )
        changed = indexer.sync_once()
        after = dump_mirror(indexer.engine)
        assert ("CO-ZHCS", False) in {(m[1], bool(m[4])) for m in after["members"]}
        assert (company.account, "RELAYER") in {r[:2] for r in after["account_roles"]}
        assert (district.account, "REGISTRAR") not in {r[:2] for r in after["account_roles"]}

        anvil_reorg(w3, changed.to_block - head, [])
        result = indexer.sync_once()
        assert result.reorg is not None and result.reorg.ancestor == head
        assert dump_mirror(indexer.engine) == before
    assert_equals_fresh_replay(database_url, replay_url, anvil.url, chain.deployment)


def test_repeated_reorgs_while_following_the_chain(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str, replay_url: str
) -> None:
    with open_indexer(database_url, anvil.url, chain.deployment, finality_depth=8) as indexer:
        for round_ in range(4):
            registry_call(w3, chain, "registerDevice", device_input(300 + round_))
            registry_call(w3, chain, "changeLifecycle", device_input(300 + round_)[0], ACTIVATE, "", "")
            indexer.sync_once()
            anvil_reorg(w3, 1 + round_ % 2, [])
            registry_call(w3, chain, "registerDevice", device_input(400 + round_))
        indexer.sync_once()
        assert len(indexer.store.recent_blocks()) == 9
    assert_equals_fresh_replay(database_url, replay_url, anvil.url, chain.deployment)


def test_reorg_deeper_than_the_finality_depth_is_fatal(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str
) -> None:
    with open_indexer(database_url, anvil.url, chain.deployment, finality_depth=2) as indexer:
        for i in range(5):
            registry_call(w3, chain, "registerDevice", device_input(500 + i))
        indexer.sync_once()
        anvil_reorg(w3, 5, [])
        with pytest.raises(ReorgTooDeepError):
            indexer.sync_once()
        assert indexer.status.fatal


@pytest.mark.parametrize("depth", [1, 3, 6, 8])
def test_reorg_of_catalog_and_sharing_events_equals_a_fresh_replay(
    depth: int, chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str, replay_url: str
) -> None:
    devices = [device_input(600 + i) for i in range(3)]
    codes = [d[0] for d in devices]
    registry_call(w3, chain, "registerDevices", devices)
    catalog_call(w3, chain, "createEntry", entry_input("卡口过车流量", devices=codes[:2]), True)
    request_sharing(w3, chain, 1)
    with open_indexer(database_url, anvil.url, chain.deployment) as indexer:
        indexer.sync_once()
        start = w3.eth.block_number
        # Eight blocks, one transaction each, that the reorg will (partly) replace.
        catalog_call(w3, chain, "reviseEntry", 1, entry_input("卡口过车流量 v1.1", devices=codes[1:]), False)
        relay_approval(w3, chain, 1, sign_decision(w3, chain, 1, 0))
        relay_approval(w3, chain, 1, sign_decision(w3, chain, 1, 1))  # granted
        request_sharing(w3, chain, 1)
        relay_refusal(w3, chain, 2, sign_decision(w3, chain, 2, 0, Decision.REFUSE, "不予"), "不予")
        relay_revocation(w3, chain, 1, sign_decision(w3, chain, 1, 1, Decision.REVOKE, "到期"), "到期")
        govern(w3, chain.deployment, chain.admin_keys(), [("SharingAgreements", "setApprovalThreshold", [3, 1])], "1")
        indexed = indexer.sync_once()
        head = w3.eth.block_number
        assert indexed.to_block == head and head - start >= 8

        fork = head - depth
        registrar, requester = chain.orgs[REGISTRAR_ORG], chain.orgs[REQUESTER_ORG]
        replacement = [
            (
                signed_tx(
                    w3,
                    chain,
                    registrar.private_key,
                    w3.eth.get_transaction_count(registrar.account, fork),
                    "DataCatalog",
                    "reviseEntry",
                    1,
                    entry_input("卡口过车流量 v2", devices=[codes[2]], upstream=[], grade=4),
                    True,
                ),
                0,
            ),
            (
                signed_tx(
                    w3,
                    chain,
                    requester.private_key,
                    w3.eth.get_transaction_count(requester.account, fork),
                    "SharingAgreements",
                    "request",
                    1,
                    DESENSITIZED,
                    "重组后的申请",
                    7 * 86_400,
                ),
                0,
            ),
        ]
        anvil_reorg(w3, depth, replacement)
        on_chain = contract(w3, chain.deployment, "DataCatalog").functions.getEntry(1).call()
        assert (on_chain[5], on_chain[6]) == (2, 0), f"the replacement revision is not on the chain: {on_chain}"
        result = indexer.sync_once()
        assert result.reorg is not None and result.reorg.ancestor == fork
        entries = {r[0]: r for r in dump_mirror(indexer.engine)["catalog_entries"]}
    assert entries[1][2] == "卡口过车流量 v2"
    assert_equals_fresh_replay(database_url, replay_url, anvil.url, chain.deployment)


def test_reorg_dropping_catalog_and_sharing_blocks_restores_the_mirror(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str, replay_url: str
) -> None:
    devices = [device_input(650 + i) for i in range(2)]
    registry_call(w3, chain, "registerDevices", devices)
    catalog_call(w3, chain, "createEntry", entry_input("积水点监测", devices=[devices[0][0]]), True)
    request_sharing(w3, chain, 1)
    with open_indexer(database_url, anvil.url, chain.deployment) as indexer:
        indexer.sync_once()
        before = dump_mirror(indexer.engine)
        head = w3.eth.block_number
        catalog_call(w3, chain, "reviseEntry", 1, entry_input("积水点监测 v2", devices=[devices[1][0]]), True)
        relay_approval(w3, chain, 1, sign_decision(w3, chain, 1, 0))
        relay_approval(w3, chain, 1, sign_decision(w3, chain, 1, 1))
        catalog_call(w3, chain, "setStatus", 1, 3)  # deprecated
        changed = indexer.sync_once()
        after = dump_mirror(indexer.engine)
        assert after["catalog_lineage"] != before["catalog_lineage"]
        assert len(after["sharing_approvals"]) == 2 and len(after["catalog_entry_versions"]) == 2

        anvil_reorg(w3, changed.to_block - head, [])
        result = indexer.sync_once()
        assert result.reorg is not None and result.reorg.ancestor == head
        assert dump_mirror(indexer.engine) == before
    assert_equals_fresh_replay(database_url, replay_url, anvil.url, chain.deployment)
