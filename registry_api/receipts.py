"""Usage receipts: their hash, their store, and the Merkle tree their anchors commit to.

Every capability token issued and every data-zone job writes one receipt. Its hash is what an auditor
recomputes from the receipt as `GET /v1/zone/receipts/{id}` shows it:

    receipt_hash = keccak256(abi.encode(
        string  kind,               // "token" | "job"
        address account,            // the principal's account
        string  orgCode,            // the principal's org
        uint64  entryId,
        bytes32 entryVersionHash,   // the entry version decided on
        string  action,             // "read_raw" | "read_desensitized" | "compute"
        string  form,               // "raw" | "desensitized" | "result_only"
        uint256 grantId,            // 0: the owner org on its own entry
        bytes32 algorithmCodeHash,  // zero unless compute
        bytes32 resultHash,         // token: keccak256(the JWT's ASCII); job: keccak256(canonical JSON of the release)
        uint64  epsilonMicros,      // epsilon spent x 1,000,000
        uint64  decidedBlock,       // the mirror's block the decision was made at
        uint64  issuedAt))          // unix seconds

Receipt ids are taken under a lock held until the writing transaction commits (a counter row on PostgreSQL,
the single writer's lock on SQLite), so they are gapless and committed in id order: once a receipt id is
visible, every smaller id is too (what lets the anchoring job take "everything after the last anchored id"
without ever skipping one).

The tree follows OpenZeppelin (`@openzeppelin/merkle-tree` StandardMerkleTree over ["uint64", "bytes32"],
verified on-chain by `MerkleProof`): leaf = keccak256(bytes.concat(keccak256(abi.encode(uint64 receiptId,
bytes32 receiptHash)))), leaves sorted by hash, sorted-pair keccak256 inner nodes, the same array layout, so
`StandardMerkleTree.of(values, ["uint64", "bytes32"]).root` gives the anchored root.
"""

from __future__ import annotations

import functools
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from typing import Any

from eth_utils import keccak
from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col

from registry_api.models import ReceiptAnchor, ReceiptSequence, UsageReceipt

__all__ = [
    "RECEIPT_ABI_TYPES",
    "ZERO_HASH",
    "MerkleTree",
    "ReceiptFields",
    "StoredReceipt",
    "append_receipt",
    "create_receipt_tables",
    "dbapi_sql",
    "encode_receipt",
    "leaf_hash",
    "lock_anchoring",
    "receipt_hash",
    "receipts_in_range",
    "tree_for_range",
    "verify_proof",
]

ZERO_HASH = "0x" + "00" * 32
RECEIPT_ABI_TYPES = (
    "string",
    "address",
    "string",
    "uint64",
    "bytes32",
    "string",
    "string",
    "uint256",
    "bytes32",
    "bytes32",
    "uint64",
    "uint64",
    "uint64",
)
_SEQUENCE = "usage"
_ANCHOR_LOCK = "anchor"  # a second row: locked by the anchoring job so that two runners never overlap


@dataclass(frozen=True)
class ReceiptFields:
    """A receipt before it is stored: the hashed fields in ABI order, and `ref` (token jti or job id, not hashed)."""

    kind: str
    account: str
    org_code: str
    entry_id: int
    entry_version_hash: str
    action: str
    form: str
    grant_id: int
    algorithm_code_hash: str
    result_hash: str
    epsilon_micros: int
    decided_block: int
    issued_at: int
    ref: str = ""

    def abi_values(self) -> tuple[object, ...]:
        return (
            self.kind,
            self.account,
            self.org_code,
            self.entry_id,
            self.entry_version_hash,
            self.action,
            self.form,
            self.grant_id,
            self.algorithm_code_hash,
            self.result_hash,
            self.epsilon_micros,
            self.decided_block,
            self.issued_at,
        )


@dataclass(frozen=True)
class StoredReceipt:
    receipt_id: int
    receipt_hash: str


# ---------------------------------------------------------------- hashing


def _word(value: int, bits: int) -> bytes:
    if not 0 <= value < 1 << bits:
        raise ValueError(f"{value} does not fit uint{bits}")
    return value.to_bytes(32, "big")


def _bytes32(value: str) -> bytes:
    raw = bytes.fromhex(value[2:] if value.startswith("0x") else value)
    if len(raw) != 32:
        raise ValueError(f"{value!r} is not 32 bytes")
    return raw


def _address(value: str) -> bytes:
    raw = bytes.fromhex(value[2:] if value.startswith("0x") else value)
    if len(raw) != 20:
        raise ValueError(f"{value!r} is not an address")
    return raw


def encode_receipt(values: Sequence[object]) -> bytes:
    """abi.encode of the receipt's fields (RECEIPT_ABI_TYPES), byte for byte what `eth_abi.encode` gives.

    Written out because it is on every decision's path and the generic encoder costs several times more.
    """
    head: list[bytes] = []
    tail = bytearray()
    head_size = 32 * len(RECEIPT_ABI_TYPES)
    for kind, value in zip(RECEIPT_ABI_TYPES, values, strict=True):
        if kind == "string":
            data = str(value).encode()
            head.append((head_size + len(tail)).to_bytes(32, "big"))
            tail += len(data).to_bytes(32, "big") + data + bytes(-len(data) % 32)
        elif kind == "address":
            head.append(bytes(12) + _address(str(value)))
        elif kind == "bytes32":
            head.append(_bytes32(str(value)))
        else:
            head.append(_word(int(value), int(kind[4:])))  # type: ignore[call-overload]
    return b"".join(head) + bytes(tail)


def receipt_hash(fields: ReceiptFields) -> str:
    """keccak256(abi.encode(...)) of the receipt's fields, 0x-hex."""
    return "0x" + keccak(encode_receipt(fields.abi_values())).hex()


def leaf_hash(receipt_id: int, receipt_hash_hex: str) -> bytes:
    """The Merkle leaf: keccak256(bytes.concat(keccak256(abi.encode(uint64 receiptId, bytes32 receiptHash))))."""
    return keccak(keccak(_word(receipt_id, 64) + _bytes32(receipt_hash_hex)))


def _hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b if a < b else b + a)


def verify_proof(proof: Sequence[str], root: str, leaf: bytes) -> bool:
    """OpenZeppelin MerkleProof.verify: fold the proof with sorted-pair keccak256 and compare with the root."""
    node = leaf
    for sibling in proof:
        node = _hash_pair(node, _bytes32(sibling))
    return "0x" + node.hex() == root.lower()


class MerkleTree:
    """OpenZeppelin's StandardMerkleTree over leaves given in receipt order (proofs are asked by that order)."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        if not leaves:
            raise ValueError("a Merkle tree needs at least one leaf")
        order = sorted(range(len(leaves)), key=lambda i: leaves[i])
        size = 2 * len(leaves) - 1
        tree: list[bytes] = [b""] * size
        self._position: dict[int, int] = {}
        for rank, index in enumerate(order):
            self._position[index] = size - 1 - rank
            tree[size - 1 - rank] = leaves[index]
        for i in range(size - 1 - len(leaves), -1, -1):
            tree[i] = _hash_pair(tree[2 * i + 1], tree[2 * i + 2])
        self._tree = tree

    @property
    def root(self) -> str:
        return "0x" + self._tree[0].hex()

    def proof(self, index: int) -> list[str]:
        """Sibling hashes from the leaf given `index`-th up to the root."""
        i = self._position[index]
        proof: list[str] = []
        while i > 0:
            sibling = i + 1 if i % 2 == 1 else i - 1
            proof.append("0x" + self._tree[sibling].hex())
            i = (i - 1) // 2
        return proof


# ---------------------------------------------------------------- store

_RECEIPTS = UsageReceipt.__table__  # type: ignore[attr-defined]
_SEQ = ReceiptSequence.__table__  # type: ignore[attr-defined]
# Written out for the DBAPI cursor: a receipt is written on every permit's path (see registry_api.resolver),
# in ONE statement that takes the next id and inserts: PostgreSQL takes it from the counter row, whose lock the
# UPDATE holds until the transaction ends; SQLite has one writer at a time, so MAX + 1 is read under that lock.
_COLUMNS = ("receipt_id", "receipt_hash", *(f.name for f in dataclass_fields(ReceiptFields)))
_VALUES = ", ".join(":" + c for c in _COLUMNS[1:])
_INSERT_SQL = {
    "postgresql": (
        f"WITH taken AS (UPDATE receipt_sequence SET next_id = next_id + 1 WHERE name = '{_SEQUENCE}' "
        f"RETURNING next_id - 1 AS receipt_id) INSERT INTO usage_receipts ({', '.join(_COLUMNS)}) "
        f"SELECT taken.receipt_id, {_VALUES} FROM taken RETURNING receipt_id"
    ),
    "sqlite": (
        f"INSERT INTO usage_receipts ({', '.join(_COLUMNS)}) "
        f"SELECT COALESCE(MAX(receipt_id), 0) + 1, {_VALUES} FROM usage_receipts RETURNING receipt_id"
    ),
}


@functools.cache
def dbapi_sql(sql: str, dialect: str) -> str:
    """`:name` parameters as the DBAPI driver takes them: kept for sqlite3, `%(name)s` for psycopg."""
    return sql if dialect == "sqlite" else re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql)


def create_receipt_tables(engine: Engine) -> None:
    """The receipts, their counter (starting at 1), anchors and the anchoring lock row."""
    SQLModel.metadata.create_all(engine, tables=[_RECEIPTS, _SEQ, ReceiptAnchor.__table__])  # type: ignore[list-item]
    for name in (_SEQUENCE, _ANCHOR_LOCK):
        try:
            with Session(engine) as session:
                if session.get(ReceiptSequence, name) is None:
                    session.add(ReceiptSequence(name=name, next_id=1))
                    session.commit()
        except IntegrityError:  # another process made it first
            pass


def append_receipt(cursor: Any, dialect: str, fields: ReceiptFields) -> StoredReceipt:
    """Store a receipt with the next id, in one statement on `cursor` (in its connection's transaction, or on
    its own in autocommit). The id lock is held until that transaction ends, so ids commit in order."""
    digest = receipt_hash(fields)
    cursor.execute(dbapi_sql(_INSERT_SQL[dialect], dialect), {"receipt_hash": digest, **vars(fields)})
    return StoredReceipt(int(cursor.fetchone()[0]), digest)


def lock_anchoring(conn: Connection) -> None:
    """Take the anchoring lock row for the caller's transaction (one anchoring run at a time, across processes)."""
    conn.execute(update(_SEQ).where(_SEQ.c.name == _ANCHOR_LOCK).values(next_id=_SEQ.c.next_id))


def receipts_in_range(session: Session, first: int, last: int) -> list[UsageReceipt]:
    return list(
        session.exec(
            select(UsageReceipt)  # type: ignore[arg-type]
            .where(col(UsageReceipt.receipt_id) >= first, col(UsageReceipt.receipt_id) <= last)
            .order_by(col(UsageReceipt.receipt_id))
        ).scalars()
    )


_TREES: OrderedDict[tuple[str, int, int], tuple[list[int], MerkleTree]] = OrderedDict()
_TREES_LOCK = threading.Lock()
_TREES_KEPT = 16


def tree_for_range(session: Session, first: int, last: int) -> tuple[list[int], MerkleTree] | None:
    """The receipt ids in [first, last] and their tree (recent ranges cached: a range's receipts never change)."""
    key = (str(session.get_bind().engine.url), first, last)
    with _TREES_LOCK:
        cached = _TREES.get(key)
        if cached is not None:
            _TREES.move_to_end(key)
            return cached
    rows = session.exec(
        select(UsageReceipt.receipt_id, UsageReceipt.receipt_hash)  # type: ignore[call-overload]
        .where(col(UsageReceipt.receipt_id) >= first, col(UsageReceipt.receipt_id) <= last)
        .order_by(col(UsageReceipt.receipt_id))
    ).all()
    if not rows:
        return None
    built = ([int(r[0]) for r in rows], MerkleTree([leaf_hash(int(r[0]), r[1]) for r in rows]))
    with _TREES_LOCK:
        _TREES[key] = built
        while len(_TREES) > _TREES_KEPT:
            _TREES.popitem(last=False)
    return built
