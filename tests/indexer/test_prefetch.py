"""Ranges fetched ahead by a thread or a forked process: order, errors with their retry class, early stops."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from chain_gateway.errors import GatewayRPCError
from chain_gateway.rpc import RpcErrorAnswer
from indexer.abi import DecodedLog
from indexer.errors import ChainMovedError, is_retryable
from indexer.prefetch import Fetch, fetch_ahead_in_process, fetch_ahead_in_thread
from indexer.store import BlockRef
from indexer.sync import FetchedRange

FetchAhead = Callable[[Fetch, int, int, BlockRef | None, int], object]
WAYS = pytest.mark.parametrize("ahead", [fetch_ahead_in_thread, fetch_ahead_in_process], ids=["thread", "process"])


def _ranges_of(size: int, fail_at: int | None = None, error: BaseException | None = None) -> Fetch:
    """Ranges of `size` blocks with one log each, linked by hash; raises `error` for the range from `fail_at`."""

    def fetch(start: int, previous: BlockRef | None) -> FetchedRange:
        if fail_at is not None and start >= fail_at and error is not None:
            raise error
        end = start + size - 1
        parent = previous.hash if previous is not None else "0x00"
        log = DecodedLog("DeviceRegistry:DeviceRegistered", {"code": f"C-{start}", "pid": os.getpid()}, start,
                         f"0x{start:x}", f"0xt{start:x}", 0)  # fmt: skip
        return FetchedRange(start, end, [log], [], BlockRef(end, f"0x{end:x}", parent), {start: start * 12})

    return fetch


@WAYS
def test_ranges_arrive_in_chain_order_linked_to_the_one_before(ahead: FetchAhead) -> None:
    checkpoint = BlockRef(9, "0x9", "0x8")
    ranges = list(ahead(_ranges_of(3), 10, 30, checkpoint, 2))  # type: ignore[call-overload]
    assert [(r.start, r.end) for r in ranges] == [(10, 12), (13, 15), (16, 18), (19, 21), (22, 24), (25, 27), (28, 30)]
    assert ranges[0].end_block.parent_hash == "0x9"
    assert all(b.end_block.parent_hash == a.end_block.hash for a, b in zip(ranges, ranges[1:], strict=False))
    assert ranges[0].block_times == {10: 120}


def test_the_process_fetches_in_another_process() -> None:
    (fetched,) = fetch_ahead_in_process(_ranges_of(5), 1, 5, None, 2)
    assert fetched.logs[0].args["pid"] != os.getpid()


@WAYS
@pytest.mark.parametrize(
    "error",
    [
        ChainMovedError("block 20 changed while its range was fetched"),
        GatewayRPCError("eth_getLogs timed out", retryable=True, code=-32000),
        RpcErrorAnswer("eth_getLogs", {"message": "invalid params", "code": -32602}),  # does not survive pickling
        LookupError("a bug in the fetcher"),
    ],
    ids=["chain-moved", "rpc-retryable", "rpc-answer", "bug"],
)
def test_an_error_while_fetching_reaches_the_consumer_after_the_ranges_before_it(
    ahead: FetchAhead, error: BaseException
) -> None:
    seen: list[int] = []
    with pytest.raises(Exception) as raised:
        for fetched in ahead(_ranges_of(5, fail_at=20, error=error), 10, 40, None, 2):  # type: ignore[attr-defined]
            seen.append(fetched.start)
    assert seen == [10, 15]
    assert is_retryable(raised.value) == is_retryable(error)
    assert str(error) in str(raised.value)
    assert isinstance(raised.value, GatewayRPCError if isinstance(error, GatewayRPCError) else type(error))
    if isinstance(error, GatewayRPCError):
        assert isinstance(raised.value, GatewayRPCError)
        assert raised.value.code == error.code


@WAYS
def test_a_consumer_that_stops_early_stops_the_fetching_side(ahead: FetchAhead) -> None:
    before = _children()  # nodes that other modules' session fixtures started in this process (xdist worker)
    ranges = ahead(_ranges_of(1), 1, 10_000, None, 2)
    first = next(ranges)  # type: ignore[call-overload]
    ranges.close()  # type: ignore[attr-defined]
    assert first.start == 1
    assert all(not _is_fetcher(p) for p in _children() - before)


def _children() -> set[int]:
    return {int(p) for p in os.listdir("/proc") if p.isdigit() and _parent_of(int(p)) == os.getpid()}


def _parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _is_fetcher(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a live (not reaped) child
    except OSError:
        return False
