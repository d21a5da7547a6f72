"""Built-in algorithms the zone may run, each pinned by the keccak256 of its own source.

An `Implementation` is what the algorithm center lists on-chain: a name, a version, the `code_hash` (keccak256 of
`source`: the UTF-8 text of the params model, the run function and every helper it calls, as `inspect.getsource`
gives them, joined in that order) and the declared `outputs` (JSON, what leaves the zone). The zone runs only code
whose hash the chain lists and the entry admits: `implementation_for(code_hash)`. Editing any of those sources
changes the hash, so a listed hash always names exactly the code that runs.

`run(dataset, params)` computes EXACT aggregates per group with the group sizes (a `RawResult`); nothing of it
leaves the zone before `registry_api.zone.disclosure.release` suppresses small groups and adds noise. Columns the
schema marks personal are refused as group keys (a group key is released in clear).

| algorithm | params | per group |
|---|---|---|
| grouped_count | group_by (0 to 3 columns) | count |
| sum | column, bounds, group_by | count, sum of values clamped to bounds |
| mean | column, bounds, group_by | count, mean of clamped values |
| histogram | column, bounds, bins | count per bin (bins from the bounds, not from the data) |
| top_k | column, k | count of the k most frequent values |
| quantile | column, bounds, alpha, steps, group_by | count, alpha-quantile among `steps + 1` candidates |

    impl = implementation_for(code_hash)
    params = impl.parse_params({"group_by": ["street"]})     # InvalidParams naming the field at fault
    raw = impl.run(dataset, params)                           # InvalidParams for a missing or personal column
"""

from __future__ import annotations

import inspect
import math
import textwrap
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import repeat
from typing import Any, cast

from eth_utils import keccak
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from registry_api.encoding import canonical_json
from registry_api.errors import field_path
from registry_api.zone.datasets import Dataset, Scalar
from registry_api.zone.errors import InvalidParams, UnknownAlgorithm

__all__ = [
    "BUILTIN_ALGORITHMS",
    "BoundedParams",
    "GroupedCountParams",
    "HistogramParams",
    "Implementation",
    "MeanParams",
    "QuantileParams",
    "RawGroup",
    "RawResult",
    "Statistic",
    "SumParams",
    "TopKParams",
    "canonical_source",
    "implementation_for",
]

MAX_GROUP_COLUMNS = 3
MAX_BINS = 200
MAX_TOP = 50
MAX_QUANTILE_STEPS = 1_000


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
    bounds: tuple[float, float] | None = None  # clamping bounds (sum, mean, quantile, histogram)
    alpha: float | None = None  # quantile's alpha
    candidates: tuple[float, ...] = ()  # quantile's candidate values (from the bounds, not from the data)
    top: int | None = None  # top_k: keep this many groups with the largest noisy counts


# ---------------------------------------------------------------- params


class _Params(BaseModel):
    """Params of an algorithm: unknown members are refused, numbers must be finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _distinct(columns: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(columns)) != len(columns):
        raise ValueError("group_by names a column twice")
    return columns


class _Grouped(_Params):
    """Params with group_by: 0 to 3 distinct columns whose values form the groups (none: one group)."""

    group_by: tuple[str, ...] = Field(default=(), max_length=MAX_GROUP_COLUMNS)

    _check_group_by = field_validator("group_by")(_distinct)


class GroupedCountParams(_Grouped):
    """grouped_count: rows per group of the group_by columns (none: one group, all rows)."""


class BoundedParams(_Params):
    """A numeric column and the bounds its values are clamped to (they fix the noise's sensitivity)."""

    column: str = Field(min_length=1, description="a numeric column")
    bounds: tuple[float, float] = Field(description="[lower, upper]: values are clamped into them")

    @field_validator("bounds")
    @classmethod
    def _ordered(cls, bounds: tuple[float, float]) -> tuple[float, float]:
        if not bounds[0] < bounds[1]:
            raise ValueError("bounds must be [lower, upper] with lower < upper")
        return bounds


class SumParams(BoundedParams, _Grouped):
    """sum: sum of a column's clamped values per group."""


class MeanParams(BoundedParams, _Grouped):
    """mean: mean of a column's clamped values per group."""


class HistogramParams(BoundedParams):
    """histogram: rows per equal-width bin between the bounds (values outside fall in the edge bins)."""

    bins: int = Field(default=10, ge=1, le=MAX_BINS)


class TopKParams(_Params):
    """top_k: the k most frequent values of a column, with their counts."""

    column: str = Field(min_length=1)
    k: int = Field(default=10, ge=1, le=MAX_TOP)


class QuantileParams(BoundedParams, _Grouped):
    """quantile: the alpha-quantile of a column per group, chosen among steps + 1 evenly spaced candidates."""

    alpha: float = Field(default=0.5, ge=0.0, le=1.0)
    steps: int = Field(default=100, ge=2, le=MAX_QUANTILE_STEPS)


# ---------------------------------------------------------------- helpers (hashed with the runs that call them)


def _column(dataset: Dataset, name: str, field: str) -> tuple[Scalar, ...]:
    if name not in dataset.data:
        raise InvalidParams(f"the dataset has no column {name!r} (it has {', '.join(dataset.columns)})", field=field)
    return dataset.column(name)


def _key_columns(dataset: Dataset, names: Sequence[str], field: str) -> list[tuple[Scalar, ...]]:
    columns = []
    for index, name in enumerate(names):
        at = f"{field}[{index}]" if field == "group_by" else field
        columns.append(_column(dataset, name, at))
        if name in dataset.personal:
            raise InvalidParams(f"column {name!r} is personal: it cannot be a group key", field=at)
    return columns


def _numbers(dataset: Dataset, name: str, field: str) -> Sequence[float | None]:
    cells = _column(dataset, name, field)
    for cell in cells:
        if cell is not None and (isinstance(cell, bool) or not isinstance(cell, int | float)):
            raise InvalidParams(f"column {name!r} is not numeric", field=field)
    return cast(Sequence[float | None], cells)


def _keys(columns: list[tuple[Scalar, ...]], length: int) -> Iterable[tuple[Scalar, ...]]:
    return zip(*columns, strict=True) if columns else repeat((), length)


def _order(key: tuple[Scalar, ...]) -> tuple[tuple[bool, Scalar], ...]:
    return tuple((isinstance(cell, str), cell) for cell in key)  # numbers before text, each in its own order


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(float(value), bounds[0]), bounds[1])


def _accumulate(
    dataset: Dataset, column: str, bounds: tuple[float, float], group_by: tuple[str, ...]
) -> tuple[dict[tuple[Scalar, ...], int], dict[tuple[Scalar, ...], float]]:
    values = _numbers(dataset, column, "column")
    sizes: dict[tuple[Scalar, ...], int] = {}
    totals: dict[tuple[Scalar, ...], float] = {}
    for key, value in zip(_keys(_key_columns(dataset, group_by, "group_by"), len(values)), values, strict=True):
        if value is None:  # a missing reading contributes nothing
            continue
        sizes[key] = sizes.get(key, 0) + 1
        totals[key] = totals.get(key, 0.0) + _clamp(value, bounds)
    return sizes, totals


# ---------------------------------------------------------------- runs


def grouped_count(dataset: Dataset, params: GroupedCountParams) -> RawResult:
    """Rows per group of the group_by columns."""
    columns = _key_columns(dataset, params.group_by, "group_by")
    counts = Counter(_keys(columns, len(dataset))) if columns else Counter({(): len(dataset)})  # even of no rows
    groups = tuple(
        RawGroup(key, size, float(size)) for key, size in sorted(counts.items(), key=lambda kv: _order(kv[0]))
    )
    return RawResult("grouped_count", Statistic.COUNT, params.group_by, groups)


def sum_(dataset: Dataset, params: SumParams) -> RawResult:
    """Sum of a column's clamped values per group."""
    sizes, totals = _accumulate(dataset, params.column, params.bounds, params.group_by)
    groups = tuple(RawGroup(key, sizes[key], totals[key], total=totals[key]) for key in sorted(sizes, key=_order))
    return RawResult("sum", Statistic.SUM, params.group_by, groups, bounds=params.bounds)


def mean(dataset: Dataset, params: MeanParams) -> RawResult:
    """Mean of a column's clamped values per group."""
    sizes, totals = _accumulate(dataset, params.column, params.bounds, params.group_by)
    groups = tuple(
        RawGroup(key, sizes[key], totals[key] / sizes[key], total=totals[key]) for key in sorted(sizes, key=_order)
    )
    return RawResult("mean", Statistic.MEAN, params.group_by, groups, bounds=params.bounds)


def histogram(dataset: Dataset, params: HistogramParams) -> RawResult:
    """Rows per equal-width bin; every bin is a group (its key is [lower edge, upper edge])."""
    values = _numbers(dataset, params.column, "column")
    lower, upper = params.bounds
    width = (upper - lower) / params.bins
    counts = [0] * params.bins
    for value in values:
        if value is not None:
            counts[min(int((_clamp(value, params.bounds) - lower) / width), params.bins - 1)] += 1
    edges = [lower + i * width for i in range(params.bins)] + [upper]
    groups = tuple(RawGroup((edges[i], edges[i + 1]), counts[i], float(counts[i])) for i in range(params.bins))
    return RawResult("histogram", Statistic.COUNT, ("bin_lower", "bin_upper"), groups, bounds=params.bounds)


def top_k(dataset: Dataset, params: TopKParams) -> RawResult:
    """Counts of every value of a column; the release keeps the k largest after noise."""
    (cells,) = _key_columns(dataset, (params.column,), "column")
    counts = Counter(cells)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], _order((kv[0],))))
    groups = tuple(RawGroup((value,), size, float(size)) for value, size in ranked)
    return RawResult("top_k", Statistic.COUNT, (params.column,), groups, top=params.k)


def quantile(dataset: Dataset, params: QuantileParams) -> RawResult:
    """The alpha-quantile of a column's clamped values per group (exact: the lower of the two middle ranks)."""
    values = _numbers(dataset, params.column, "column")
    members: dict[tuple[Scalar, ...], list[float]] = {}
    for key, value in zip(_keys(_key_columns(dataset, params.group_by, "group_by"), len(values)), values, strict=True):
        if value is not None:
            members.setdefault(key, []).append(_clamp(value, params.bounds))
    groups = []
    for key in sorted(members, key=_order):
        ordered = tuple(sorted(members[key]))
        exact = ordered[math.floor(params.alpha * (len(ordered) - 1))]
        groups.append(RawGroup(key, len(ordered), exact, values=ordered))
    lower, upper = params.bounds
    candidates = tuple(lower + (upper - lower) * i / params.steps for i in range(params.steps + 1))
    return RawResult(
        "quantile",
        Statistic.QUANTILE,
        params.group_by,
        tuple(groups),
        bounds=params.bounds,
        alpha=params.alpha,
        candidates=candidates,
    )


# ---------------------------------------------------------------- implementations


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
        return canonical_json(self.outputs)

    def parse_params(self, raw: Mapping[str, Any]) -> BaseModel:
        """Validate params against the model; InvalidParams names the first field at fault."""
        if not isinstance(raw, Mapping):
            raise InvalidParams(f"params of {self.name} must be an object", field=None)
        try:
            return self.params_model.model_validate(dict(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
            raise InvalidParams(f"{self.name}: {message}", field=field_path(first.get("loc", ()))) from exc

    def execute(self, dataset: Dataset, raw_params: Mapping[str, Any]) -> RawResult:
        """parse_params then run."""
        return self.run(dataset, self.parse_params(raw_params))


def canonical_source(*objects: Any) -> str:
    """The source text pinned by a code hash: each object's `inspect.getsource`, dedented, joined by a blank line."""
    return "\n\n".join(textwrap.dedent(inspect.getsource(obj)).strip() for obj in objects) + "\n"


def _implementation(
    run: Callable[[Dataset, Any], RawResult],
    params: type[BaseModel],
    uses: tuple[Any, ...],
    *,
    name: str,
    per_group: Mapping[str, str],
    keys: str,
    version: str = "1.0.0",
) -> Implementation:
    source = canonical_source(_Params, params, run, *uses)
    outputs = {
        "keys": keys,
        "per_group": dict(per_group),
        "suppressed_groups": "number of groups withheld (fewer than k rows, or a noisy count below k)",
        "rows": "never",
    }
    return Implementation(
        name=name,
        version=version,
        description=(run.__doc__ or name).strip(),
        params_model=params,
        outputs=outputs,
        source=source,
        code_hash="0x" + keccak(source.encode()).hex(),
        run=run,
    )


_GROUP_KEYS = "values of params.group_by"
_COUNT = "rows in the group, discrete-Laplace noise"
_IMPLEMENTATIONS = (
    _implementation(
        grouped_count,
        GroupedCountParams,
        (_Grouped, _distinct, _column, _key_columns, _keys, _order),
        name="grouped_count",
        keys=_GROUP_KEYS,
        per_group={"count": _COUNT},
    ),
    _implementation(
        sum_,
        SumParams,
        (BoundedParams, _Grouped, _distinct, _accumulate, _numbers, _column, _key_columns, _keys, _order, _clamp),
        name="sum",
        keys=_GROUP_KEYS,
        per_group={"count": _COUNT, "sum": "sum of values clamped to params.bounds, Laplace noise"},
    ),
    _implementation(
        mean,
        MeanParams,
        (BoundedParams, _Grouped, _distinct, _accumulate, _numbers, _column, _key_columns, _keys, _order, _clamp),
        name="mean",
        keys=_GROUP_KEYS,
        per_group={"count": _COUNT, "mean": "noisy sum over noisy count of clamped values, within params.bounds"},
    ),
    _implementation(
        histogram,
        HistogramParams,
        (BoundedParams, _numbers, _column, _clamp),
        name="histogram",
        keys="bin_lower, bin_upper: edges of params.bins equal bins between params.bounds",
        per_group={"count": _COUNT},
    ),
    _implementation(
        top_k,
        TopKParams,
        (_column, _key_columns, _order),
        name="top_k",
        keys="the params.k values of params.column with the largest noisy counts, largest first",
        per_group={"count": _COUNT},
    ),
    _implementation(
        quantile,
        QuantileParams,
        (BoundedParams, _Grouped, _distinct, _numbers, _column, _key_columns, _keys, _order, _clamp),
        name="quantile",
        keys=_GROUP_KEYS,
        per_group={
            "count": _COUNT,
            "quantile": "params.alpha-quantile among params.steps + 1 candidates in params.bounds (OpenDP)",
        },
    ),
)

BUILTIN_ALGORITHMS: dict[str, Implementation] = {impl.code_hash: impl for impl in _IMPLEMENTATIONS}


def implementation_for(code_hash: str) -> Implementation:
    """The built-in implementation with that code hash (any hex case, with or without 0x); UnknownAlgorithm else."""
    wanted = code_hash.lower() if code_hash.lower().startswith("0x") else "0x" + code_hash.lower()
    impl = BUILTIN_ALGORITHMS.get(wanted)
    if impl is None:
        raise UnknownAlgorithm(f"no built-in algorithm has code hash {code_hash}", field="code_hash")
    return impl
