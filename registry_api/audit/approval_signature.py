"""A sharing decision's signature, checked as `SharingAgreements` checks it, from the call that carried it.

The call (`approve`, `refuse` or `revoke`) carries the fields the approver signed and the signature; the EIP-712
digest is rebuilt here from the domain (name, version, chain id, verifying contract) and the `Decision` struct
(requestId, decision, keccak256(reason), nonce, deadline), and the signer recovered under OpenZeppelin ECDSA's
rules (65 bytes, v 27 or 28, s in the lower half of the curve order), so a signature the contract would refuse
is reported, not recovered loosely. `signature_checks` compares the call with the event the contract logged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_keys import keys
from eth_keys.exceptions import BadSignature, ValidationError
from eth_typing import ChecksumAddress
from eth_utils import function_abi_to_4byte_selector, keccak, to_checksum_address

from chain_gateway.calldata import abi_type
from chain_gateway.eip712 import DOMAIN_NAME, DOMAIN_VERSION, Decision
from indexer.abi import DecodedLog
from registry_api.schemas.audit_approvals import DecisionName, ProvenanceCheck

__all__ = [
    "DECISION_EVENTS",
    "CallDecoder",
    "DecisionCall",
    "DecisionEvent",
    "SignatureFindings",
    "decision_digest",
    "recover_signer",
    "signature_checks",
]

DECISION_EVENTS: Mapping[str, DecisionName] = {
    "SharingAgreements:SharingApproved": "approve",
    "SharingAgreements:SharingRefused": "refuse",
    "SharingAgreements:SharingRevoked": "revoke",
}
_DECISIONS: Mapping[DecisionName, Decision] = {
    "approve": Decision.APPROVE,
    "refuse": Decision.REFUSE,
    "revoke": Decision.REVOKE,
}
_DOMAIN_TYPEHASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
_DECISION_TYPEHASH = keccak(
    text="Decision(uint256 requestId,uint8 decision,bytes32 reasonHash,uint256 nonce,uint256 deadline)"
)
_HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0  # secp256k1n / 2: OZ ECDSA's bound
SIGNATURE_BYTES = 65


@dataclass(frozen=True)
class DecisionEvent:
    """A decision as the contract logged it (SharingApproved, SharingRefused or SharingRevoked)."""

    event: str  # SharingApproved | SharingRefused | SharingRevoked
    decision: DecisionName
    request_id: int
    approver: ChecksumAddress
    owner_org_id: int
    nonce: int
    reason: str  # empty for approvals: they sign keccak256("")
    approvals: int | None  # the request's approvals after an approval; None for refusals and revocations
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int

    @property
    def position(self) -> tuple[int, int]:
        return self.block_number, self.log_index

    @classmethod
    def from_log(cls, log: DecodedLog) -> DecisionEvent:
        """The decision of a decoded SharingAgreements log; ValueError if it is not a decision event."""
        decision = DECISION_EVENTS.get(log.key)
        if decision is None:
            raise ValueError(f"{log.key} is not a sharing decision event")
        a = log.args
        return cls(
            event=log.key.split(":", 1)[1],
            decision=decision,
            request_id=int(a["requestId"]),
            approver=to_checksum_address(a["approver"]),
            owner_org_id=int(a["ownerOrg"]),
            nonce=int(a["nonce"]),
            reason=str(a.get("reason", "")),
            approvals=int(a["approvals"]) if "approvals" in a else None,
            block_number=log.block_number,
            block_hash=log.block_hash,
            tx_hash=log.tx_hash.lower(),
            log_index=log.log_index,
        )


@dataclass(frozen=True)
class DecisionCall:
    """A decision as the relayed call carries it: the fields the approver signed, and the signature."""

    function: DecisionName
    request_id: int
    reason: str
    approver: ChecksumAddress
    nonce: int
    deadline: int
    signature: bytes

    @property
    def decision(self) -> Decision:
        return _DECISIONS[self.function]


class CallDecoder:
    """Decodes calldata of SharingAgreements.approve / refuse / revoke (selectors and types from the ABI)."""

    def __init__(self, abi: Sequence[Mapping[str, Any]]) -> None:
        self._functions: dict[bytes, tuple[DecisionName, list[str], list[str]]] = {}
        for item in abi:
            name = next((d for d in _DECISIONS if d == item.get("name")), None)
            if item.get("type") == "function" and name is not None:
                inputs = item["inputs"]
                self._functions[function_abi_to_4byte_selector(dict(item))] = (
                    name,
                    [abi_type(i) for i in inputs],
                    [i["name"] for i in inputs],
                )

    def decode(self, data: bytes) -> DecisionCall | None:
        """The decision `data` calls, or None if it is not a well-formed approve/refuse/revoke call."""
        found = self._functions.get(data[:4])
        if found is None:
            return None
        name, types, names = found
        try:
            values = dict(zip(names, abi_decode(types, data[4:]), strict=True))
        except (DecodingError, ValueError, UnicodeDecodeError):
            return None
        return DecisionCall(
            function=name,
            request_id=int(values["requestId"]),
            reason=str(values.get("reason", "")),
            approver=to_checksum_address(values["approver"]),
            nonce=int(values["nonce"]),
            deadline=int(values["deadline"]),
            signature=bytes(values["signature"]),
        )


def decision_digest(chain_id: int, contract: str, call: DecisionCall) -> bytes:
    """keccak256("\\x19\\x01" . domainSeparator . hashStruct(Decision)), as SharingAgreements._digest builds it."""
    domain = keccak(
        _DOMAIN_TYPEHASH
        + keccak(text=DOMAIN_NAME)
        + keccak(text=DOMAIN_VERSION)
        + chain_id.to_bytes(32, "big")
        + bytes.fromhex(to_checksum_address(contract)[2:]).rjust(32, b"\0")
    )
    struct = keccak(
        _DECISION_TYPEHASH
        + call.request_id.to_bytes(32, "big")
        + int(call.decision).to_bytes(32, "big")
        + keccak(text=call.reason)
        + call.nonce.to_bytes(32, "big")
        + call.deadline.to_bytes(32, "big")
    )
    return keccak(b"\x19\x01" + domain + struct)


def recover_signer(digest: bytes, signature: bytes) -> tuple[ChecksumAddress | None, str]:
    """(signer, "") or (None, why not): recovery under OpenZeppelin ECDSA.tryRecover's rules."""
    if len(signature) != SIGNATURE_BYTES:
        return None, f"signature of {len(signature)} bytes, not {SIGNATURE_BYTES}"
    r, s, v = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]
    if s > _HALF_ORDER:
        return None, "s in the upper half of the curve order (a malleable signature the contract refuses)"
    if v not in (27, 28):
        return None, f"v is {v}, not 27 or 28"
    try:
        public_key = keys.Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(digest)
    except (BadSignature, ValidationError) as exc:
        return None, f"no public key recovers: {exc}"
    return to_checksum_address(public_key.to_checksum_address()), ""


@dataclass(frozen=True)
class SignatureFindings:
    """The digest rebuilt, the signer recovered (None if none) and the checks of the call against the event."""

    digest: bytes
    signer: ChecksumAddress | None
    checks: list[ProvenanceCheck]


def _check(name: str, expected: Any, actual: Any, detail: str = "") -> ProvenanceCheck:
    return ProvenanceCheck(name=name, ok=expected == actual, expected=expected, actual=actual, detail=detail)


def signature_checks(event: DecisionEvent, call: DecisionCall, chain_id: int, contract: str) -> SignatureFindings:
    """Check that `call` carries `event`'s decision and that its signature is the event's approver's.

    Checks: request_id, decision, approver, nonce, reason_hash (the signed fields are the logged ones), signature
    (well formed as the contract requires) and signer (recovered from the digest == the event's approver).
    Integers too large for JSON clients (uint256) are compared as decimal text.
    """
    digest = decision_digest(chain_id, contract, call)
    signer, problem = recover_signer(digest, call.signature)
    checks = [
        _check("request_id", str(event.request_id), str(call.request_id)),
        _check("decision", event.decision, call.function),
        _check("approver", event.approver, call.approver, "the approver the call names"),
        _check("nonce", str(event.nonce), str(call.nonce)),
        _check(
            "reason_hash",
            "0x" + keccak(text=event.reason).hex(),
            "0x" + keccak(text=call.reason).hex(),
            "keccak256 of the logged reason vs of the signed one",
        ),
        ProvenanceCheck(
            name="signature",
            ok=signer is not None,
            expected="65 bytes, v 27 or 28, low s, recoverable",
            actual="well formed" if signer is not None else problem,
        ),
        _check("signer", event.approver, signer, "the signer recovered from the EIP-712 digest of the signed fields"),
    ]
    return SignatureFindings(digest, signer, checks)
