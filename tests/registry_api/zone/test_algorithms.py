"""Built-in algorithms: exact aggregates equal a straightforward recomputation; code hashes pin the source."""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from types import MappingProxyType
from typing import Any

import pytest
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from registry_api.zone.algorithms import BUILTIN_ALGORITHMS, Implementation, Statistic, implementation_for
from registry_api.zone.datasets import Dataset, dataset_for
from registry_api.zone.errors import InvalidParams, UnknownAlgorithm

BY_NAME = {impl.name: impl for impl in BUILTIN_ALGORITHMS.values()}
ROWS = st.lists(
    st.tuples(
        st.sampled_from(["东城", "西城", "朝阳"]),
        st.integers(0, 3),
        st.one_of(st.none(), st.integers(-20, 120)),
        st.text(min_size=1, max_size=3),
    ),
    max_size=60,
)
GROUP_BY = st.lists(st.sampled_from(["a", "b"]), unique=True, max_size=2)


def _dataset(rows: list[tuple[Any, ...]]) -> Dataset:
    columns = ("a", "b", "v", "p")
    data = MappingProxyType({c: tuple(r[i] for r in rows) for i, c in enumerate(columns)})
    return Dataset("t", columns, data, personal=frozenset({"p"}))


def _by_key(rows: list[tuple[Any, ...]], group_by: list[str]) -> dict[tuple[Any, ...], list[tuple[Any, ...]]]:
    index = {"a": 0, "b": 1}
    groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[index[c]] for c in group_by), []).append(row)
    return groups


def _clamped(rows: list[tuple[Any, ...]], lower: float, upper: float) -> list[float]:
    return [min(max(float(r[2]), lower), upper) for r in rows if r[2] is not None]


@settings(max_examples=60, deadline=None)
@given(rows=ROWS, group_by=GROUP_BY)
def test_grouped_count_counts_the_rows_of_each_group(rows: list[tuple[Any, ...]], group_by: list[str]) -> None:
    raw = BY_NAME["grouped_count"].execute(_dataset(rows), {"group_by": group_by})
    expected = {key: len(members) for key, members in _by_key(rows, group_by).items()}
    if not group_by:
        expected = {(): len(rows)}
    assert {g.key: g.size for g in raw.groups} == expected
    assert all(g.value == g.size for g in raw.groups) and raw.statistic is Statistic.COUNT
    assert raw.group_by == tuple(group_by)


@settings(max_examples=60, deadline=None)
@given(rows=ROWS, group_by=GROUP_BY, lower=st.integers(-50, 40), width=st.integers(1, 100))
def test_sum_and_mean_clamp_each_value_into_the_bounds(
    rows: list[tuple[Any, ...]], group_by: list[str], lower: int, width: int
) -> None:
    bounds = [lower, lower + width]
    params = {"column": "v", "bounds": bounds, "group_by": group_by}
    sums = {g.key: g for g in BY_NAME["sum"].execute(_dataset(rows), params).groups}
    means = {g.key: g for g in BY_NAME["mean"].execute(_dataset(rows), params).groups}
    expected = {k: _clamped(m, *bounds) for k, m in _by_key(rows, group_by).items()}
    expected = {k: v for k, v in expected.items() if v}  # groups whose values are all missing have no rows
    assert set(sums) == set(means) == set(expected)
    for key, values in expected.items():
        assert sums[key].size == means[key].size == len(values)
        assert math.isclose(sums[key].value, math.fsum(values), abs_tol=1e-9)
        assert math.isclose(means[key].value, statistics.fmean(values), abs_tol=1e-9)
        assert means[key].total is not None and math.isclose(means[key].total, math.fsum(values), abs_tol=1e-9)


@settings(max_examples=60, deadline=None)
@given(rows=ROWS, bins=st.sampled_from([1, 2, 4, 5, 10, 20, 25, 50]))
def test_histogram_puts_each_value_in_its_bin(rows: list[tuple[Any, ...]], bins: int) -> None:
    raw = BY_NAME["histogram"].execute(_dataset(rows), {"column": "v", "bounds": [0, 100], "bins": bins})
    assert raw.group_by == ("bin_lower", "bin_upper") and len(raw.groups) == bins
    values = _clamped(rows, 0, 100)
    for index, group in enumerate(raw.groups):
        lower, upper = group.key
        last = index == bins - 1
        assert group.size == sum(1 for v in values if lower <= v < upper or (last and v == upper))  # type: ignore[operator]
    assert raw.groups[0].key[0] == 0 and raw.groups[-1].key[1] == 100


@settings(max_examples=60, deadline=None)
@given(rows=ROWS, k=st.integers(1, 5))
def test_top_k_counts_every_value_and_keeps_k_for_the_release(rows: list[tuple[Any, ...]], k: int) -> None:
    raw = BY_NAME["top_k"].execute(_dataset(rows), {"column": "a", "k": k})
    assert {g.key[0]: g.size for g in raw.groups} == Counter(r[0] for r in rows)
    assert [g.size for g in raw.groups] == sorted((g.size for g in raw.groups), reverse=True)
    assert raw.top == k


@settings(max_examples=60, deadline=None)
@given(rows=ROWS, group_by=GROUP_BY, alpha=st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]))
def test_quantile_is_the_lower_rank_of_the_sorted_clamped_values(
    rows: list[tuple[Any, ...]], group_by: list[str], alpha: float
) -> None:
    params = {"column": "v", "bounds": [0, 100], "group_by": group_by, "alpha": alpha, "steps": 10}
    raw = BY_NAME["quantile"].execute(_dataset(rows), params)
    expected = {k: sorted(_clamped(m, 0, 100)) for k, m in _by_key(rows, group_by).items()}
    expected = {k: v for k, v in expected.items() if v}
    assert {g.key: g.value for g in raw.groups} == {k: v[math.floor(alpha * (len(v) - 1))] for k, v in expected.items()}
    assert raw.candidates == tuple(float(c) for c in range(0, 101, 10)) and raw.alpha == alpha


def test_algorithms_agree_with_a_recount_on_the_hotline_and_air_data() -> None:
    hotline, air = dataset_for("城市体征/热线诉求", 5), dataset_for("城市脉搏/环境空气质量", 2)
    assert hotline is not None and air is not None
    counts = BY_NAME["grouped_count"].execute(hotline, {"group_by": ["category", "street"]})
    pairs = zip(hotline.column("category"), hotline.column("street"), strict=True)
    assert {g.key: g.size for g in counts.groups} == Counter(pairs)
    means = BY_NAME["mean"].execute(air, {"column": "pm25", "bounds": [0, 500], "group_by": ["station_code"]})
    for group in means.groups:
        values = [float(r["pm25"]) for r in air.rows if r["station_code"] == group.key[0]]  # type: ignore[arg-type]
        assert group.size == len(values) and math.isclose(group.value, statistics.fmean(values))


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("grouped_count", {"group_by": ["caller_phone"]}, "group_by[0]"),
        ("grouped_count", {"group_by": ["category", "nope"]}, "group_by[1]"),
        ("grouped_count", {"group_by": ["category", "category"]}, "group_by"),
        ("grouped_count", {"group_by": ["category"], "limit": 3}, "limit"),
        ("top_k", {"column": "caller_name"}, "column"),
        ("top_k", {"column": "street", "k": 0}, "k"),
        ("mean", {"column": "street", "bounds": [0, 1]}, "column"),
        ("mean", {"column": "category", "bounds": [5, 1]}, "bounds"),
        ("sum", {"bounds": [0, 1]}, "column"),
        ("histogram", {"column": "category", "bounds": [0, "inf"]}, "bounds[1]"),
        ("quantile", {"column": "category", "bounds": [0, 1], "alpha": 2}, "alpha"),
    ],
)
def test_bad_params_name_the_field_at_fault(name: str, params: dict[str, Any], field: str) -> None:
    hotline = dataset_for("城市体征/热线诉求", 5)
    assert hotline is not None
    with pytest.raises(InvalidParams) as caught:
        BY_NAME[name].execute(hotline, params)
    assert caught.value.field == field and caught.value.code == "INVALID_PARAMS"


def test_code_hash_is_the_keccak_of_the_source_and_differs_per_algorithm() -> None:
    assert set(BY_NAME) == {"grouped_count", "sum", "mean", "histogram", "top_k", "quantile"}
    for code_hash, impl in BUILTIN_ALGORITHMS.items():
        assert code_hash == impl.code_hash == "0x" + keccak(impl.source.encode()).hex()
        assert f"def {impl.run.__name__}(" in impl.source and f"class {impl.params_model.__name__}(" in impl.source
        assert json.loads(impl.outputs_json) == impl.outputs and impl.outputs["rows"] == "never"
    assert len({impl.code_hash for impl in BY_NAME.values()}) == len(BY_NAME)


def test_implementation_for_accepts_any_hex_spelling_and_refuses_unknown_code() -> None:
    impl: Implementation = BY_NAME["mean"]
    assert implementation_for(impl.code_hash.upper().replace("0X", "0x")) is impl
    assert implementation_for(impl.code_hash[2:]) is impl
    with pytest.raises(UnknownAlgorithm) as caught:
        implementation_for("0x" + "ab" * 32)
    assert caught.value.code == "ALGORITHM_UNKNOWN" and caught.value.field == "code_hash"
