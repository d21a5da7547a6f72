"""EIP-1186 proofs checked locally: an account against a block's state root, its storage against the account.

`eth_getProof(address, slots, block)` answers the Merkle-Patricia trie nodes from the block's `stateRoot` down
to the account (keyed keccak256(address)) and from the account's `storageHash` down to each slot (keyed
keccak256(slot)). Nothing in the answer is taken on trust: the account is read out of its proof with
`trie.HexaryTrie.get_from_proof` against the state root of the block header, and each slot value out of its
proof against the storage root of that proven account. A node that does not hash to what its parent references,
a proof that ends early or RLP that does not decode is a `ProofError`; `prove_storage` turns those into failed
results, so a bad proof is a finding, never a crash.

    ProofError (ValueError)   a proof does not verify (raised by the verifiers, recorded by `prove_storage`)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import rlp
from eth_utils import keccak, to_checksum_address
from trie import HexaryTrie
from trie.exceptions import BadTrieProof

from chain_gateway.rpc import JsonRpcClient, RpcErrorAnswer

__all__ = [
    "AccountState",
    "ProofError",
    "ProvenStorage",
    "SlotProof",
    "decode_proof_nodes",
    "prove_storage",
    "verify_account_proof",
    "verify_storage_proof",
]

EMPTY_TRIE_ROOT = keccak(rlp.encode(b""))  # storage root of an account without storage
EMPTY_CODE_HASH = keccak(b"")


class ProofError(ValueError):
    """A Merkle proof that does not verify against the root it must hang from."""


@dataclass(frozen=True)
class AccountState:
    """An account as its proof shows it under a state root."""

    nonce: int
    balance: int
    storage_hash: str  # 0x-hex, the root the storage proofs hang from
    code_hash: str  # 0x-hex


def _bytes(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text[2:] if hex_text.startswith(("0x", "0X")) else hex_text)


def decode_proof_nodes(proof: Sequence[str]) -> list[Any]:
    """The RLP-decoded trie nodes of a proof given as 0x-hex encodings (as eth_getProof answers them)."""
    try:
        return [rlp.decode(_bytes(node)) for node in proof]
    except (rlp.DecodingError, ValueError) as exc:
        raise ProofError(f"a proof node is not valid RLP: {exc}") from exc


def _proven_value(root: bytes, key: bytes, proof: Sequence[str]) -> bytes:
    nodes = decode_proof_nodes(proof)
    try:
        value: bytes = HexaryTrie.get_from_proof(root, key, nodes)
    except BadTrieProof as exc:
        raise ProofError(f"the proof does not lead from root 0x{root.hex()} to the key: {exc}") from exc
    except (rlp.DecodingError, ValueError, TypeError, IndexError, KeyError) as exc:  # malformed node shapes
        raise ProofError(f"the proof's nodes do not form a trie path: {exc}") from exc
    return value


def verify_account_proof(state_root: str, address: str, proof: Sequence[str]) -> AccountState:
    """The account `address` proven under `state_root`; raises ProofError if the proof does not verify.

    An absent account (a valid exclusion proof) is proven as nonce 0, balance 0, no storage and no code.
    """
    value = _proven_value(_bytes(state_root), keccak(_bytes(to_checksum_address(address))), proof)
    if value == b"":
        return AccountState(0, 0, "0x" + EMPTY_TRIE_ROOT.hex(), "0x" + EMPTY_CODE_HASH.hex())
    try:
        nonce, balance, storage_root, code_hash = rlp.decode(value)
    except (rlp.DecodingError, ValueError) as exc:
        raise ProofError(f"the proven account is not [nonce, balance, storageRoot, codeHash]: {exc}") from exc
    return AccountState(
        int.from_bytes(nonce, "big"), int.from_bytes(balance, "big"), "0x" + storage_root.hex(), "0x" + code_hash.hex()
    )


def verify_storage_proof(storage_hash: str, slot: int, proof: Sequence[str]) -> int:
    """The value of `slot` proven under the account's `storage_hash` (0 for an absent slot); raises ProofError."""
    value = _proven_value(_bytes(storage_hash), keccak(slot.to_bytes(32, "big")), proof)
    if value == b"":
        return 0
    try:
        word = rlp.decode(value)
    except (rlp.DecodingError, ValueError) as exc:
        raise ProofError(f"the proven storage value is not RLP: {exc}") from exc
    if not isinstance(word, bytes) or len(word) > 32:
        raise ProofError("the proven storage value is not a word of at most 32 bytes")
    return int.from_bytes(word, "big")


@dataclass(frozen=True)
class SlotProof:
    """One storage slot: the value the node claimed, the value proven (None when the proof failed) and why not."""

    slot: int
    claimed: int | None
    proven: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ProvenStorage:
    """The outcome of one eth_getProof call verified locally: the account and each slot."""

    address: str
    block_number: int
    state_root: str
    account: AccountState | None = None
    account_error: str | None = None
    slots: dict[int, SlotProof] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.account_error is None and all(p.ok for p in self.slots.values())

    def words(self) -> dict[int, int]:
        """slot -> proven value, for the slots whose proofs verified."""
        return {s: p.proven for s, p in self.slots.items() if p.proven is not None}


def _slot_proofs(account: AccountState, answer: dict[str, Any], slots: Sequence[int]) -> dict[int, SlotProof]:
    by_slot = {int(p["key"], 16): p for p in answer.get("storageProof", [])}
    out: dict[int, SlotProof] = {}
    for slot in slots:
        item = by_slot.get(slot)
        if item is None:
            out[slot] = SlotProof(slot, None, None, "the node answered no proof for this slot")
            continue
        claimed = int(item["value"], 16)
        try:
            proven = verify_storage_proof(account.storage_hash, slot, item["proof"])
        except ProofError as exc:
            out[slot] = SlotProof(slot, claimed, None, str(exc))
            continue
        error = None if proven == claimed else f"the node claimed {claimed:#x} but the proof shows {proven:#x}"
        out[slot] = SlotProof(slot, claimed, proven, error)
    return out


def prove_storage(
    rpc: JsonRpcClient, address: str, slots: Sequence[int], block_number: int, state_root: str
) -> ProvenStorage:
    """eth_getProof for `slots` of `address` at `block_number`, every node verified locally against `state_root`.

    `state_root` comes from the block header the caller read (not from the proof answer). Proof failures and a
    node's refusal to prove are recorded in the result; only transport errors (`GatewayRPCError`) are raised.
    """
    result = ProvenStorage(to_checksum_address(address), block_number, state_root)
    wanted = list(dict.fromkeys(slots))
    try:
        answer: dict[str, Any] = rpc.call(
            "eth_getProof", [result.address, ["0x" + s.to_bytes(32, "big").hex() for s in wanted], hex(block_number)]
        )
    except RpcErrorAnswer as exc:  # e.g. a node that pruned the block's state: nothing is proven, and that is a finding
        result.account_error = f"the node gave no proof: {exc.message}"
        result.slots = {s: SlotProof(s, None, None, "no proof") for s in wanted}
        return result
    try:
        account = verify_account_proof(state_root, result.address, answer.get("accountProof", []))
    except ProofError as exc:
        result.account_error = str(exc)
        result.slots = {s: SlotProof(s, None, None, "the account proof failed") for s in wanted}
        return result
    claimed_root = str(answer.get("storageHash", "")).lower()
    if claimed_root != account.storage_hash:
        result.account_error = (
            f"the node claimed storage root {claimed_root} but the proof shows {account.storage_hash}"
        )
    result.account = account
    result.slots = _slot_proofs(account, answer, wanted)
    return result
