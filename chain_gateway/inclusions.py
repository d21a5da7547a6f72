"""Which transactions the chain included since the worker last looked: the receipts of each new block.

Looking up a receipt for every submitted row after each block costs the node one lookup per row in flight
(thousands per second under load). Instead the worker reads each new block once, with all its receipts
(`eth_getBlockReceipts`; where the node lacks it, the block's transaction hashes, and the worker asks
receipts for its rows among them). `new_receipts` returns None when that cannot be trusted and
every submitted row must be looked up: on the first call, after a gap of more than `MAX_BLOCKS`, when the
new blocks do not extend the last one seen (a reorg), and every `FULL_SCAN_SECONDS` as a safety net (rows
another worker marked submitted after their block was read here).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from chain_gateway.rpc import RpcErrorAnswer

__all__ = ["FULL_SCAN_SECONDS", "MAX_BLOCKS", "InclusionTracker"]

MAX_BLOCKS = 64  # more new blocks than this: look up every submitted row instead
FULL_SCAN_SECONDS = 10.0


class InclusionTracker:
    """Follows the chain head block by block; `batch` sends JSON-RPC calls in one request (or a few)."""

    def __init__(self, batch: Callable[[Sequence[tuple[str, Sequence[Any]]]], list[Any]]) -> None:
        self._batch = batch
        self._last: tuple[int, str] | None = None  # (number, hash) of the last block read
        self._full_at = 0.0  # time.monotonic() of the last full scan
        self._block_receipts = True  # the node serves eth_getBlockReceipts

    def reset(self) -> None:
        """Make the next `new_hashes` ask for a full scan (the last one was cut short)."""
        self._last = None

    def new_receipts(self) -> dict[str, Any | None] | None:
        """Transaction hash -> receipt (None: ask for it) in the blocks after the last call's head; None for
        a full scan."""
        [head] = self._batch([("eth_getBlockByNumber", ["latest", False])])
        if head is None or isinstance(head, RpcErrorAnswer):
            raise head if isinstance(head, RpcErrorAnswer) else RpcErrorAnswer("eth_getBlockByNumber", {})
        number, last = int(head["number"], 16), self._last
        self._last = (number, head["hash"])
        if last is None or time.monotonic() - self._full_at > FULL_SCAN_SECONDS:
            return self._full()
        if (number, head["hash"]) == last:
            return {}
        if not last[0] < number <= last[0] + MAX_BLOCKS:
            return self._full()
        between = self._batch([("eth_getBlockByNumber", [hex(n), False]) for n in range(last[0] + 1, number)])
        blocks = [*between, head]
        parent = last[1]
        for block in blocks:
            if not block or isinstance(block, RpcErrorAnswer) or block["parentHash"] != parent:
                return self._full()
            parent = block["hash"]
        found: dict[str, Any | None] = {h.lower(): None for block in blocks for h in block["transactions"]}
        if not found or not self._block_receipts:
            return found
        answers = self._batch([("eth_getBlockReceipts", [block["hash"]]) for block in blocks if block["transactions"]])
        for answer in answers:
            if isinstance(answer, RpcErrorAnswer) or not isinstance(answer, list):
                self._block_receipts = False  # not served here: receipts one by one from now on
                return dict.fromkeys(found)
            found.update((receipt["transactionHash"].lower(), receipt) for receipt in answer)
        return found

    def _full(self) -> None:
        self._full_at = time.monotonic()
        return None
