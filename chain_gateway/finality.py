"""How many blocks on top make a write final enough to report `confirmed`, by consensus.

Clique (geth) has no finality: the heaviest chain wins. QBFT (Besu) blocks are final once sealed, so 0 or 1
confirmations suffice there (docs/network.md, docs/besu-qbft.md).
"""

from __future__ import annotations

from chain_gateway.errors import GatewayRPCError
from chain_gateway.rpc import JsonRpcClient

__all__ = ["clique_confirmations_advice", "safe_confirmations"]


def safe_confirmations(signers: int) -> int:
    """Blocks on top before a write counts as confirmed on Clique with `signers` signers.

    A signer may seal at most one of any floor(signers / 2) + 1 consecutive blocks, so a minority cut off from
    the rest can extend its own fork by at most floor(signers / 2) blocks before it stalls; a block with that
    many + 1 on top was built on by a majority, and only a heavier majority chain could replace it.
    """
    return signers // 2 + 1


def clique_confirmations_advice(rpc: JsonRpcClient, confirmations: int) -> int | None:
    """`safe_confirmations` for the node's Clique signer set when `confirmations` is below it, else None (also
    when the chain is not Clique, or the node does not expose the `clique` API)."""
    try:
        signers = rpc.call("clique_getSigners", ["latest"])
    except GatewayRPCError:  # no clique API (another consensus, or not exposed), or no node answered
        return None
    advised = safe_confirmations(len(signers))
    return advised if confirmations < advised else None
