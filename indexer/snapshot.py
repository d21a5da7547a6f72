"""Dump the mirror tables to sorted, comparable lists: "the SQL equals a fresh replay" as one `==`.

Surrogate ids (`id` of the history tables: device events, inspections, catalog versions, sharing decisions,
algorithm evaluations) are left out because they depend on insertion history, not on the chain; every other
column is kept. The tables are those of `indexer.store` (projection and history), so a new mirror table is
compared as soon as the store knows it.
Indexer bookkeeping (checkpoint, block hashes, undo journal) depends on when the head was seen and is not
part of the mirror.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from indexer.store import APPEND_TABLES, PROJECTION_TABLES

__all__ = ["MIRROR_TABLES", "dump_mirror", "mirror_differences"]

MIRROR_TABLES: tuple[str, ...] = (*PROJECTION_TABLES, *APPEND_TABLES)
_SURROGATE = {"id"}


def dump_mirror(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every mirror table as a list of row tuples (columns in table order minus surrogate ids), sorted."""
    tables = {**PROJECTION_TABLES, **APPEND_TABLES}
    dump: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for name in MIRROR_TABLES:
            table = tables[name]
            columns = [c for c in table.columns if c.name not in _SURROGATE]
            rows = conn.execute(select(*columns)).all()
            dump[name] = sorted((tuple(r) for r in rows), key=_sort_key)
    return dump


def _sort_key(row: tuple[Any, ...]) -> tuple[tuple[int, Any], ...]:
    return tuple((0, "") if v is None else (1, v) if isinstance(v, int | float) else (2, str(v)) for v in row)


def mirror_differences(
    left: dict[str, list[tuple[Any, ...]]], right: dict[str, list[tuple[Any, ...]]], limit: int = 5
) -> dict[str, dict[str, list[tuple[Any, ...]]]]:
    """Rows only in `left` or only in `right`, per table (at most `limit` each): empty when equal."""
    out: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
    for name in sorted(set(left) | set(right)):
        a, b = set(left.get(name, [])), set(right.get(name, []))
        if a != b or len(left.get(name, [])) != len(right.get(name, [])):
            out[name] = {
                "only_left": sorted(a - b, key=_sort_key)[:limit],
                "only_right": sorted(b - a, key=_sort_key)[:limit],
            }
    return out
