"""Disclosure control: small groups never show, noise is present, centred and as large as epsilon says."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest

from registry_api.encoding import canonical_json
from registry_api.zone.algorithms import BUILTIN_ALGORITHMS, RawGroup, RawResult, Statistic
from registry_api.zone.datasets import dataset_for
from registry_api.zone.disclosure import release
from registry_api.zone.errors import InvalidRelease

BY_NAME = {impl.name: impl for impl in BUILTIN_ALGORITHMS.values()}
DRAWS = 4_000  # groups per statistical release: one release gives this many independent noise draws


def _counts(size: int, groups: int = DRAWS, top: int | None = None) -> RawResult:
    return RawResult(
        "grouped_count",
        Statistic.COUNT,
        ("g",),
        tuple(RawGroup((i,), size, float(size)) for i in range(groups)),
        top=top,
    )


def _sums(statistic: Statistic, size: int, total: float, bounds: tuple[float, float]) -> RawResult:
    value = total if statistic is Statistic.SUM else total / size
    groups = tuple(RawGroup((i,), size, value, total=total) for i in range(DRAWS))
    return RawResult(str(statistic), statistic, ("g",), groups, bounds=bounds)


def _hotline_counts(*group_by: str) -> RawResult:
    dataset = dataset_for("城市体征/热线诉求", 5)
    assert dataset is not None
    return BY_NAME["grouped_count"].execute(dataset, {"group_by": list(group_by)})


def _assert_centred(errors: list[float], scale: float, *, discrete: bool = False) -> None:
    """Laplace(scale) errors: mean within 5 standard errors of 0, variance within 15% (over 4 sd) of the law's.

    The law's variance is 2 scale² (continuous) or 2q / (1 - q)² with q = exp(-1 / scale) (discrete).
    """
    q = math.exp(-1 / scale)
    variance = 2 * q / (1 - q) ** 2 if discrete else 2 * scale**2
    assert abs(statistics.fmean(errors)) < 5 * math.sqrt(variance / len(errors))
    assert statistics.pvariance(errors) == pytest.approx(variance, rel=0.15)


def test_groups_with_fewer_than_k_rows_are_suppressed_and_counted() -> None:
    raw = _hotline_counts("category", "street")
    exact = {g.key: g.size for g in raw.groups}
    small = sum(1 for size in exact.values() if size < 10)
    assert small > 0  # the data has small groups, or this test proves nothing
    released = release(raw, k=10, epsilon=1.0)
    for group in released.groups:
        key = (group.key["category"], group.key["street"])
        assert exact[key] >= 10 and group.values["count"] >= 10
    assert released.suppressed_groups >= small
    assert released.suppressed_groups + len(released.groups) == len(raw.groups)


def test_groups_whose_noisy_count_falls_below_k_are_suppressed_too() -> None:
    released = release(_counts(10, groups=400), k=10, epsilon=0.1)  # every group sits right at the threshold
    assert 0 < len(released.groups) < 400
    assert released.suppressed_groups == 400 - len(released.groups)
    assert all(g.values["count"] >= 10 for g in released.groups)


def test_count_noise_is_present_centred_and_scaled_by_epsilon() -> None:
    for epsilon in (0.5, 1.0):
        released = release(_counts(1_000), k=5, epsilon=epsilon)
        assert released.epsilon_spent == epsilon
        assert released.noise_scales["count"] == pytest.approx(1 / epsilon)
        errors = [g.values["count"] - 1_000 for g in released.groups]
        assert all(isinstance(e, int) for e in errors)
        assert sum(1 for e in errors if e == 0) < len(errors) / 2  # noise is there
        _assert_centred([float(e) for e in errors], 1 / epsilon, discrete=True)


def test_sum_noise_is_centred_with_half_epsilon_and_the_bounds_sensitivity() -> None:
    released = release(_sums(Statistic.SUM, 100, 5_000.0, (-20.0, 100.0)), k=5, epsilon=1.0)
    assert released.noise_scales == pytest.approx({"count": 2.0, "sum": 200.0})  # max(|-20|, |100|) / (1 / 2)
    _assert_centred([g.values["sum"] - 5_000.0 for g in released.groups], 200.0)


def test_mean_is_a_noisy_sum_over_a_noisy_count_kept_within_the_bounds() -> None:
    big = release(_sums(Statistic.MEAN, 10_000, 420_000.0, (0.0, 100.0)), k=5, epsilon=1.0)
    assert big.noise_scales == pytest.approx({"count": 2.0, "mean": 100.0})  # (100 - 0) / 2 / (1 / 2)
    assert abs(statistics.fmean(g.values["mean"] for g in big.groups) - 42.0) < 0.01
    small = release(_sums(Statistic.MEAN, 12, 1_100.0, (0.0, 100.0)), k=5, epsilon=0.2)
    means = [g.values["mean"] for g in small.groups]
    assert all(0.0 <= m <= 100.0 for m in means) and len(set(means)) > 10


def test_quantile_release_picks_a_candidate_near_the_exact_quantile() -> None:
    air = dataset_for("城市脉搏/环境空气质量", 2)
    assert air is not None
    params = {"column": "no2", "bounds": [0, 200], "alpha": 0.5, "steps": 100, "group_by": ["station_code"]}
    raw = BY_NAME["quantile"].execute(air, params)
    released = release(raw, k=10, epsilon=1.0)
    exact = {g.key[0]: g.value for g in raw.groups}
    assert len(released.groups) == len(exact)
    for group in released.groups:
        assert group.values["quantile"] in raw.candidates
        assert abs(group.values["quantile"] - exact[group.key["station_code"]]) <= 6  # within 3 candidate steps


def test_top_k_keeps_the_k_largest_noisy_counts() -> None:
    raw = _hotline_counts("street")
    top = RawResult(raw.algorithm, raw.statistic, raw.group_by, raw.groups, top=5)
    released = release(top, k=10, epsilon=1.0)
    counts = [g.values["count"] for g in released.groups]
    assert len(counts) == 5 and counts == sorted(counts, reverse=True)
    assert released.groups[0].key == {"street": "望京街道"}  # far ahead of the rest: noise cannot reorder it


def test_k_only_release_is_exact_but_still_suppresses_small_groups() -> None:
    raw = _hotline_counts("category")
    released = release(raw, k=10, epsilon=None, k_only=True)
    assert released.epsilon_spent is None and "no noise" in released.mechanism and not released.noise_scales
    assert {g.key["category"]: g.values["count"] for g in released.groups} == {
        g.key[0]: g.size for g in raw.groups if g.size >= 10
    }
    assert released.suppressed_groups == sum(1 for g in raw.groups if g.size < 10) > 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"k": 10, "epsilon": None}, "epsilon"),  # no noise without asking for the k-only mode
        ({"k": 10, "epsilon": 1.0, "k_only": True}, "epsilon"),
        ({"k": 10, "epsilon": 0.0}, "epsilon"),
        ({"k": 10, "epsilon": -1.0}, "epsilon"),
        ({"k": 10, "epsilon": math.nan}, "epsilon"),
        ({"k": 10, "epsilon": math.inf}, "epsilon"),
        ({"k": 0, "epsilon": 1.0}, "k"),
        ({"k": 2.5, "epsilon": 1.0}, "k"),
    ],
)
def test_a_release_with_bad_settings_is_refused(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRelease) as caught:
        release(_counts(100, groups=3), **kwargs)
    assert caught.value.field == field and caught.value.code == "INVALID_RELEASE"


def test_epsilon_is_spent_even_when_every_group_is_suppressed() -> None:
    released = release(_counts(3, groups=5), k=10, epsilon=0.3)
    assert released.groups == () and released.suppressed_groups == 5 and released.epsilon_spent == 0.3


def test_released_result_is_canonical_json_without_rows() -> None:
    dataset = dataset_for("城市影像/交通卡口", 1)
    assert dataset is not None
    raw = BY_NAME["mean"].execute(dataset, {"column": "vehicle_count", "bounds": [0, 3000], "group_by": ["direction"]})
    body = release(raw, k=10, epsilon=0.5).as_dict()
    text = canonical_json(body)
    assert body["epsilon_spent"] == 0.5 and [g["key"] for g in body["groups"]] == [
        {"direction": "出城"},
        {"direction": "进城"},
    ]
    assert "plate_number" not in text and "OpenDP" in body["mechanism"]
