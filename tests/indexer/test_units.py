"""Small parts: error classification for the retry loops, and the adaptive range size."""

from __future__ import annotations

from chain_gateway.errors import GatewayRPCError
from chain_gateway.rpc import RpcErrorAnswer
from indexer.errors import ChainMovedError, HandlerError, LogDecodeError, ReorgTooDeepError, is_retryable
from indexer.sync import RangeSizer


def test_only_transient_errors_are_retryable() -> None:
    assert is_retryable(GatewayRPCError("timeout", retryable=True))
    assert is_retryable(ChainMovedError("block 5 changed"))
    assert not is_retryable(RpcErrorAnswer("eth_getLogs", {"message": "invalid params"}))
    assert not is_retryable(ReorgTooDeepError("too deep"))
    assert not is_retryable(LogDecodeError("bad data"))
    assert not is_retryable(HandlerError("unknown device"))
    assert not is_retryable(RuntimeError("bug"))


def test_range_grows_on_sparse_blocks_and_aims_at_the_target_on_dense_ones() -> None:
    sizer = RangeSizer(max_range=2_000, target_logs=10_000)
    assert sizer.end_for(10, 10_000) == 10 + sizer.size - 1
    sizer.record(sizer.size, 0)
    assert sizer.size == 200
    for _ in range(10):
        sizer.record(sizer.size, 0)
    assert sizer.size == 2_000
    sizer.record(2_000, 200_000)  # 100 logs per block: halve at most per step
    assert sizer.size == 1_000
    sizer.record(1_000, 100_000)
    assert sizer.size == 500
    sizer.record(500, 50_000)
    assert sizer.size == 250
    sizer.record(250, 25_000)
    assert sizer.size == 125
    sizer.record(125, 12_500)
    assert sizer.size == 100  # the target: 10,000 logs
    assert sizer.end_for(5, 50) == 50


def test_range_halves_on_refusals_down_to_one_block() -> None:
    sizer = RangeSizer(max_range=8, size=8)
    sizes = []
    while sizer.shrink():
        sizes.append(sizer.size)
    assert sizes == [4, 2, 1]
    assert sizer.size == 1
