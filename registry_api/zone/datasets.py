"""Synthetic but realistic datasets kept where the zone runs, one per demo catalog entry, made from a seed.

The zone never fetches data: each demo entry's rows are generated here, deterministically (same classification
and entry id -> same rows, byte for byte, in any process), and cached. Columns are the field names of the demo
entry's schema (registry_api.demo.DEMO_CATALOG); `personal` names the fields the schema marks personal, which
the algorithms refuse as group keys. Datasets are columnar (one tuple per column) so the algorithms scan a
column with `zip` instead of building a dict per row; `rows` gives the dicts when masking needs them.

    dataset_for("城市体征/热线诉求", 5) -> Dataset(name="hotline-complaints#5", columns=(...), ...)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

__all__ = ["GENERATORS", "Dataset", "Scalar", "dataset_for", "generate"]

Scalar = str | int | float  # a cell: ISO-8601 text for times (Beijing time, +08:00), numbers, text


@dataclass(frozen=True)
class Dataset:
    """An immutable columnar table: `columns` in schema order, `data[column]` a tuple of cells per row."""

    name: str
    columns: tuple[str, ...]
    data: Mapping[str, tuple[Scalar, ...]]
    personal: frozenset[str] = field(default_factory=frozenset)  # columns the schema marks personal

    def __len__(self) -> int:
        return len(self.data[self.columns[0]]) if self.columns else 0

    def column(self, name: str) -> tuple[Scalar, ...]:
        """The cells of one column (KeyError for a column the dataset does not have)."""
        return self.data[name]

    @cached_property
    def rows(self) -> list[dict[str, Scalar]]:
        """The rows as dicts (built once); callers must not mutate them."""
        raise NotImplementedError

    def iter_rows(self) -> Iterator[dict[str, Scalar]]:
        """The rows as fresh dicts, one at a time (safe to mutate)."""
        raise NotImplementedError

    @cached_property
    def digest(self) -> str:
        """sha256 (hex) of the canonical JSON of name, columns and rows: equal digests, equal bytes."""
        raise NotImplementedError


Generator = Callable[[int | str], dict[str, list[Scalar]]]
GENERATORS: dict[str, Generator] = {}  # classification -> generator of columns from a seed


def generate(classification: str, seed: int | str) -> Dataset | None:
    """A fresh (uncached) dataset for a classification from any seed, or None if none is generated for it."""
    raise NotImplementedError


@lru_cache(maxsize=64)
def dataset_for(classification: str, entry_id: int) -> Dataset | None:
    """The zone's dataset of a catalog entry, picked by its classification and seeded by its id (cached).

    None when the zone keeps no data for that classification.
    """
    raise NotImplementedError
