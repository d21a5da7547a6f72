"""Consortium governance from Python: a batch of governed calls as one proposal, voted to its threshold.

Used by deployment, the demo consortium and tests; admins on a real network vote with their own keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_account import Account
from web3 import Web3
from web3.contract import Contract

from chain_gateway.deployments import Deployment, send_transaction

__all__ = ["ROLE_NAMES", "GovernedCall", "contract", "govern", "role_id"]

ROLE_NAMES = ("ADMIN", "REGISTRAR", "REVIEWER", "APPROVER", "AUDITOR", "RELAYER")

GovernedCall = tuple[str, str, Sequence[Any]]  # (contract name, function name, args)


def role_id(name: str) -> bytes:
    """The AccessControl role id of a role name (keccak256 of the name, as the contracts define it)."""
    return Web3.keccak(text=name)


def contract(w3: Web3, deployment: Deployment, name: str) -> Contract:
    info = deployment["contracts"][name]
    return w3.eth.contract(address=info["address"], abi=info["abi"])


def govern(
    w3: Web3, deployment: Deployment, admin_keys: Sequence[str], calls: Sequence[GovernedCall], description: str
) -> int:
    """Propose `calls` as one proposal with the first admin key and vote with the next ones until it executes.

    Calls on the Consortium itself are bundled with `multicall`; a call on another contract must be alone.
    Returns the proposal id.
    """
    consortium = contract(w3, deployment, "Consortium")
    targets = {name for name, _, _ in calls}
    if targets == {"Consortium"}:
        encoded = [consortium.encode_abi(fn, args=list(args)) for _, fn, args in calls]
        target = consortium.address
        data = consortium.encode_abi("multicall", args=[encoded])
    elif len(calls) == 1:
        name, fn, args = calls[0]
        other = contract(w3, deployment, name)
        target = other.address
        data = other.encode_abi(fn, args=list(args))
    else:
        raise ValueError("a proposal bundles calls on the Consortium only; send other contracts' calls one by one")
    proposal_id = int(consortium.functions.proposalCount().call())
    proposer = Account.from_key(admin_keys[0]).address
    tx = consortium.functions.propose(target, data, description).build_transaction({"from": proposer})
    send_transaction(w3, admin_keys[0], tx)
    for key in admin_keys[1:]:
        if consortium.functions.getProposal(proposal_id).call()[1]:  # executed
            break
        voter = Account.from_key(key).address
        send_transaction(w3, key, consortium.functions.vote(proposal_id).build_transaction({"from": voter}))
    if not consortium.functions.getProposal(proposal_id).call()[1]:
        raise RuntimeError(f"proposal {proposal_id} did not reach the threshold with {len(admin_keys)} admin keys")
    return proposal_id
