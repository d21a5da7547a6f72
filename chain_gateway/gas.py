"""Gas limits of the worker's transactions: from the node, or from what calls of the same shape needed.

Sizing every transaction on the node costs more node time than accepting it (on anvil here, per call:
`eth_estimateGas` ~0.7 ms, `eth_createAccessList` ~0.2 ms, `eth_sendRawTransaction` ~0.27 ms). With
`cached` on, calls of one *shape* (target, selector, calldata length: the same function with arguments of
the same size) are sized on the node until `SETTLE_AFTER` estimates agree within `STABLE_SPREAD`; later
calls of that shape take the largest estimate seen, with the usual margin and headroom, and every
`REFRESH_EVERY`-th one is sized on the node again (it updates the shape). A shape whose cached limit ran
out of gas (`forget`) is sized on the node from then on.

Calls whose gas is bounded by their calldata alone (`registerDevices`: `device_calldata.register_devices_gas`)
are not sized on the node at all, cached or not: an estimate would make the node run each batch twice. They
count as cached limits (out of gas: signed again, sized on the node, and so is their shape from then on).

What changes for a call that would revert: a node estimate refuses it before a nonce is used (the row
fails with the decoded error); a cached limit lets it be mined, and the worker decodes the revert by
replaying it, so the row fails with the same decoded error one block later, its nonce and gas spent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from chain_gateway.device_calldata import register_devices_gas
from chain_gateway.rpc import RpcErrorAnswer

__all__ = ["GAS_HEADROOM", "GAS_MARGIN", "GasCall", "GasEstimator", "GasSizer", "ShapeKey"]

GasEstimator = Literal["estimate", "access_list"]
"""How the node sizes gas: "estimate" runs eth_estimateGas per transaction (a binary search: ~1,400/s on
anvil here); "access_list" takes `gasUsed` of one eth_createAccessList execution (~5,500/s). Both get
GAS_MARGIN and GAS_HEADROOM on top; 1.25 x covers the largest refund (EIP-3529 caps it at a fifth of the
gas used) and the headroom covers the 1/64 of gas each nested call keeps back."""

GAS_MARGIN = 1.25  # estimate x margin + headroom: state may change between estimate and inclusion
GAS_HEADROOM = 20_000  # gas
SETTLE_AFTER = 3  # node estimates of a shape before its limit is reused
STABLE_SPREAD = 1.1  # largest / smallest estimate of a shape that still counts as stable
REFRESH_EVERY = 256  # a settled shape is still sized on the node once per this many calls

ShapeKey = tuple[str, bytes, int]  # (target address, selector, calldata length)


@dataclass(frozen=True)
class GasCall:
    """A call to size: sender and target (checksum addresses) and calldata."""

    sender: str
    to: str
    data: bytes

    @property
    def shape(self) -> ShapeKey:
        return self.to, self.data[:4], len(self.data)


@dataclass
class _Shape:
    count: int = 0  # node estimates seen
    low: int = 0
    high: int = 0
    uses: int = 0  # calls sized from the cache
    node_only: bool = False  # a cached limit ran out of gas

    def record(self, gas: int) -> None:
        self.low = gas if self.count == 0 else min(self.low, gas)
        self.high = max(self.high, gas)
        self.count += 1

    @property
    def settled(self) -> bool:
        return not self.node_only and self.count >= SETTLE_AFTER and self.high <= self.low * STABLE_SPREAD


class GasSizer:
    """Gas limits for batches of calls; `batch` sends JSON-RPC calls in one request (or a few)."""

    def __init__(
        self,
        batch: Callable[[Sequence[tuple[str, Sequence[Any]]]], list[Any]],
        estimator: GasEstimator,
        cap: int,
        *,
        cached: bool = False,
    ) -> None:
        self._batch = batch
        self.estimator: GasEstimator = estimator
        self.cap = cap
        self.cached = cached
        self._shapes: dict[ShapeKey, _Shape] = {}

    def limit(self, estimate: int) -> int:
        """The gas limit for a node estimate: margin and headroom on top, at most the cap."""
        return min(int(estimate * GAS_MARGIN) + GAS_HEADROOM, self.cap)

    def size(self, calls: Sequence[GasCall]) -> list[tuple[int | RpcErrorAnswer, bool]]:
        """Per call (its gas limit or the node's error answer, whether the limit came from the cache).

        Of a shape not yet settled only the first few calls go to the node at first: if their estimates
        settle it, the rest of the batch takes the cached limit.
        """
        results: list[tuple[int | RpcErrorAnswer, bool] | None] = [None] * len(calls)
        ask: list[int] = []
        later: list[int] = []
        probes: dict[ShapeKey, int] = {}
        for i, call in enumerate(calls):
            bound = register_devices_gas(call.data)
            if bound is not None and not self._shapes.get(call.shape, _Shape()).node_only:
                results[i] = (min(bound, self.cap), True)
                continue
            if not self.cached:
                ask.append(i)
                continue
            shape = self._shapes.get(call.shape)
            if shape is not None and shape.settled:
                shape.uses += 1
                if shape.uses % REFRESH_EVERY:
                    results[i] = (self.limit(shape.high), True)
                else:
                    ask.append(i)
            elif shape is not None and shape.node_only:
                ask.append(i)
            elif probes.get(call.shape, 0) < SETTLE_AFTER:
                probes[call.shape] = probes.get(call.shape, 0) + 1
                ask.append(i)
            else:
                later.append(i)
        self._ask(calls, ask, results)
        if later:
            settled = [i for i in later if (shape := self._shapes.get(calls[i].shape)) and shape.settled]
            for i in settled:
                results[i] = (self.limit(self._shapes[calls[i].shape].high), True)
            self._ask(calls, [i for i in later if results[i] is None], results)
        return [r for r in results if r is not None]

    def _ask(
        self, calls: Sequence[GasCall], indexes: list[int], results: list[tuple[int | RpcErrorAnswer, bool] | None]
    ) -> None:
        """Size `calls[i]` for each i in `indexes` on the node, record the estimates, fill `results`."""
        for i, answer in zip(indexes, self._estimate([calls[i] for i in indexes]), strict=True):
            if isinstance(answer, RpcErrorAnswer):
                results[i] = (answer, False)
                continue
            if self.cached:
                self._shapes.setdefault(calls[i].shape, _Shape()).record(answer)
            results[i] = (self.limit(answer), False)

    def forget(self, shape: ShapeKey) -> None:
        """A cached limit of `shape` ran out of gas: size its calls on the node from now on."""
        self._shapes.setdefault(shape, _Shape()).node_only = True

    def _estimate(self, calls: Sequence[GasCall]) -> list[int | RpcErrorAnswer]:
        if not calls:
            return []
        params = [{"from": c.sender, "to": c.to, "data": "0x" + c.data.hex()} for c in calls]
        if self.estimator == "estimate":
            answers = self._batch([("eth_estimateGas", [p]) for p in params])
            return [a if isinstance(a, RpcErrorAnswer) else int(a, 16) for a in answers]
        results: list[int | RpcErrorAnswer] = []
        for answer in self._batch([("eth_createAccessList", [p, "latest"]) for p in params]):
            if isinstance(answer, dict) and answer.get("error"):  # geth reports a revert inside the result
                results.append(RpcErrorAnswer("eth_createAccessList", {"message": str(answer["error"]), "code": 3}))
            elif isinstance(answer, dict):
                results.append(int(answer["gasUsed"], 16))
            else:
                results.append(answer)
        return results
