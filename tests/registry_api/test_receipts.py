"""Usage receipts: their hash and Merkle tree against independent implementations, gapless ids under concurrent
writers, and anchoring on anvil (each database) with proofs checked in Python and by the contract's view."""

from __future__ import annotations

import threading
import time
from typing import Any

from eth_abi import encode
from eth_utils import keccak
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from chain_gateway.governance import contract
from chain_gateway.outbox import Operation
from registry_api.anchoring import ReceiptAnchorer
from registry_api.app import create_read_engine
from registry_api.models import ReceiptAnchor, UsageReceipt
from registry_api.receipts import (
    RECEIPT_ABI_TYPES,
    ZERO_HASH,
    MerkleTree,
    ReceiptFields,
    append_receipt,
    create_receipt_tables,
    encode_receipt,
    leaf_hash,
    receipt_hash,
    verify_proof,
)
from registry_api.resolver import create_resolver_engine
from tests.registry_api.catalog_support import create_entry
from tests.registry_api.resolver_support import (
    api_settings,  # noqa: F401  (the fixture: keys under tmp_path, no anchoring job)
    grant,
    hotline_entry,
    listed_builtin,
    resolve,
)
from tests.registry_api.support import Api

OPERATOR = "BJ-EIB"  # the dev profile's zone operator: it holds RELAYER

# Roots of StandardMerkleTree.of([[100 + i, keccak256("receipt-" + i)] for i in 1..n], ["uint64", "bytes32"])
# computed with @openzeppelin/merkle-tree 1.0.8 (npm), and the proof of the first value for n = 7.
OZ_ROOTS = {
    1: "0xe0d078b14193ad4e2b63be2f45928c01312f592ccf09fd5b64043449607fb825",
    2: "0x26143965e0b7904b45a5942e17fb4e1d88ccae0130c50b0dde87d3bf8cde91d4",
    3: "0x3c5a080fe3dc72a5705016eb501acdda93822f8e293a3a5c45865de2dce501ba",
    5: "0x761bfe0576252895382111a7f4533f62fe9610bfccaa04f91b231e2a5006b0f8",
    7: "0x0606bbe7023fa8d4e147616c7485d8507c6e2d8cc2e01b136343e4953df5cd10",
}
OZ_PROOF_7 = [
    "0xad5ac67fb47b679f013cf394c31446072a180e07ba999c1b19e011899283f1e0",
    "0x887acdd6580ab603ebdcb9d6f8cb95cd445fd4da30de69ee47fb63a2af5e0723",
    "0x9c4ca334d3c239a1a8ebd4931be317df8bcc0a2d4cfd35feb5155a87a203b151",
]


def _fields(n: int, **changes: Any) -> ReceiptFields:
    values: dict[str, Any] = {
        "kind": "job",
        "account": "0x" + f"{n:040x}",
        "org_code": "CO-ZHCS 北京智慧城市",  # UTF-8 longer than a word
        "entry_id": n,
        "entry_version_hash": "0x" + keccak(text=f"v{n}").hex(),
        "action": "compute",
        "form": "result_only",
        "grant_id": 7 + n,
        "algorithm_code_hash": ZERO_HASH,
        "result_hash": "0x" + keccak(text=f"r{n}").hex(),
        "epsilon_micros": 250_000,
        "decided_block": 123_456 + n,
        "issued_at": 1_767_225_600,
        "ref": f"job-{n}",
    }
    values.update(changes)
    return ReceiptFields(**values)


def _abi_hash(values: list[Any]) -> str:
    """The receipt hash as an auditor computes it with eth_abi (bytes32 as bytes)."""
    typed = [bytes.fromhex(v[2:]) if t == "bytes32" else v for t, v in zip(RECEIPT_ABI_TYPES, values, strict=True)]
    return "0x" + keccak(encode(list(RECEIPT_ABI_TYPES), typed)).hex()


def test_receipt_hash_is_keccak_of_the_abi_encoding_eth_abi_gives() -> None:
    for fields in (
        _fields(1, grant_id=2**200),  # uint256 on-chain
        _fields(2, kind="token", action="read_raw", form="raw", org_code="", ref="x"),
    ):
        values = list(fields.abi_values())
        typed = [bytes.fromhex(v[2:]) if t == "bytes32" else v for t, v in zip(RECEIPT_ABI_TYPES, values, strict=True)]
        assert encode_receipt(values) == encode(list(RECEIPT_ABI_TYPES), typed)
        assert receipt_hash(fields) == _abi_hash(values)
    assert receipt_hash(_fields(1)) == receipt_hash(_fields(1, ref="another ref"))  # the ref is not hashed


def test_merkle_tree_matches_openzeppelins_standard_tree_and_every_proof_verifies() -> None:
    for n, root in OZ_ROOTS.items():
        leaves = [leaf_hash(100 + i, "0x" + keccak(text=f"receipt-{i}").hex()) for i in range(1, n + 1)]
        tree = MerkleTree(leaves)
        assert tree.root == root
        for index, leaf in enumerate(leaves):
            assert verify_proof(tree.proof(index), tree.root, leaf)
            assert not verify_proof(tree.proof(index), tree.root, keccak(leaf))
        if n == 7:
            assert tree.proof(0) == OZ_PROOF_7


def _append_concurrently(engine: Engine, autocommit: Engine, writers: int, each: int) -> list[list[int]]:
    """Writers append receipts (half in autocommit as the resolver does, half inside a transaction that lingers
    after the insert as a zone job's does) while a reader keeps taking what is visible; returns its views."""
    done = threading.Event()
    views: list[list[int]] = []

    def write(worker: int) -> None:
        for n in range(each):
            if worker % 2:
                conn = autocommit.raw_connection()
                try:
                    append_receipt(conn.cursor(), autocommit.dialect.name, _fields(worker * 1_000 + n))
                finally:
                    conn.close()
                continue
            with engine.begin() as tx:
                append_receipt(tx.connection.cursor(), tx.dialect.name, _fields(worker * 1_000 + n))
                time.sleep(0.002)  # others wait for the id lock meanwhile

    def read() -> None:
        while not done.is_set():
            with Session(engine) as session:
                views.append(list(session.exec(select(UsageReceipt.receipt_id)).all()))

    reader = threading.Thread(target=read)
    reader.start()
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    reader.join()
    return views


def test_receipt_ids_are_gapless_and_committed_in_order_under_concurrent_writers(database_url: str) -> None:
    engine = create_read_engine(database_url)
    autocommit = create_resolver_engine(database_url)
    try:
        create_receipt_tables(engine)
        views = _append_concurrently(engine, autocommit, writers=6, each=20)
        with Session(engine) as session:
            rows = session.exec(select(UsageReceipt).order_by(col(UsageReceipt.receipt_id))).all()
        assert [r.receipt_id for r in rows] == list(range(1, 121))
        assert all(r.receipt_hash == receipt_hash(_fields(r.entry_id)) for r in rows)
        # whenever a reader looked, the visible ids were 1..n: no id ever showed before a smaller one
        assert views and all(sorted(v) == list(range(1, len(v) + 1)) for v in views)
    finally:
        autocommit.dispose()
        engine.dispose()


def _receipt(api: Api, receipt_id: int, org: str) -> dict[str, Any]:
    answer = api.get(f"/v1/zone/receipts/{receipt_id}", org)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _anchored(api: Api, anchorer: ReceiptAnchorer) -> dict[str, Any]:
    """Queue the next batch, settle its operation and index it; returns the operation."""
    result = anchorer.run_once()
    assert result is not None and result.status == "queued" and result.operation_id, result
    op = api.settle(result.operation_id, OPERATOR)
    assert op["status"] == "confirmed", op
    return op


def test_receipts_are_anchored_once_and_their_proofs_verify_against_the_on_chain_root(api: Api) -> None:
    entry_id = create_entry(api, hotline_entry())
    algorithm_id = listed_builtin(api, "grouped_count", entry_id)
    grant(api, entry_id, "CO-ZHCS", "result_only")
    grant(api, entry_id, "BJ-CMC", "raw")
    tokens = [resolve(api, "BJ-CMC", entry_id, "read_raw")["capability"] for _ in range(3)]
    body = {"entry_id": entry_id, "algorithm_id": algorithm_id, "params": {"group_by": ["street"]}}
    job = api.post("/v1/zone/jobs", body, "CO-ZHCS").json()
    assert [t["receipt_id"] for t in tokens] + [job["receipt_id"]] == [1, 2, 3, 4]

    # an auditor recomputes every receipt hash from what the API shows
    for receipt_id in range(1, 5):
        shown = _receipt(api, receipt_id, "AU-BJ")
        names = ("kind", "account", "org", "entry_id", "entry_version_hash", "action", "form", "grant_id",
                 "algorithm_code_hash", "result_hash", "epsilon_micros", "decided_block", "issued_at")  # fmt: skip
        assert shown["hash_abi_types"] == list(RECEIPT_ABI_TYPES)
        assert _abi_hash([shown[n] for n in names]) == shown["receipt_hash"]
        assert not shown["anchored"] and shown["proof"] is None and shown["anchor_status"] == "unbatched"
    first = _receipt(api, 1, "BJ-CMC")
    assert first["result_hash"] == "0x" + keccak(tokens[0]["token"].encode()).hex()
    assert first["ref"] == tokens[0]["jti"] and first["receipt_hash"] == tokens[0]["receipt_hash"]
    assert _receipt(api, 4, "CO-ZHCS")["epsilon_spent"] == job["epsilon_spent"]
    assert api.get("/v1/zone/receipts/1", "BJ-EMB").json()["code"] == "RECEIPT_NOT_FOUND"  # not its receipt
    assert _receipt(api, 4, "BJ-PSB")["kind"] == "job"  # the entry's owner sees the uses of its entry

    anchorer: ReceiptAnchorer = api.app.state.anchorer
    in_flight = anchorer.run_once()
    assert in_flight is not None and (in_flight.first_receipt, in_flight.last_receipt) == (1, 4)
    again = anchorer.run_once()  # one batch in flight at a time: nothing new is queued
    assert again is not None and again.operation_id == in_flight.operation_id
    assert in_flight.operation_id is not None
    op = api.settle(in_flight.operation_id, OPERATOR)
    assert op["status"] == "confirmed", op

    sharing = contract(api.w3, api.chain.deployment, "SharingAgreements")
    for receipt_id in range(1, 5):
        shown = _receipt(api, receipt_id, "AU-BJ")
        batch = shown["batch"]
        assert shown["anchored"] and shown["root_matches"] and batch["tx_hash"] == op["tx_hash"]
        assert (batch["first_receipt"], batch["last_receipt"]) == (1, 4) and batch["block_number"] == op["block_number"]
        on_chain = sharing.functions.getReceiptBatch(batch["batch_id"]).call()
        assert "0x" + on_chain[0].hex() == batch["merkle_root"] == in_flight.merkle_root
        leaf = bytes.fromhex(shown["leaf"][2:])
        assert verify_proof(shown["proof"], batch["merkle_root"], leaf)
        proof = [bytes.fromhex(p[2:]) for p in shown["proof"]]
        digest = bytes.fromhex(shown["receipt_hash"][2:])
        assert sharing.functions.verifyReceipt(batch["batch_id"], receipt_id, digest, proof).call()
        assert not sharing.functions.verifyReceipt(batch["batch_id"], receipt_id, keccak(digest), proof).call()

    # the next batch starts right after: receipts 5.. in a second root
    resolve(api, "BJ-CMC", entry_id, "read_raw")
    resolve(api, "BJ-CMC", entry_id, "read_desensitized")
    second = _anchored(api, anchorer)
    shown = _receipt(api, 6, "BJ-CMC")
    assert (shown["batch"]["first_receipt"], shown["batch"]["last_receipt"]) == (5, 6)
    assert shown["batch"]["tx_hash"] == second["tx_hash"]
    with Session(api.app.state.engine) as session:
        statuses = session.exec(select(ReceiptAnchor.status).order_by(col(ReceiptAnchor.anchor_id))).all()
    assert statuses == ["anchored", "queued"]  # the second is marked anchored by the next run
    assert anchorer.run_once() is not None and anchorer.run_once() is None  # nothing left to anchor


def _anchor_operations(api: Api) -> list[Operation]:
    with Session(api.app.state.engine) as session:
        return list(session.exec(select(Operation).where(Operation.function == "anchorReceipts")).all())


def test_a_crash_between_recording_and_queueing_neither_skips_nor_doubles_a_batch(api: Api) -> None:
    entry_id = create_entry(api, hotline_entry())
    grant(api, entry_id, "BJ-CMC", "raw")
    for _ in range(3):
        resolve(api, "BJ-CMC", entry_id, "read_raw")
    anchorer: ReceiptAnchorer = api.app.state.anchorer

    # crash 1: the batch is recorded and committed, the process dies before queueing it
    with Session(api.app.state.engine, expire_on_commit=False) as session:
        recorded, _ = anchorer._next(session)
        session.commit()
    assert recorded is not None and recorded.status == "recorded" and _anchor_operations(api) == []
    # crash 2: it was queued, but the process died before storing the operation id
    op = api.app.state.gateway.enqueue(
        org_code=OPERATOR,
        account=anchorer.relayer_account(),
        contract="SharingAgreements",
        function="anchorReceipts",
        args=[recorded.merkle_root, recorded.first_receipt, recorded.last_receipt],
        idempotency_key=recorded.idempotency_key,
    )
    resumed = anchorer.run_once()  # the restarted job queues the recorded batch with its key: the same operation
    assert resumed is not None and resumed.operation_id == op.id and resumed.anchor_id == recorded.anchor_id
    assert [o.id for o in _anchor_operations(api)] == [op.id]
    settled = api.settle(op.id, OPERATOR)
    assert settled["status"] == "confirmed"
    resolve(api, "BJ-CMC", entry_id, "read_raw")
    following = anchorer.run_once()
    assert following is not None and (following.first_receipt, following.last_receipt) == (4, 4)
    assert len(_anchor_operations(api)) == 2
