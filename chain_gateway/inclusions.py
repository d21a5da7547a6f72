"""Which transactions the chain included since the worker last looked, and which of them surely succeeded.

Receipts are what a node serves most slowly (anvil here: ~0.3 ms of CPU per receipt, more than accepting the
transaction; a block's transaction hashes cost ~0.003 ms per transaction, its logs ~0.015 ms per log). So
the worker reads each new block's transaction hashes once, and the logs of the new blocks: a transaction
that emitted a log did not revert (a revert discards its logs), so it is mined with status 1 without its
receipt. Only the worker's transactions in a new block without a log (a revert, or a call that emits
nothing) need their receipt.

`poll` also says when a rescan of submitted rows is due: all of them on the first call, after a gap of more
than `MAX_BLOCKS`, or when the new blocks do not extend the last one seen (a reorg); those broadcast more than
`STALE_SECONDS` ago every `RESCAN_SECONDS`, a safety net for rows another worker marked submitted after
their block was read here. (A resend refreshes a row's broadcast time, so the gateway also asks for the
receipt of each submitted row it is about to resend, and asks once more for a transaction of a new block
whose receipt was not to be had yet; it `reset`s the tracker when it could not record the blocks read.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from chain_gateway.rpc import RpcErrorAnswer

__all__ = ["MAX_BLOCKS", "RESCAN_SECONDS", "STALE_SECONDS", "InclusionTracker", "Inclusions"]

MAX_BLOCKS = 64  # more new blocks than this: rescan every submitted row instead
RESCAN_SECONDS = 10.0
STALE_SECONDS = 3.0  # a row broadcast this long ago without a receipt is looked up in the periodic rescan

Rescan = Literal["none", "stale", "all"]


@dataclass
class Inclusions:
    """Transactions in the new blocks: hash -> receipt fields known without the receipt (None: ask for it)."""

    mined: dict[str, dict[str, str] | None] = field(default_factory=dict)
    rescan: Rescan = "none"


class InclusionTracker:
    """Follows the chain head block by block; `batch` sends JSON-RPC calls in one request (or a few)."""

    def __init__(self, batch: Callable[[Sequence[tuple[str, Sequence[Any]]]], list[Any]]) -> None:
        self._batch = batch
        self._last: tuple[int, str] | None = None  # (number, hash) of the last block read
        self._rescan_at = 0.0  # time.monotonic() of the last rescan

    def reset(self) -> None:
        """Make the next `poll` ask for a rescan of every submitted row (the last one was cut short)."""
        self._last = None

    def poll(self) -> Inclusions:
        """The transactions of the blocks after the last call's head, and which rescan is due."""
        [head] = self._batch([("eth_getBlockByNumber", ["latest", False])])
        if head is None or isinstance(head, RpcErrorAnswer):
            raise head if isinstance(head, RpcErrorAnswer) else RpcErrorAnswer("eth_getBlockByNumber", {})
        number, last = int(head["number"], 16), self._last
        self._last = (number, head["hash"])
        if last is None or not last[0] <= number <= last[0] + MAX_BLOCKS:
            return self._rescan("all")
        periodic = time.monotonic() - self._rescan_at > RESCAN_SECONDS
        if (number, head["hash"]) == last:
            return self._rescan("stale") if periodic else Inclusions()
        between = self._batch([("eth_getBlockByNumber", [hex(n), False]) for n in range(last[0] + 1, number)])
        blocks = [*between, head]
        parent = last[1]
        for block in blocks:
            if not block or isinstance(block, RpcErrorAnswer) or block["parentHash"] != parent:
                return self._rescan("all")
            parent = block["hash"]
        mined = self._succeeded(blocks)
        if mined is None:
            return self._rescan("all")
        return Inclusions(mined, "none") if not periodic else self._rescan("stale", mined)

    def _succeeded(self, blocks: list[dict[str, Any]]) -> dict[str, dict[str, str] | None] | None:
        """Hash -> receipt fields of each transaction in `blocks` that logged; None if the logs are of another
        fork (a reorg while reading)."""
        mined: dict[str, dict[str, str] | None] = {h.lower(): None for b in blocks for h in b["transactions"]}
        if not mined:
            return mined
        hashes = {b["number"]: b["hash"] for b in blocks}
        span = {"fromBlock": blocks[0]["number"], "toBlock": blocks[-1]["number"]}
        [logs] = self._batch([("eth_getLogs", [span])])
        if isinstance(logs, RpcErrorAnswer):
            return mined  # receipts one by one
        for log in logs:
            if hashes.get(log["blockNumber"]) != log["blockHash"]:
                return None
            mined[log["transactionHash"].lower()] = {
                "status": "0x1",
                "blockNumber": log["blockNumber"],
                "blockHash": log["blockHash"],
            }
        return mined

    def _rescan(self, kind: Rescan, mined: dict[str, dict[str, str] | None] | None = None) -> Inclusions:
        self._rescan_at = time.monotonic()
        return Inclusions(mined or {}, kind)
