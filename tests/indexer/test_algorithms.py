"""The mirror follows the algorithm center and the anchored usage receipts, on SQLite and PostgreSQL, and a reorg
that replaces admissions and delistings rewinds them exactly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import eth_abi
import pytest
from eth_utils import keccak
from sqlalchemy import select
from sqlmodel import Session
from web3 import Web3

from chain_gateway.devnet import AnvilNode, SeededConsortium
from chain_gateway.governance import contract
from indexer.models import Algorithm, AlgorithmEvaluation, EntryAlgorithm, ReceiptBatch
from indexer.snapshot import dump_mirror
from registry_api import crud_algorithms
from tests.indexer.support import (
    REGISTRAR_ORG,
    assert_equals_fresh_replay,
    call,
    catalog_call,
    entry_input,
    open_indexer,
)
from tests.indexer.test_reorg import anvil_reorg, signed_tx
from tests.support.seeded_chain import SeededChain

SUBMITTER, REVIEWER, SECOND_REVIEWER, RELAYER = "CO-ZHCS", "BJ-EIB", "BJ-CMC", "BJ-EIB"
DELISTED = 4  # IAlgorithmRegistry.AlgorithmStatus
INPUT_TYPE = "(string,string,bytes32,string)"


def algorithm_input(name: str, version: str = "1.0.0") -> tuple[str, str, bytes, str]:
    """An AlgorithmInput: a code hash derived from the name and version, declared outputs as canonical JSON."""
    outputs = json.dumps({"columns": ["group", name], "min_group_size": 10}, sort_keys=True, separators=(",", ":"))
    return (name, version, keccak(text=f"{name}@{version}"), outputs)


def algorithms_call(w3: Web3, chain: SeededConsortium, org: str, function: str, *args: Any) -> dict[str, Any]:
    """Send AlgorithmRegistry.`function`(*args) as demo org `org`'s main account."""
    return call(w3, chain, chain.orgs[org].private_key, "AlgorithmRegistry", function, *args)


def submit(w3: Web3, chain: SeededConsortium, name: str, org: str = SUBMITTER) -> int:
    """Submit algorithm `name` 1.0.0 as `org`; returns its id."""
    registry = contract(w3, chain.deployment, "AlgorithmRegistry")
    algorithm_id = int(registry.functions.algorithmCount().call()) + 1
    algorithms_call(w3, chain, org, "submit", algorithm_input(name))
    return algorithm_id


def listed(w3: Web3, chain: SeededConsortium, name: str, score: int = 80) -> int:
    """A submitted, evaluated and listed algorithm; returns its id."""
    algorithm_id = submit(w3, chain, name)
    algorithms_call(w3, chain, REVIEWER, "evaluate", algorithm_id, keccak(text=f"report {name}"), score)
    algorithms_call(w3, chain, REVIEWER, "list", algorithm_id)
    return algorithm_id


def published_entry(w3: Web3, chain: SeededConsortium, title: str = "卡口过车流量（小时统计）") -> int:
    """A published entry of BJ-PSB; returns its id."""
    entry_id = int(contract(w3, chain.deployment, "DataCatalog").functions.entryCount().call()) + 1
    catalog_call(w3, chain, "createEntry", entry_input(title), True)
    return entry_id


def org_id(w3: Web3, chain: SeededConsortium, code: str) -> int:
    return int(contract(w3, chain.deployment, "Consortium").functions.orgOf(chain.orgs[code].account).call())


def test_algorithm_life_cycle_and_receipt_batches_are_mirrored(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str, replay_url: str
) -> None:
    entry_id = published_entry(w3, chain)
    counting = submit(w3, chain, "grouped_count")
    mean = submit(w3, chain, "mean", org="BJ-EMB")
    with open_indexer(database_url, anvil.url, chain.deployment) as indexer:
        indexer.sync_once()  # the mirror is built in two syncs: the second one changes indexed rows
        report = keccak(text="测评报告：分组计数，k=10 抑制小组")
        algorithms_call(w3, chain, REVIEWER, "evaluate", counting, report, 85)
        algorithms_call(w3, chain, REVIEWER, "list", counting)
        admitted = algorithms_call(w3, chain, REGISTRAR_ORG, "admit", entry_id, counting)
        algorithms_call(w3, chain, REVIEWER, "evaluate", mean, keccak(text="first"), 40)
        algorithms_call(w3, chain, SECOND_REVIEWER, "evaluate", mean, keccak(text="second"), 72)
        algorithms_call(w3, chain, REVIEWER, "list", mean)
        algorithms_call(w3, chain, REGISTRAR_ORG, "admit", entry_id, mean)
        # continual evaluation: a listed algorithm scored below the pass mark is delisted at once
        algorithms_call(w3, chain, SECOND_REVIEWER, "evaluate", counting, keccak(text="regression"), 30)
        delisting = algorithms_call(w3, chain, REVIEWER, "delist", mean, "输出可识别个人信息")
        algorithms_call(w3, chain, REGISTRAR_ORG, "withdraw", entry_id, mean)
        roots = [keccak(text="batch 1"), keccak(text="batch 2")]
        first_batch = call(
            w3, chain, chain.orgs[RELAYER].private_key, "SharingAgreements", "anchorReceipts", roots[0], 1, 5
        )
        call(w3, chain, chain.orgs[RELAYER].private_key, "SharingAgreements", "anchorReceipts", roots[1], 6, 9)
        indexer.sync_once()
        with Session(indexer.engine) as session:
            rows = {a.algorithm_id: a for a in session.exec(select(Algorithm)).scalars()}
            evaluations = list(
                session.exec(
                    select(AlgorithmEvaluation).order_by(
                        AlgorithmEvaluation.block_number, AlgorithmEvaluation.log_index
                    )
                ).scalars()
            )
            admissions = list(session.exec(select(EntryAlgorithm)).scalars())
            batches = list(session.exec(select(ReceiptBatch).order_by(ReceiptBatch.batch_id)).scalars())
            assert not crud_algorithms.is_admitted(session, entry_id, counting)  # admitted but delisted
            assert crud_algorithms.admitted_algorithms(session, entry_id) == []
            assert [
                a.algorithm_id for a in crud_algorithms.admitted_algorithms(session, entry_id, listed_only=False)
            ] == [counting]
            got = crud_algorithms.get_algorithm(session, mean)
            assert got is not None and got.status == "delisted"

    name, version, code_hash, outputs = algorithm_input("grouped_count")
    row = rows[counting]
    assert (row.name, row.version, row.code_hash, row.outputs) == (name, version, "0x" + code_hash.hex(), outputs)
    assert row.input_hash == "0x" + keccak(eth_abi.encode([INPUT_TYPE], [algorithm_input("grouped_count")])).hex()
    assert (row.submitter_org_id, row.submitter) == (org_id(w3, chain, SUBMITTER), chain.orgs[SUBMITTER].account)
    assert (row.status, row.status_reason, row.score) == ("delisted", "evaluation below pass mark", 30)
    assert row.report_hash == "0x" + keccak(text="regression").hex()
    on_chain = contract(w3, chain.deployment, "AlgorithmRegistry").functions.getAlgorithm(counting).call()
    assert (on_chain[1], on_chain[2], "0x" + on_chain[5].hex()) == (DELISTED, row.score, row.input_hash)
    assert row.submitted_at == w3.eth.get_block(row.submitted_block)["timestamp"]
    assert row.updated_at == w3.eth.get_block(row.updated_block)["timestamp"]

    other = rows[mean]
    assert (other.status, other.status_reason, other.score) == ("delisted", "输出可识别个人信息", 72)
    assert (other.updated_block, other.updated_tx_hash) == (
        delisting["blockNumber"],
        "0x" + delisting["transactionHash"].hex(),
    )

    assert [(e.algorithm_id, e.score, e.passed, e.reviewer) for e in evaluations] == [
        (counting, 85, True, chain.orgs[REVIEWER].account),
        (mean, 40, False, chain.orgs[REVIEWER].account),
        (mean, 72, True, chain.orgs[SECOND_REVIEWER].account),
        (counting, 30, False, chain.orgs[SECOND_REVIEWER].account),
    ]
    assert evaluations[0].report_hash == "0x" + report.hex()
    assert evaluations[0].reviewer_org_id == org_id(w3, chain, REVIEWER)
    assert all(e.block_time == w3.eth.get_block(e.block_number)["timestamp"] for e in evaluations)

    # the withdrawn admission is gone; the delisted one stays (the owner did not withdraw it) but counts for nothing
    assert [(a.entry_id, a.algorithm_id, a.admitted_by) for a in admissions] == [
        (entry_id, counting, chain.orgs[REGISTRAR_ORG].account)
    ]
    assert (admissions[0].owner_org_id, admissions[0].block_number) == (
        org_id(w3, chain, REGISTRAR_ORG),
        admitted["blockNumber"],
    )

    relayer = chain.orgs[RELAYER].account
    assert [(b.batch_id, b.merkle_root, b.first_receipt, b.last_receipt, b.relayer) for b in batches] == [
        (1, "0x" + roots[0].hex(), 1, 5, relayer),
        (2, "0x" + roots[1].hex(), 6, 9, relayer),
    ]
    assert batches[0].relayer_org_id == org_id(w3, chain, RELAYER)
    assert (batches[0].block_number, batches[0].tx_hash) == (
        first_batch["blockNumber"],
        "0x" + first_batch["transactionHash"].hex(),
    )
    assert_equals_fresh_replay(database_url, replay_url, anvil.url, chain.deployment)


# Reorg tests get a fresh node each (see tests/indexer/test_reorg.py: anvil_reorg on the long-lived session node
# may rebuild the fork point from a state it no longer holds).
@pytest.fixture
def fresh_anvil() -> Iterator[AnvilNode]:
    with AnvilNode() as node:
        yield node


@pytest.fixture
def fresh_w3(fresh_anvil: AnvilNode) -> Web3:
    return Web3(Web3.HTTPProvider(fresh_anvil.url))


@pytest.fixture
def fresh_chain(fresh_w3: Web3, seeded_chain: SeededChain) -> SeededConsortium:
    return seeded_chain.load_into(fresh_w3)


def _replacement(w3: Web3, chain: SeededConsortium, fork: int, calls: list[tuple[str, str, list[Any]]]) -> list[str]:
    """Raw AlgorithmRegistry transactions (org, function, args) with nonces as of block `fork`, one per org."""
    raw = []
    for org, function, args in calls:
        account, key = chain.orgs[org].account, chain.orgs[org].private_key
        nonce = w3.eth.get_transaction_count(account, fork)
        raw.append(signed_tx(w3, chain, key, nonce, "AlgorithmRegistry", function, *args))
    return raw


@pytest.mark.parametrize("depth", [2, 4])
def test_reorg_replacing_admissions_and_delistings_equals_a_fresh_replay(
    depth: int,
    fresh_chain: SeededConsortium,
    fresh_w3: Web3,
    fresh_anvil: AnvilNode,
    database_url: str,
    replay_url: str,
) -> None:
    chain, w3 = fresh_chain, fresh_w3
    entry_id = published_entry(w3, chain)
    first, second = listed(w3, chain, "grouped_count"), listed(w3, chain, "histogram")
    algorithms_call(w3, chain, REGISTRAR_ORG, "admit", entry_id, first)
    with open_indexer(database_url, fresh_anvil.url, chain.deployment) as indexer:
        indexer.sync_once()
        start = w3.eth.block_number
        # Four blocks, one transaction each, that the reorg will (partly) replace.
        algorithms_call(w3, chain, REGISTRAR_ORG, "withdraw", entry_id, first)
        algorithms_call(w3, chain, REGISTRAR_ORG, "admit", entry_id, second)
        algorithms_call(w3, chain, REVIEWER, "delist", second, "发现缺陷")
        algorithms_call(w3, chain, SECOND_REVIEWER, "evaluate", first, keccak(text="复测"), 90)
        indexed = indexer.sync_once()
        head = w3.eth.block_number
        assert indexed.to_block == head == start + 4
        before = {r[0]: r for r in dump_mirror(indexer.engine)["algorithms"]}
        assert before[second][8] == "delisted"

        fork = head - depth
        # At the fork the replacement delists the first algorithm instead, and moves the second one's admission
        # the other way from what the replaced blocks did.
        moved = ("withdraw" if depth == 2 else "admit", [entry_id, second])
        calls = [(REVIEWER, "delist", [first, "重组分支下架"]), (REGISTRAR_ORG, *moved)]
        anvil_reorg(w3, depth, [(tx, 0) for tx in _replacement(w3, chain, fork, calls)])
        registry = contract(w3, chain.deployment, "AlgorithmRegistry")
        assert registry.functions.getAlgorithm(first).call()[1] == DELISTED, "the replacement is not on the chain"
        result = indexer.sync_once()
        assert result.reorg is not None and result.reorg.ancestor == fork
        with Session(indexer.engine) as session:
            statuses = {a.algorithm_id: (a.status, a.status_reason) for a in session.exec(select(Algorithm)).scalars()}
            admitted = {a.algorithm_id for a in session.exec(select(EntryAlgorithm)).scalars()}
            usable = [a.algorithm_id for a in crud_algorithms.admitted_algorithms(session, entry_id)]
            scores = [e.score for e in session.exec(select(AlgorithmEvaluation)).scalars() if e.algorithm_id == first]
    assert statuses == {first: ("delisted", "重组分支下架"), second: ("listed", "")}
    assert admitted == (set() if depth == 2 else {first, second})
    assert usable == ([] if depth == 2 else [second])
    assert scores == [80]  # the re-evaluation was in a replaced block
    assert registry.functions.isAdmitted(entry_id, second).call() == (second in usable)
    assert_equals_fresh_replay(database_url, replay_url, fresh_anvil.url, chain.deployment)
