"""What the approval audit reads from the chain: logs over ranges the node may refuse, blocks and transactions
fetched once and in batches, and the calls a transaction made (the node's call tracer).

Plain JSON-RPC only (`chain_gateway.rpc.JsonRpcClient`); node errors surface as `GatewayRPCError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from eth_utils import to_checksum_address

from chain_gateway.errors import GatewayRPCError
from chain_gateway.rpc import JsonRpcClient, RpcErrorAnswer

__all__ = ["RPC_BATCH", "TOPICS_PER_FILTER", "ChainFacts", "fetch_logs", "traced_calls", "uint_topic"]

RPC_BATCH = 200  # calls per JSON-RPC batch
TOPICS_PER_FILTER = 100  # OR-ed topic values per eth_getLogs filter (nodes cap filter sizes)

Topics = Sequence[str | Sequence[str] | None]


def uint_topic(value: int) -> str:
    """The topic of an indexed uint argument."""
    return "0x" + value.to_bytes(32, "big").hex()


def fetch_logs(
    rpc: JsonRpcClient, address: str, topics: Topics, from_block: int, to_block: int
) -> list[dict[str, Any]]:
    """eth_getLogs of `address` over `from_block..to_block`, in chain order.

    Nodes refuse ranges with too many results or too many blocks (Besu, hosted nodes): a refused range is split
    in two and each half fetched, down to one block.
    """
    if from_block > to_block:
        return []
    query = {"address": address, "topics": list(topics), "fromBlock": hex(from_block), "toBlock": hex(to_block)}
    try:
        logs: list[dict[str, Any]] = rpc.call("eth_getLogs", [query])
    except RpcErrorAnswer:
        if from_block == to_block:
            raise
        middle = (from_block + to_block) // 2
        return fetch_logs(rpc, address, topics, from_block, middle) + fetch_logs(
            rpc, address, topics, middle + 1, to_block
        )
    return logs


def _batched(rpc: JsonRpcClient, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
    """Results of `calls`, RPC_BATCH per request; an error answer raises (the audit cannot go on without it)."""
    results: list[Any] = []
    for start in range(0, len(calls), RPC_BATCH):
        for answer in rpc.batch(calls[start : start + RPC_BATCH]):
            if isinstance(answer, RpcErrorAnswer):
                raise answer
            results.append(answer)
    return results


class ChainFacts:
    """Blocks (headers) and transactions read once per audit, in batches; unknown ones are None."""

    def __init__(self, rpc: JsonRpcClient) -> None:
        self.rpc = rpc
        self._blocks: dict[int, dict[str, Any] | None] = {}
        self._txs: dict[str, dict[str, Any] | None] = {}
        self._chain_id: int | None = None

    @property
    def chain_id(self) -> int:
        """The node's chain id: the one `block.chainid` gave the contract, so the one in the EIP-712 domain."""
        if self._chain_id is None:
            self._chain_id = self.rpc.chain_id()
        return self._chain_id

    def load(self, blocks: Iterable[int] = (), txs: Iterable[str] = ()) -> None:
        """Fetch the blocks and transactions not read yet."""
        numbers = sorted({n for n in blocks if n not in self._blocks})
        hashes = sorted({h.lower() for h in txs if h.lower() not in self._txs})
        calls: list[tuple[str, Sequence[Any]]] = [("eth_getBlockByNumber", [hex(n), False]) for n in numbers]
        calls += [("eth_getTransactionByHash", [h]) for h in hashes]
        answers = _batched(self.rpc, calls)
        for number, block in zip(numbers, answers[: len(numbers)], strict=True):
            self._blocks[number] = block
        for tx_hash, tx in zip(hashes, answers[len(numbers) :], strict=True):
            self._txs[tx_hash] = tx

    def block(self, number: int) -> dict[str, Any] | None:
        if number not in self._blocks:
            self.load(blocks=[number])
        return self._blocks[number]

    def block_time(self, number: int) -> int | None:
        block = self.block(number)
        return None if block is None else int(block["timestamp"], 16)

    def tx(self, tx_hash: str) -> dict[str, Any] | None:
        if tx_hash.lower() not in self._txs:
            self.load(txs=[tx_hash])
        return self._txs[tx_hash.lower()]

    def sender(self, tx_hash: str) -> str | None:
        tx = self.tx(tx_hash)
        return None if tx is None else to_checksum_address(tx["from"])


def _frames(frame: dict[str, Any]) -> Iterable[dict[str, Any]]:
    yield frame
    for child in frame.get("calls") or ():
        yield from _frames(child)


def traced_calls(rpc: JsonRpcClient, tx_hash: str, to: str) -> list[bytes] | None:
    """The inputs of the successful CALLs to `to` made inside transaction `tx_hash`, in call order.

    For decisions relayed through another contract (a multisig, a forwarder, a consortium proposal). Uses the
    geth-style `callTracer` of `debug_traceTransaction` (geth, anvil, Besu, Erigon); None if the node has no
    tracer or no longer has the state to replay the transaction.
    """
    try:
        root = rpc.call("debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}])
    except GatewayRPCError:
        return None
    if not isinstance(root, dict):
        return None
    target = to.lower()
    return [
        bytes.fromhex(str(f.get("input", "0x"))[2:])
        for f in _frames(root)
        if str(f.get("to", "")).lower() == target and f.get("type") == "CALL" and not f.get("error")
    ]
