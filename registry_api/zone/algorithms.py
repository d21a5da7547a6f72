"""Built-in algorithms the zone may run, each pinned by the keccak256 of its own source.

An `Implementation` is what the algorithm center lists on-chain: a name, a version, the `code_hash` (keccak256 of
`source`, the UTF-8 text of the params model, the run function and every helper it calls, as `inspect.getsource`
gives them) and the declared `outputs` (JSON, what leaves the zone). The zone runs only code whose hash the
chain lists and the entry admits: `implementation_for(code_hash)`.

`run(dataset, params)` computes EXACT aggregates per group with the group sizes (a `RawResult`); nothing of it
leaves the zone before `registry_api.zone.disclosure.release` suppresses small groups and adds noise.

    impl = implementation_for(code_hash)
    params = impl.parse_params({"group_by": ["street"]})     # InvalidParams naming the field at fault
    raw = impl.run(dataset, params)                           # InvalidParams for a missing or personal column
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from registry_api.zone.datasets import Dataset, Scalar

__all__ = [
    "BUILTIN_ALGORITHMS",
    "Implementation",
    "RawGroup",
    "RawResult",
    "Statistic",
    "implementation_for",
]


class Statistic(StrEnum):
    """What a RawResult's groups carry, which decides the noise the release adds."""

    COUNT = "count"  # rows per group (grouped_count, histogram, top_k)
    SUM = "sum"  # sum of clamped values per group
    MEAN = "mean"  # mean of clamped values per group
    QUANTILE = "quantile"  # alpha-quantile of clamped values per group


@dataclass(frozen=True)
class RawGroup:
    """One group's exact aggregate: its key (aligned with RawResult.group_by), size and statistic.

    `value` is the exact statistic (the size for counts); `total` the sum of clamped values (sum, mean);
    `values` the sorted clamped values (quantile only).
    """

    key: tuple[Scalar, ...]
    size: int
    value: float
    total: float | None = None
    values: tuple[float, ...] = ()


@dataclass(frozen=True)
class RawResult:
    """Exact aggregates of one run: never leaves the zone as such (see disclosure.release)."""

    algorithm: str
    statistic: Statistic
    group_by: tuple[str, ...]
    groups: tuple[RawGroup, ...]
    bounds: tuple[float, float] | None = None  # clamping bounds (sum, mean, quantile)
    alpha: float | None = None  # quantile's alpha
    candidates: tuple[float, ...] = ()  # quantile's candidate values (from the bounds, not from the data)
    top: int | None = None  # top_k: keep this many groups with the largest noisy counts


@dataclass(frozen=True)
class Implementation:
    """A built-in algorithm: name, version, pinned code hash, declared outputs, params model and run."""

    name: str
    version: str
    description: str
    params_model: type[BaseModel]
    outputs: Mapping[str, Any]
    source: str  # the canonical source whose keccak256 is code_hash
    code_hash: str  # "0x" + 64 hex
    run: Callable[[Dataset, Any], RawResult]

    @property
    def outputs_json(self) -> str:
        """The declared outputs as canonical JSON (what AlgorithmRegistry stores as `outputs`)."""
        raise NotImplementedError

    def parse_params(self, raw: Mapping[str, Any]) -> BaseModel:
        """Validate params against the model; InvalidParams names the first field at fault."""
        raise NotImplementedError

    def execute(self, dataset: Dataset, raw_params: Mapping[str, Any]) -> RawResult:
        """parse_params then run."""
        return self.run(dataset, self.parse_params(raw_params))


BUILTIN_ALGORITHMS: dict[str, Implementation] = {}  # code_hash -> implementation


def implementation_for(code_hash: str) -> Implementation:
    """The built-in implementation with that code hash (any hex case, with or without 0x); UnknownAlgorithm else."""
    raise NotImplementedError
