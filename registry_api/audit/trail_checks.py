"""The checks of a record audit: each names what it compared, the expected (chain) and actual (mirror) values.

Convention: `expected` is what the chain says (its events, its proven storage, a hash it holds) and `actual` is
what the mirror says or what was recomputed from the mirror; a check is ok when they agree. Field checks list
every compared field, so a report shows what was verified as well as what was not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Check", "FieldCheck", "compare_rows", "fields_check", "same_value"]


def same_value(expected: Any, actual: Any) -> bool:
    """Equal, with 0x-hex compared case-insensitively (checksummed addresses, hashes) and a bool never equal to an
    int (True == 1 in Python, not across a boolean and an integer column)."""
    if isinstance(expected, str) and isinstance(actual, str) and expected.startswith("0x") and actual.startswith("0x"):
        return expected.lower() == actual.lower()
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    return bool(expected == actual)


@dataclass(frozen=True)
class FieldCheck:
    """One compared field (or row): the chain's value, the mirror's, and whether they agree."""

    field: str
    expected: Any
    actual: Any
    ok: bool


@dataclass(frozen=True)
class Check:
    """One check of a record audit."""

    name: str
    ok: bool
    message: str
    expected: Any = None
    actual: Any = None
    fields: list[FieldCheck] = field(default_factory=list)

    @property
    def failed_fields(self) -> list[str]:
        return [f.field for f in self.fields if not f.ok]


def fields_check(name: str, what: str, pairs: Iterable[tuple[str, Any, Any]]) -> Check:
    """A check over (field, expected, actual) triples: ok when every field agrees."""
    fields = [FieldCheck(f, e, a, same_value(e, a)) for f, e, a in pairs]
    bad = [f.field for f in fields if not f.ok]
    message = f"{what}: {len(fields)} fields agree" if not bad else f"{what}: {', '.join(bad)} differ"
    return Check(name, not bad, message, fields=fields)


def _row_key(row: Mapping[str, Any], key: Sequence[str]) -> str:
    return ",".join(f"{c}={row.get(c)}" for c in key)


def _columns(row: Mapping[str, Any] | None, columns: Sequence[str]) -> dict[str, Any] | None:
    return None if row is None else {c: row.get(c) for c in columns}


def compare_rows(
    name: str,
    what: str,
    chain: Mapping[str, Sequence[Mapping[str, Any]]],
    mirror: Mapping[str, Sequence[Mapping[str, Any]]],
    keys: Mapping[str, Sequence[str]],
    ignore: frozenset[str] = frozenset({"id"}),
) -> Check:
    """Rows of several tables, matched by `keys[table]`: one field per row that is missing, extra or differs.

    Rows that agree are counted in the message, not listed.
    """
    fields: list[FieldCheck] = []
    total = 0
    for table, key in keys.items():
        left = {_row_key(r, key): dict(r) for r in chain.get(table, [])}
        right = {_row_key(r, key): dict(r) for r in mirror.get(table, [])}
        for k in sorted(left.keys() | right.keys()):
            total += 1
            a, b = left.get(k), right.get(k)
            columns = sorted(((a or {}).keys() | (b or {}).keys()) - ignore)
            if a is not None and b is not None and all(same_value(a.get(c), b.get(c)) for c in columns):
                continue
            fields.append(FieldCheck(f"{table}[{k}]", _columns(a, columns), _columns(b, columns), False))
    if fields:
        return Check(name, False, f"{what}: {len(fields)} of {total} rows are missing, extra or differ", fields=fields)
    return Check(name, True, f"{what}: {total} rows agree")
