"""A report's time range: parsed from ISO 8601 text, then turned into the blocks whose times fall in it.

Times without an offset are Beijing time (the city's); a date alone means the whole day, so `from=2025-05-01`
and `to=2025-05-31` cover May. Block times never decrease along the chain, so the first and last block of the
range are found by searching the timestamps, several probes per JSON-RPC batch: about log16(blocks) round trips
instead of log2(blocks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from chain_gateway.rpc import JsonRpcClient
from indexer.sync import fetch_blocks
from registry_api.stats import CITY_TZ, StatsError

__all__ = ["ReportRangeError", "TimeWindow", "block_range", "parse_window"]

PROBES_PER_BATCH = 16  # blocks whose times one search round asks for in one JSON-RPC batch


class ReportRangeError(StatsError):
    """A range the report cannot be made for: a stable code, a message and the parameter at fault (the same shape
    as the assessment's period errors)."""


@dataclass(frozen=True)
class TimeWindow:
    """Unix seconds `start`..`end`, both included (block times are whole seconds)."""

    start: int
    end: int

    @property
    def start_time(self) -> datetime:
        return datetime.fromtimestamp(self.start, CITY_TZ)

    @property
    def end_time(self) -> datetime:
        return datetime.fromtimestamp(self.end, CITY_TZ)


def _parse(value: str) -> date | datetime:
    """A date alone (2025-05-01, 20250501, 2025-W18-1) or a datetime; ValueError otherwise."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        return datetime.fromisoformat(value)


def _instant(text: str, field: str, *, last: bool) -> int:
    """Unix seconds of `text`: a date's first second (or its last one when `last`), or a datetime rounded inwards."""
    try:
        parsed = _parse(text.strip())
        if not isinstance(parsed, datetime):  # the whole day
            day = parsed + timedelta(days=1) if last else parsed
            return int(datetime.combine(day, time(), CITY_TZ).timestamp()) - (1 if last else 0)
    except (ValueError, OverflowError) as exc:
        raise ReportRangeError(
            "BAD_DATETIME",
            f"{field} must be an ISO 8601 date or datetime (2025-05-01, 2025-05-01T08:30, 2025-05-01T00:30:00Z), "
            f"not {text!r}",
            field,
        ) from exc
    seconds = (parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=CITY_TZ)).timestamp()
    return math.floor(seconds) if last else math.ceil(seconds)


def parse_window(from_text: str, to_text: str) -> TimeWindow:
    """The window `from`..`to` (both included); ReportRangeError BAD_DATETIME or RANGE_REVERSED otherwise."""
    start = _instant(from_text, "from", last=False)
    end = _instant(to_text, "to", last=True)
    if start < 0:
        raise ReportRangeError("BAD_DATETIME", f"from ({from_text}) is before 1970", "from")
    if end < start:
        raise ReportRangeError("RANGE_REVERSED", f"to ({to_text}) is before from ({from_text})", "to")
    return TimeWindow(start, end)


class _BlockTimes:
    """Block timestamps asked of the node at most once each."""

    def __init__(self, rpc: JsonRpcClient) -> None:
        self._rpc = rpc
        self._times: dict[int, int] = {}

    def load(self, numbers: list[int]) -> None:
        missing = [n for n in numbers if n not in self._times]
        for number, block in fetch_blocks(self._rpc, missing).items():
            self._times[number] = int(block["timestamp"], 16)

    def __getitem__(self, number: int) -> int:
        return self._times[number]


def _first_block(times: _BlockTimes, low: int, high: int, reached: int) -> int:
    """The first block in low..high whose time is >= `reached`, or high + 1 if there is none.

    Invariant: every block before `low` is earlier than `reached`; every block after `high` reaches it.
    """
    while high - low + 1 > PROBES_PER_BATCH:
        step = (high - low + 1) / (PROBES_PER_BATCH + 1)
        probes = sorted({low + int(step * (i + 1)) for i in range(PROBES_PER_BATCH)})
        times.load(probes)
        below = [p for p in probes if times[p] < reached]
        above = [p for p in probes if times[p] >= reached]
        if below:
            low = below[-1] + 1
        if above:
            high = above[0] - 1
            if high < low:
                return low
    numbers = list(range(low, high + 1))
    times.load(numbers)
    return next((n for n in numbers if times[n] >= reached), high + 1)


def block_range(rpc: JsonRpcClient, window: TimeWindow, first: int, head: int) -> tuple[int, int] | None:
    """The first and last block in `first`..`head` whose times fall in `window`, or None if no block does."""
    if head < first:
        return None
    times = _BlockTimes(rpc)
    start = _first_block(times, first, head, window.start)
    after = _first_block(times, start, head, window.end + 1)  # the first block past the window
    if start > head or after <= start:
        return None
    return start, after - 1
