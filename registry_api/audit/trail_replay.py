"""One record's events replayed through the indexer's own handlers in memory: the record as the chain says it is.

The handlers are pure functions of the logs, the rows they read and the block facts (see `indexer.handlers`),
and a record's handlers read only rows the same record's earlier events wrote. So replaying just the record's
events, in chain order, into empty in-memory tables gives exactly the rows a faithful mirror holds for it,
without touching the mirror under audit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from indexer.abi import DecodedLog
from indexer.handlers import HANDLERS
from indexer.store import APPEND_TABLES, PROJECTION_TABLES

__all__ = ["ReplayedTables", "replay"]

Row = dict[str, Any]


def _pk(table_name: str) -> tuple[str, ...]:
    return tuple(c.name for c in PROJECTION_TABLES[table_name].primary_key.columns)


class ReplayedTables:
    """In-memory projection and history tables implementing `indexer.handlers.HandlerContext`."""

    def __init__(self, block_times: Mapping[int, int], senders: Mapping[str, str]) -> None:
        self.block_number = 0
        self._block_times = block_times
        self._senders = senders
        self.rows: dict[str, dict[tuple[Any, ...], Row]] = defaultdict(dict)
        self.history: dict[str, list[Row]] = defaultdict(list)

    def get(self, table_name: str, key: tuple[Any, ...]) -> Row | None:
        row = self.rows[table_name].get(key)
        return dict(row) if row is not None else None

    def put(self, table_name: str, row: Row) -> None:
        self.rows[table_name][tuple(row[c] for c in _pk(table_name))] = dict(row)

    insert = put

    def delete(self, table_name: str, key: tuple[Any, ...]) -> None:
        self.rows[table_name].pop(key, None)

    def append(self, table_name: str, row: Row) -> None:
        if table_name not in APPEND_TABLES:
            raise KeyError(f"{table_name} is not a history table")
        self.history[table_name].append(dict(row))

    def sender(self, tx_hash: str) -> str | None:
        return self._senders.get(tx_hash)

    def block_time(self, number: int) -> int:
        return self._block_times[number]

    def table(self, table_name: str) -> list[Row]:
        """Every row of a projection or history table, in key order (history: chain order)."""
        if table_name in APPEND_TABLES:
            return list(self.history.get(table_name, []))
        return [self.rows[table_name][k] for k in sorted(self.rows.get(table_name, {}), key=repr)]


def replay(logs: Iterable[DecodedLog], block_times: Mapping[int, int], senders: Mapping[str, str]) -> ReplayedTables:
    """Apply `logs` (one record's, in chain order) with the indexer's handlers; events without one are skipped."""
    tables = ReplayedTables(block_times, senders)
    for log in logs:
        handler = HANDLERS.get(log.key)
        if handler is None:
            continue
        tables.block_number = log.block_number
        handler(log, tables)
    return tables
