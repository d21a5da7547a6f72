"""The demo consortium seeded once per test session and copied into each module's anvil node.

Seeding sends ~40 governed transactions through web3 (seconds of Python per node); `anvil_loadState` of the seeded
node's `anvil_dumpState` takes ~0.1 s and gives the same blocks, transactions, receipts, logs, accounts and
storage at the same head. What a copy lacks is the state of the seeded blocks below the head (anvil refuses
eth_call there), which no test reads.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from web3 import Web3

from chain_gateway.devnet import AnvilNode, SeededConsortium, seed_demo_consortium

__all__ = ["SeededChain", "seed_once"]


def _rpc(w3: Web3, method: str, params: list[Any]) -> Any:
    response = w3.provider.make_request(method, params)  # type: ignore[arg-type]
    if "error" in response:
        raise RuntimeError(f"{method} failed: {response['error']}")
    return response["result"]


@dataclass(frozen=True)
class SeededChain:
    """The seeded consortium and the state dump of the node it was seeded on."""

    consortium: SeededConsortium
    state: str  # anvil_dumpState's hex blob
    head: int

    def load_into(self, w3: Web3) -> SeededConsortium:
        """Give a fresh node (block 0) the seeded chain; a copy of the consortium the caller may change."""
        if w3.eth.block_number != 0:
            raise RuntimeError("the seeded chain loads only into a fresh node")
        if _rpc(w3, "anvil_loadState", [self.state]) is not True:
            raise RuntimeError("anvil_loadState refused the seeded state")
        if w3.eth.block_number != self.head:
            raise RuntimeError(f"loaded chain is at block {w3.eth.block_number}, seeded at {self.head}")
        return copy.deepcopy(self.consortium)


def seed_once() -> SeededChain:
    """Seed the demo consortium on a scratch node (default settings, like the fixtures' nodes) and dump it."""
    with AnvilNode() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        consortium = seed_demo_consortium(w3)
        return SeededChain(consortium, _rpc(w3, "anvil_dumpState", []), w3.eth.block_number)
