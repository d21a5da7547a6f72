"""The chain as a record audit reads it: one contract's logs by topic over the audited range, the blocks and senders
of those logs, and storage at the audited block, all over plain JSON-RPC.

The audited range is the deployment's first block to the mirror's checkpoint, so the trail and the mirror describe
the same chain prefix. eth_getLogs is asked for the whole range first; nodes that cap ranges or results answer
with an error, and the range is then halved until each part passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_utils import to_checksum_address

from chain_gateway.deployments import Deployment
from chain_gateway.errors import GatewayRPCError
from chain_gateway.rpc import JsonRpcClient, RpcErrorAnswer
from indexer.abi import EventDecoder, RawLog
from indexer.sync import fetch_blocks
from registry_api.audit.proof_layout import StorageLayout

__all__ = ["AuditedChain", "BlockFacts"]

TX_PER_BATCH = 200  # eth_getTransactionByHash calls per JSON-RPC batch


@dataclass(frozen=True)
class BlockFacts:
    """Hashes, times and transaction senders of the blocks a trail touches."""

    hashes: dict[int, str] = field(default_factory=dict)
    times: dict[int, int] = field(default_factory=dict)
    senders: dict[str, str] = field(default_factory=dict)  # tx hash -> checksum `from`


class AuditedChain:
    """Reads of the chain up to and at `block_number` (the mirror's checkpoint): implements `trail_kinds.ChainView`."""

    def __init__(
        self,
        rpc: JsonRpcClient,
        deployment: Deployment,
        layouts: Mapping[str, StorageLayout],
        block_number: int,
    ) -> None:
        self.rpc = rpc
        self.deployment = deployment
        self.layouts = layouts
        self.block_number = block_number
        self.decoder = EventDecoder(deployment)

    def address(self, contract: str) -> str:
        return to_checksum_address(self.deployment["contracts"][contract]["address"])

    def logs(self, contract: str, events: Sequence[str], *topics: str | list[str] | None) -> list[RawLog]:
        """The logs of `contract`'s `events` whose topics 1.. match `topics` (None: any), in the audited range."""
        topic0 = [self.decoder.by_key[f"{contract}:{name}"].topic0 for name in events]
        query = {"address": self.address(contract), "topics": [topic0, *topics]}
        return self._logs(query, self.deployment["deploy_block"], self.block_number)

    def _logs(self, query: dict[str, Any], start: int, end: int) -> list[RawLog]:
        try:
            found: list[RawLog] = self.rpc.call(
                "eth_getLogs", [{**query, "fromBlock": hex(start), "toBlock": hex(end)}]
            )
            return found
        except GatewayRPCError:
            if end <= start:
                raise
            middle = (start + end) // 2  # too many results or too wide a range for this node: halve
            return self._logs(query, start, middle) + self._logs(query, middle + 1, end)

    def storage_at(self, contract: str, slot: int) -> int:
        """The word in `slot` of `contract` at the audited block (read, not proven: proofs come after)."""
        word = self.rpc.call("eth_getStorageAt", [self.address(contract), hex(slot), hex(self.block_number)])
        return int(word, 16)

    def header(self) -> dict[str, Any]:
        """The audited block's header (hash, stateRoot, timestamp)."""
        return fetch_blocks(self.rpc, [self.block_number])[self.block_number]

    def facts(self, logs: Sequence[RawLog]) -> BlockFacts:
        """The hash and time of every block with a log in `logs`, and the sender of every transaction."""
        facts = BlockFacts()
        numbers = sorted({int(log["blockNumber"], 16) for log in logs})
        for number, block in fetch_blocks(self.rpc, numbers).items():
            facts.hashes[number] = block["hash"]
            facts.times[number] = int(block["timestamp"], 16)
        tx_hashes = sorted({log["transactionHash"] for log in logs})
        for i in range(0, len(tx_hashes), TX_PER_BATCH):
            chunk = tx_hashes[i : i + TX_PER_BATCH]
            for tx_hash, tx in zip(
                chunk, self.rpc.batch([("eth_getTransactionByHash", [h]) for h in chunk]), strict=True
            ):
                if isinstance(tx, RpcErrorAnswer):
                    raise tx
                if tx is not None:
                    facts.senders[tx_hash] = to_checksum_address(tx["from"])
        return facts
