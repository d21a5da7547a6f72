"""Fetching from the chain: block ranges with eth_getLogs (adaptive size), block facts in batches, reorg probes.

One range is fetched "headers first": the hashes of the range's recent blocks (those within the finality
depth, which get stored) are read before the logs, the blocks that have logs after them, and everything is
checked to be one chain (parent links, log block hashes, link to the checkpoint). A reorg while fetching
therefore shows up as a mismatch (`ChainMovedError`, retryable) or, if the new blocks carry no logs, as stored
hashes that no longer match the chain, which the next reorg check rewinds. Older blocks are final by
assumption (`finality_depth`): for them only the blocks with logs and the range's last block are read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_utils import to_checksum_address

from chain_gateway.errors import GatewayRPCError
from chain_gateway.rpc import JsonRpcClient, RpcErrorAnswer
from indexer.abi import DecodedLog, EventDecoder
from indexer.errors import ChainMovedError
from indexer.store import BlockRef

__all__ = ["FetchedRange", "RangeSizer", "fetch_blocks", "fetch_range", "find_common_ancestor"]

HEADERS_PER_CALL = 200  # blocks without transactions per JSON-RPC batch
FULL_BLOCKS_PER_CALL = 20  # blocks with full transactions (large calldata) per JSON-RPC batch


@dataclass
class RangeSizer:
    """Adaptive eth_getLogs range: grows towards `target_logs` logs per call, halves when the node refuses.

    Invariant: 1 <= size <= max_range.
    """

    max_range: int
    target_logs: int = 10_000
    size: int = 0

    def __post_init__(self) -> None:
        if self.size <= 0:
            self.size = min(self.max_range, 100)

    def end_for(self, start: int, head: int) -> int:
        return min(head, start + self.size - 1)

    def record(self, blocks: int, logs: int) -> None:
        """Adjust to the log density just seen: at most doubling, at least halving."""
        if logs == 0:
            wanted = self.size * 2
        else:
            wanted = int(blocks * self.target_logs / logs)
        self.size = max(1, min(self.max_range, self.size * 2, max(self.size // 2, wanted)))

    def shrink(self) -> bool:
        """Halve after a refusal; False when the range is already one block."""
        if self.size <= 1:
            return False
        self.size = max(1, self.size // 2)
        return True


@dataclass
class FetchedRange:
    """Logs and block facts of blocks `start..end`, checked to belong to one chain."""

    start: int
    end: int
    logs: list[DecodedLog]
    recent: list[BlockRef]  # blocks >= keep_from, ascending: stored for reorg checks
    end_block: BlockRef
    block_times: dict[int, int] = field(default_factory=dict)
    senders: dict[str, str] = field(default_factory=dict)  # tx hash -> checksum sender


def _ref(block: dict[str, Any]) -> BlockRef:
    return BlockRef(int(block["number"], 16), block["hash"], block["parentHash"])


def fetch_blocks(rpc: JsonRpcClient, numbers: Sequence[int], *, full: bool = False) -> dict[int, dict[str, Any]]:
    """eth_getBlockByNumber for `numbers`, in JSON-RPC batches; a missing block means the chain moved."""
    per_call = FULL_BLOCKS_PER_CALL if full else HEADERS_PER_CALL
    blocks: dict[int, dict[str, Any]] = {}
    for i in range(0, len(numbers), per_call):
        chunk = numbers[i : i + per_call]
        answers = rpc.batch([("eth_getBlockByNumber", [hex(n), full]) for n in chunk])
        for number, answer in zip(chunk, answers, strict=True):
            if isinstance(answer, RpcErrorAnswer):
                raise answer
            if answer is None:
                raise ChainMovedError(f"block {number} is gone")
            blocks[number] = answer
    return blocks


def _get_logs(
    rpc: JsonRpcClient, addresses: Sequence[str], start: int, sizer: RangeSizer, head: int
) -> tuple[int, Any]:
    """eth_getLogs from `start`, halving the range while the node refuses it; returns (end, logs)."""
    while True:
        end = sizer.end_for(start, head)
        try:
            return end, rpc.get_logs(addresses, start, end)
        except GatewayRPCError as exc:
            # Too many results, response too large, timeouts: all may pass with fewer blocks.
            if end > start and sizer.shrink():
                continue
            raise exc


def fetch_range(
    rpc: JsonRpcClient,
    decoder: EventDecoder,
    start: int,
    head: int,
    sizer: RangeSizer,
    *,
    keep_from: int,
    checkpoint: BlockRef | None,
) -> FetchedRange:
    """Fetch, decode and cross-check the logs of `start..end` (end chosen by `sizer`, at most `head`).

    Raises ChainMovedError when the blocks, the logs and the checkpoint are not one chain.
    """
    planned_end = sizer.end_for(start, head)
    recent_numbers = list(range(max(start, keep_from), planned_end + 1))
    headers = fetch_blocks(rpc, recent_numbers) if recent_numbers else {}
    end, raw_logs = _get_logs(rpc, decoder.addresses, start, sizer, planned_end)
    sizer.record(end - start + 1, len(raw_logs))

    logs: list[DecodedLog] = []
    for raw in raw_logs:
        if raw.get("removed"):
            raise ChainMovedError(f"log {raw.get('transactionHash')} was removed")
        decoded = decoder.decode(raw)
        if decoded is not None:
            logs.append(decoded)
    with_logs = sorted({log.block_number for log in logs})
    wanted = with_logs if end in with_logs or end in headers else [*with_logs, end]
    blocks = fetch_blocks(rpc, wanted, full=True) if wanted else {}

    result = FetchedRange(start, end, logs, [], _ref(headers.get(end) or blocks[end]))
    for number in with_logs:
        block = blocks[number]
        result.block_times[number] = int(block["timestamp"], 16)
        for tx in block["transactions"]:
            result.senders[tx["hash"]] = to_checksum_address(tx["from"])
        if number in headers and headers[number]["hash"] != block["hash"]:
            raise ChainMovedError(f"block {number} changed while its range was fetched")
    for log in logs:
        if blocks[log.block_number]["hash"] != log.block_hash:
            raise ChainMovedError(f"log of block {log.block_number} is from another chain")
    previous = checkpoint if checkpoint is not None and checkpoint.number == start - 1 else None
    for number in range(max(start, keep_from), end + 1):
        ref = _ref(headers[number])
        if previous is not None and previous.number == number - 1 and ref.parent_hash != previous.hash:
            raise ChainMovedError(f"block {number} does not follow block {previous.number}")
        result.recent.append(ref)
        previous = ref
    if end in headers and end in blocks and headers[end]["hash"] != blocks[end]["hash"]:
        raise ChainMovedError(f"block {end} changed while its range was fetched")
    return result


def find_common_ancestor(rpc: JsonRpcClient, stored: Sequence[BlockRef]) -> BlockRef | None:
    """The newest stored block that is still on the chain (stored is newest first), or None."""
    answers = rpc.batch([("eth_getBlockByNumber", [hex(b.number), False]) for b in stored])
    for block, answer in zip(stored, answers, strict=True):
        if isinstance(answer, RpcErrorAnswer):
            raise answer
        if answer is not None and answer["hash"] == block.hash:
            return block
    return None
