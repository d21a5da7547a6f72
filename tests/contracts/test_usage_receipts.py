"""Behaviour of usage-receipt anchoring in SharingAgreements: batches of data-zone receipts by Merkle root.

The zone operator (BJ-EIB, org 1, the demo consortium's only RELAYER) anchors its receipts in numbered ranges
that start at 1 and follow each other without gap or overlap; anyone verifies a receipt against its batch's
root. The Merkle tree is built here independently of any production code, in OpenZeppelin's MerkleProof
convention: leaf = keccak256(keccak256(abi.encode(uint64 receiptId, bytes32 receiptHash))), inner node =
keccak256 of the two children in ascending order, an odd node is carried up unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from web3.types import TxReceipt

from chain_gateway.governance import role_id
from tests.contracts.support import ContractsChain, pass_proposal

RELAYER = role_id("RELAYER")
EIB, CMC = 1, 3
BATCH_FIELDS = ("merkleRoot", "firstReceipt", "lastReceipt", "relayerOrg", "anchoredAt")
ROOT = keccak(text="some root")  # for tests about ranges and roles, where the tree does not matter


# ---------------------------------------------------------------- Merkle tree (OpenZeppelin convention)


def receipt_hash(receipt_id: int, salt: str = "") -> bytes:
    """A stand-in for the hash of a receipt's canonical record (who, entry version, algorithm, result, epsilon)."""
    return keccak(text=f"receipt {receipt_id} {salt}")


def double_hashed_leaf(receipt_id: int, hash_: bytes) -> bytes:
    return keccak(keccak(abi_encode(["uint64", "bytes32"], [receipt_id, hash_])))


def single_hashed_leaf(receipt_id: int, hash_: bytes) -> bytes:
    return keccak(abi_encode(["uint64", "bytes32"], [receipt_id, hash_]))


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(min(a, b) + max(a, b))


@dataclass(frozen=True)
class ReceiptTree:
    """A Merkle tree over receipts `first`.. (one hash each), its layers from the leaves up to the root."""

    first: int
    hashes: tuple[bytes, ...]
    layers: tuple[tuple[bytes, ...], ...]

    @classmethod
    def build(
        cls, first: int, hashes: Sequence[bytes], leaf: Callable[[int, bytes], bytes] = double_hashed_leaf
    ) -> ReceiptTree:
        layers = [tuple(leaf(first + i, h) for i, h in enumerate(hashes))]
        while len(layers[-1]) > 1:
            below = layers[-1]
            layers.append(
                tuple(hash_pair(*below[i : i + 2]) if i + 1 < len(below) else below[i] for i in range(0, len(below), 2))
            )
        return cls(first, tuple(hashes), tuple(layers))

    @property
    def root(self) -> bytes:
        return self.layers[-1][0]

    @property
    def last(self) -> int:
        return self.first + len(self.hashes) - 1

    def ids(self) -> range:
        return range(self.first, self.last + 1)

    def hash_of(self, receipt_id: int) -> bytes:
        return self.hashes[receipt_id - self.first]

    def proof(self, receipt_id: int) -> list[bytes]:
        """The siblings on the way from the receipt's leaf to the root (none where a node was carried up)."""
        index, siblings = receipt_id - self.first, []
        for layer in self.layers[:-1]:
            if index ^ 1 < len(layer):
                siblings.append(layer[index ^ 1])
            index //= 2
        return siblings


def process_proof(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root `proof` leads to from `leaf`, as MerkleProof.processProof computes it."""
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node


def receipt_tree(first: int, count: int, salt: str = "") -> ReceiptTree:
    return ReceiptTree.build(first, [receipt_hash(first + i, salt) for i in range(count)])


# ---------------------------------------------------------------- chain helpers


def anchor(chain: ContractsChain, root: bytes, first: int, last: int, org: str = "BJ-EIB") -> TxReceipt:
    return chain.transact(chain.sharing.functions.anchorReceipts(root, first, last), chain.key(org))


def anchor_tree(chain: ContractsChain, tree: ReceiptTree, org: str = "BJ-EIB") -> int:
    """Anchor `tree` as `org`'s relayer; returns the batch id."""
    receipt = anchor(chain, tree.root, tree.first, tree.last, org)
    return int(chain.events(receipt, chain.sharing, "UsageReceiptsAnchored")[0]["batchId"])


def batch_of(chain: ContractsChain, batch_id: int) -> dict[str, object]:
    return dict(zip(BATCH_FIELDS, chain.sharing.functions.getReceiptBatch(batch_id).call(), strict=True))


def last_anchored(chain: ContractsChain, org_id: int) -> int:
    return int(chain.sharing.functions.lastAnchoredReceipt(org_id).call())


def verify(chain: ContractsChain, batch_id: int, receipt_id: int, hash_: bytes, proof: Sequence[bytes]) -> bool:
    return bool(chain.sharing.functions.verifyReceipt(batch_id, receipt_id, hash_, list(proof)).call())


def block_time(chain: ContractsChain, receipt: TxReceipt) -> int:
    return int(chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])


# ---------------------------------------------------------------- tests


class TestReceiptTreeHelper:
    """The test's own tree must be right before it can judge the contract."""

    @pytest.mark.parametrize("count", [1, 2, 3, 7])
    def test_every_proof_leads_to_the_root(self, count: int) -> None:
        tree = receipt_tree(1, count)
        for receipt_id in tree.ids():
            assert process_proof(double_hashed_leaf(receipt_id, tree.hash_of(receipt_id)), tree.proof(receipt_id)) == (
                tree.root
            )
        assert len(set(tree.layers[0])) == count

    def test_single_receipt_tree_is_its_leaf_with_an_empty_proof(self) -> None:
        tree = receipt_tree(5, 1)
        assert (tree.root, tree.proof(5)) == (double_hashed_leaf(5, receipt_hash(5)), [])


class TestAnchoring:
    def test_relayer_anchors_the_first_batch_from_receipt_1(self, net: ContractsChain) -> None:
        tree = receipt_tree(1, 3)
        fn = net.sharing.functions.anchorReceipts(tree.root, 1, 3)
        assert fn.call({"from": net.account("BJ-EIB")}) == 1  # the batch id it will get

        receipt = net.transact(fn, net.key("BJ-EIB"))

        assert net.events(receipt, net.sharing, "UsageReceiptsAnchored") == [
            {
                "batchId": 1,
                "relayerOrg": EIB,
                "merkleRoot": tree.root,
                "firstReceipt": 1,
                "lastReceipt": 3,
                "relayer": net.account("BJ-EIB"),
            }
        ]
        assert batch_of(net, 1) == {
            "merkleRoot": tree.root,
            "firstReceipt": 1,
            "lastReceipt": 3,
            "relayerOrg": EIB,
            "anchoredAt": block_time(net, receipt),
        }
        assert last_anchored(net, EIB) == 3

    def test_nothing_is_anchored_at_first(self, net: ContractsChain) -> None:
        assert [last_anchored(net, org) for org in (EIB, CMC, 99)] == [0, 0, 0]

    def test_consecutive_batches_continue_where_the_last_one_ended(self, net: ContractsChain) -> None:
        ranges = [(1, 3), (4, 4), (5, 11)]
        for batch_id, (first, last) in enumerate(ranges, start=1):
            tree = receipt_tree(first, last - first + 1)
            assert anchor_tree(net, tree) == batch_id
            assert last_anchored(net, EIB) == last
        assert [(batch_of(net, i)["firstReceipt"], batch_of(net, i)["lastReceipt"]) for i in (1, 2, 3)] == ranges

    @pytest.mark.parametrize(
        ("anchored", "first", "last"),
        [
            (0, 0, 0),  # receipt ids start at 1
            (0, 0, 3),
            (0, 2, 5),  # a gap before the first
            (0, 1, 0),  # last before first
            (3, 1, 3),  # the same range again
            (3, 3, 5),  # overlapping the last batch
            (3, 5, 6),  # leaving receipt 4 out
            (3, 4, 3),  # last before first
        ],
    )
    def test_range_that_does_not_start_at_the_next_unanchored_receipt_is_refused(
        self, net: ContractsChain, anchored: int, first: int, last: int
    ) -> None:
        if anchored:
            anchor(net, ROOT, 1, anchored)
        fn = net.sharing.functions.anchorReceipts(ROOT, first, last)
        net.assert_reverts(fn, net.key("BJ-EIB"), "SharingBadReceiptRange", first, last, anchored + 1)

    def test_zero_root_is_refused(self, net: ContractsChain) -> None:
        fn = net.sharing.functions.anchorReceipts(bytes(32), 1, 1)
        net.assert_reverts(fn, net.key("BJ-EIB"), "SharingZeroRoot")

    @pytest.mark.parametrize("who", ["BJ-PSB", "BJ-EIB approver"])
    def test_member_account_without_the_relayer_role_cannot_anchor(self, net: ContractsChain, who: str) -> None:
        key = net.seeded.orgs["BJ-EIB"].approvers[0][1] if who == "BJ-EIB approver" else net.key(who)
        fn = net.sharing.functions.anchorReceipts(ROOT, 1, 1)
        net.assert_reverts(fn, key, "ConsortiumMissingRole", net.address_of(key), RELAYER)

    def test_account_outside_the_consortium_cannot_anchor(self, net: ContractsChain) -> None:
        stranger = net.spare_key(0)
        fn = net.sharing.functions.anchorReceipts(ROOT, 1, 1)
        net.assert_reverts(fn, stranger, "ConsortiumUnknownAccount", net.address_of(stranger))

    def test_relayer_of_a_suspended_org_cannot_anchor(self, net: ContractsChain) -> None:
        pass_proposal(net, [("Consortium", "setMemberActive", ["BJ-EIB", False])], proposer="BJ-PSB", voter="BJ-CMC")
        fn = net.sharing.functions.anchorReceipts(ROOT, 1, 1)
        net.assert_reverts(fn, net.key("BJ-EIB"), "ConsortiumOrgInactive", EIB)

    def test_each_relayer_org_numbers_its_own_receipts(self, net: ContractsChain) -> None:
        pass_proposal(net, [("Consortium", "grantRole", [RELAYER, net.account("BJ-CMC")])])
        assert anchor_tree(net, receipt_tree(1, 5, "eib")) == 1
        cmc_tree = receipt_tree(1, 2, "cmc")
        assert anchor_tree(net, cmc_tree, "BJ-CMC") == 2  # batch ids are global, receipt ids per org

        assert batch_of(net, 2)["relayerOrg"] == CMC
        assert (last_anchored(net, EIB), last_anchored(net, CMC)) == (5, 2)
        fn = net.sharing.functions.anchorReceipts(ROOT, 6, 6)
        net.assert_reverts(fn, net.key("BJ-CMC"), "SharingBadReceiptRange", 6, 6, 3)
        assert verify(net, 2, 1, cmc_tree.hash_of(1), cmc_tree.proof(1))

    def test_unknown_batch_cannot_be_read_or_verified(self, net: ContractsChain) -> None:
        fns, sender = net.sharing.functions, net.key("BJ-EIB")
        anchor(net, ROOT, 1, 1)
        for batch_id in (0, 2):
            net.assert_reverts(fns.getReceiptBatch(batch_id), sender, "SharingUnknownBatch", batch_id)
            net.assert_reverts(fns.verifyReceipt(batch_id, 1, ROOT, []), sender, "SharingUnknownBatch", batch_id)


class TestReceiptProofs:
    @pytest.mark.parametrize("count", [1, 2, 3, 7])
    def test_every_receipt_of_a_batch_verifies_and_nothing_else_does(self, net: ContractsChain, count: int) -> None:
        tree = receipt_tree(1, count)
        other = receipt_tree(count + 1, 4)  # the next batch
        batch, other_batch = anchor_tree(net, tree), anchor_tree(net, other)

        for position, receipt_id in enumerate(tree.ids()):
            hash_, proof = tree.hash_of(receipt_id), tree.proof(receipt_id)
            assert verify(net, batch, receipt_id, hash_, proof), receipt_id
            assert not verify(net, batch, receipt_id, receipt_hash(receipt_id, "tampered"), proof)
            if count > 1:  # another id of the same batch, with this receipt's hash and proof
                neighbour = tree.first + (position + 1) % count
                assert not verify(net, batch, neighbour, hash_, proof)
            for outside in (tree.first - 1, tree.last + 1):
                assert not verify(net, batch, outside, hash_, proof)
            # This receipt under the other batch's root, and this batch's root with the other batch's proof.
            assert not verify(net, other_batch, receipt_id, hash_, proof)
            other_id = other.first + position % len(other.hashes)
            assert not verify(net, batch, receipt_id, hash_, other.proof(other_id))

        for receipt_id in other.ids():  # the other batch is intact
            assert verify(net, other_batch, receipt_id, other.hash_of(receipt_id), other.proof(receipt_id))

    def test_valid_proof_of_a_receipt_outside_the_anchored_range_is_refused(self, net: ContractsChain) -> None:
        """A relayer that put receipt 4 in the tree but anchored 1..3 has not anchored receipt 4."""
        tree = receipt_tree(1, 4)
        anchor(net, tree.root, 1, 3)
        leaf = double_hashed_leaf(4, tree.hash_of(4))
        assert process_proof(leaf, tree.proof(4)) == tree.root  # the proof itself is sound
        assert not verify(net, 1, 4, tree.hash_of(4), tree.proof(4))
        assert verify(net, 1, 3, tree.hash_of(3), tree.proof(3))

    def test_leaves_are_double_hashed(self, net: ContractsChain) -> None:
        """A tree of single-hashed leaves (a common mistake) proves nothing, so a zone made that way is caught."""
        hashes = [receipt_hash(i) for i in (1, 2, 3)]
        single = ReceiptTree.build(1, hashes, leaf=single_hashed_leaf)
        batch = anchor_tree(net, single)
        for receipt_id in single.ids():
            assert not verify(net, batch, receipt_id, single.hash_of(receipt_id), single.proof(receipt_id))
