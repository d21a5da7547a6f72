"""The EIP-712 typed data of sharing decisions, exactly as `SharingAgreements` verifies them.

`decision_typed_data` returns the JSON that `eth_signTypedData_v4` takes (wallets, the browser console,
`dirchain approve`); `sign_typed_data` signs it locally with an approver's key. The gateway never signs
these: it only relays signatures made by the approvers themselves.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_typing import ChecksumAddress, HexStr
from eth_utils import keccak, to_checksum_address

__all__ = ["DOMAIN_NAME", "DOMAIN_VERSION", "Decision", "decision_typed_data", "recover_signer", "sign_typed_data"]

DOMAIN_NAME = "DirChainSharing"
DOMAIN_VERSION = "1"


class Decision(IntEnum):
    APPROVE = 1
    REFUSE = 2
    REVOKE = 3


def decision_typed_data(
    *,
    chain_id: int,
    contract: str,
    request_id: int,
    decision: Decision,
    reason: str,
    nonce: int,
    deadline: int,
) -> dict[str, Any]:
    """The typed data of one decision on a sharing request (JSON-ready: numbers as ints, hashes as hex)."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Decision": [
                {"name": "requestId", "type": "uint256"},
                {"name": "decision", "type": "uint8"},
                {"name": "reasonHash", "type": "bytes32"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "Decision",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(contract),
        },
        "message": {
            "requestId": request_id,
            "decision": int(decision),
            "reasonHash": "0x" + keccak(text=reason).hex(),
            "nonce": nonce,
            "deadline": deadline,
        },
    }


def sign_typed_data(private_key: str, typed_data: dict[str, Any]) -> HexStr:
    """Sign typed data as `eth_signTypedData_v4` would; returns the 65-byte signature as 0x hex."""
    signed = Account.sign_message(encode_typed_data(full_message=typed_data), private_key)
    return HexStr("0x" + bytes(signed.signature).hex())


def recover_signer(typed_data: dict[str, Any], signature: str) -> ChecksumAddress:
    """The account that signed `typed_data` (auditors recover every approval's signer this way)."""
    address: str = Account.recover_message(encode_typed_data(full_message=typed_data), signature=signature)
    return to_checksum_address(address)
