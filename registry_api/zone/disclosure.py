"""Disclosure control: what of a RawResult may leave the zone, and with how much noise (OpenDP).

The release, in this order:
1. groups with fewer than `k` contributing rows are suppressed (counted in `suppressed_groups`, never shown);
2. differential-privacy noise from OpenDP, calibrated to the statistic's L1 sensitivity when one row is added or
   removed. Each row falls in exactly one group, so the vector of all groups has the sensitivity of one group:
   - counts: 1, discrete Laplace (integers stay integers);
   - sums: max(|lower|, |upper|) of the clamping bounds, Laplace;
   - means: a noisy sum of values shifted to the bounds' midpoint (sensitivity (upper - lower) / 2) over the
     noisy count, clamped back into the bounds;
   - quantiles: OpenDP's private quantile (exponential mechanism) over candidates spread over the bounds, run
     per group (disjoint groups compose in parallel);
   every statistic but a count spends half of epsilon on the noisy count and half on itself;
3. groups whose NOISY count falls below `k` are suppressed too, so no released count is below k;
4. top_k keeps the k groups with the largest noisy counts (post-processing: no extra epsilon).
The epsilon passed in is what is spent (`epsilon_spent`), whatever groups survive; OpenDP's privacy maps of the
measurements used are checked to add up to no more than it.

Step 1 works on exact counts: it is the statistical offices' minimum-frequency rule layered on the noise, not
itself differentially private (whether a group of exactly k rows shows depends on one row), and the released
group keys come from the data; step 3 keeps groups near the threshold from showing an exact small count.

Without noise (`epsilon=None`) only the explicit k-only mode releases anything, for raw-grant holders who may
see the rows anyway: k-suppression still applies and values are exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import ModuleType
from typing import Any

from registry_api.zone.algorithms import RawGroup, RawResult, Statistic
from registry_api.zone.datasets import Scalar
from registry_api.zone.errors import InvalidRelease

__all__ = ["Released", "ReleasedGroup", "release"]

_DIGITS = 6  # released floats are rounded (post-processing) so their last bits carry no sampling detail


@dataclass(frozen=True)
class ReleasedGroup:
    """One released group: its key by column name and its (noisy) values, e.g. {"count": 42, "mean": 61.3}."""

    key: dict[str, Scalar]
    values: dict[str, float | int]


@dataclass(frozen=True)
class Released:
    """What leaves the zone: groups, how many were suppressed, epsilon spent and the mechanism in words."""

    algorithm: str
    groups: tuple[ReleasedGroup, ...]
    suppressed_groups: int
    epsilon_spent: float | None  # None only for the k-only release
    mechanism: str
    k: int
    noise_scales: dict[str, float] = field(default_factory=dict)  # statistic -> scale of the noise added

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (canonical_json of it is what a receipt's result hash covers)."""
        return {
            "algorithm": self.algorithm,
            "k": self.k,
            "groups": [{"key": g.key, "values": g.values} for g in self.groups],
            "suppressed_groups": self.suppressed_groups,
            "epsilon_spent": self.epsilon_spent,
            "mechanism": self.mechanism,
            "noise_scales": self.noise_scales,
        }


@lru_cache(maxsize=1)
def _opendp() -> ModuleType:
    """OpenDP's prelude with the features it asks users to opt into, enabled here and nowhere else.

    "contrib" unlocks the measurements whose proofs are not yet vetted by OpenDP's committee, which include
    make_laplace and make_private_quantile.
    """
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


@dataclass
class _Spend:
    """Epsilon accounting of one release: OpenDP's privacy map of each measurement used."""

    epsilon: float
    losses: list[float] = field(default_factory=list)
    scales: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _calibrated(make: Callable[[float], Any], d_in: float, epsilon: float) -> tuple[Any, float]:
    """The measurement whose privacy map at d_in is epsilon (within float rounding, never above), and its scale.

    Both OpenDP mechanisms used here lose epsilon in proportion to 1 / scale, so the loss at scale 1 gives the
    scale; if rounding puts the loss a hair above epsilon, OpenDP's binary search finds the scale instead.
    """
    dp = _opendp()
    scale = make(1.0).map(d_in) / epsilon
    measurement = make(scale)
    if measurement.map(d_in) > epsilon:
        scale = dp.binary_search_param(make, d_in=d_in, d_out=epsilon)
        measurement = make(scale)
    return measurement, scale


def _noisy_counts(sizes: Sequence[int], epsilon: float, spend: _Spend) -> list[int]:
    dp = _opendp()
    domain, metric = dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int)
    measurement, scale = _calibrated(lambda s: dp.m.make_laplace(domain, metric, scale=s), 1, epsilon)
    spend.losses.append(measurement.map(1))
    spend.scales["count"] = scale
    spend.notes.append(f"counts: discrete Laplace, sensitivity 1, scale {scale:.6g}, epsilon {epsilon:.6g}")
    return list(measurement(list(sizes))) if sizes else []


def _noisy_sums(totals: Sequence[float], sensitivity: float, epsilon: float, spend: _Spend, name: str) -> list[float]:
    dp = _opendp()
    domain, metric = dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l1_distance(T=float)
    measurement, scale = _calibrated(lambda s: dp.m.make_laplace(domain, metric, scale=s), sensitivity, epsilon)
    spend.losses.append(measurement.map(sensitivity))
    spend.scales[name] = scale
    spend.notes.append(f"{name}: Laplace, sensitivity {sensitivity:.6g}, scale {scale:.6g}, epsilon {epsilon:.6g}")
    return list(measurement(list(totals))) if totals else []


def _noisy_quantiles(raw: RawResult, groups: Sequence[RawGroup], epsilon: float, spend: _Spend) -> list[float]:
    dp = _opendp()
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))
    metric, measure = dp.insert_delete_distance(), dp.max_divergence()
    candidates, alpha = list(raw.candidates), raw.alpha if raw.alpha is not None else 0.5

    def make(scale: float) -> Any:
        return dp.m.make_private_quantile(domain, metric, measure, candidates=candidates, alpha=alpha, scale=scale)

    measurement, scale = _calibrated(make, 1, epsilon)
    spend.losses.append(measurement.map(1))  # groups are disjoint: parallel composition, one loss for all
    spend.scales["quantile"] = scale
    spend.notes.append(
        f"quantile: OpenDP private quantile over {len(candidates)} candidates, scale {scale:.6g}, epsilon {epsilon:.6g}"
    )
    return [float(measurement(list(g.values))) for g in groups]


def _check(raw: RawResult, k: int, epsilon: float | None, k_only: bool) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidRelease(f"k must be a whole number of at least 1, not {k!r}", field="k")
    if k_only:
        if epsilon is not None:
            raise InvalidRelease("the k-only release adds no noise: it takes no epsilon", field="epsilon")
        return
    if epsilon is None:
        raise InvalidRelease("a release without noise must ask for the k-only mode", field="epsilon")
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float) or not math.isfinite(epsilon) or epsilon <= 0:
        raise InvalidRelease(f"epsilon must be a finite number above 0, not {epsilon!r}", field="epsilon")
    if raw.statistic is not Statistic.COUNT and raw.bounds is None:
        raise InvalidRelease(f"{raw.algorithm}: a {raw.statistic} needs clamping bounds", field="bounds")


def _round(value: float) -> float:
    return round(value, _DIGITS)


def _exact_values(raw: RawResult, group: RawGroup) -> dict[str, float | int]:
    values: dict[str, float | int] = {"count": group.size}
    if raw.statistic is not Statistic.COUNT:
        values[str(raw.statistic)] = _round(group.value)
    return values


def _noisy_values(raw: RawResult, kept: Sequence[RawGroup], epsilon: float, spend: _Spend) -> list[dict[str, Any]]:
    """Per kept group: the noisy count and the noisy statistic, spending epsilon as the module docstring says."""
    count_share = epsilon if raw.statistic is Statistic.COUNT else epsilon / 2
    counts = _noisy_counts([g.size for g in kept], count_share, spend)
    rows: list[dict[str, Any]] = [{"count": int(c)} for c in counts]
    rest = epsilon - count_share
    if raw.statistic is Statistic.COUNT:
        return rows
    lower, upper = raw.bounds or (0.0, 0.0)  # _check refused a non-count without bounds
    if raw.statistic is Statistic.SUM:
        sums = _noisy_sums([g.total or 0.0 for g in kept], max(abs(lower), abs(upper)), rest, spend, "sum")
        for row, noisy in zip(rows, sums, strict=True):
            row["sum"] = _round(noisy)
    elif raw.statistic is Statistic.MEAN:
        middle = (lower + upper) / 2
        shifted = [(g.total or 0.0) - middle * g.size for g in kept]
        sums = _noisy_sums(shifted, (upper - lower) / 2, rest, spend, "mean")
        for row, noisy in zip(rows, sums, strict=True):
            row["mean"] = _round(min(max(middle + noisy / max(row["count"], 1), lower), upper))
    else:
        for row, noisy in zip(rows, _noisy_quantiles(raw, kept, rest, spend), strict=True):
            row["quantile"] = _round(noisy)
    return rows


def release(raw: RawResult, *, k: int, epsilon: float | None, k_only: bool = False) -> Released:
    """Release a RawResult under disclosure control: k-suppression, then OpenDP noise spending `epsilon`.

    `epsilon=None` releases exact values only when `k_only=True` (raw-grant holders); otherwise InvalidRelease,
    as for epsilon <= 0, k < 1, or k_only with an epsilon.
    """
    _check(raw, k, epsilon, k_only)
    kept = [g for g in raw.groups if g.size >= k]
    suppressed = len(raw.groups) - len(kept)
    if epsilon is None:  # the k-only mode (checked above)
        pairs = [(g, _exact_values(raw, g)) for g in kept]
        if raw.top is not None:
            pairs = sorted(pairs, key=lambda p: -p[0].size)[: raw.top]
        groups = tuple(ReleasedGroup(dict(zip(raw.group_by, g.key, strict=True)), v) for g, v in pairs)
        mechanism = f"groups with fewer than {k} rows suppressed; exact values, no noise (k-only release)"
        return Released(raw.algorithm, groups, suppressed, None, mechanism, k)
    spend = _Spend(epsilon)
    noisy = _noisy_values(raw, kept, epsilon, spend)
    if sum(spend.losses) > epsilon * (1 + 1e-9):  # OpenDP's own accounting must agree with what is charged
        raise RuntimeError(f"privacy loss {sum(spend.losses)} over epsilon {epsilon}")
    pairs = [(g, v) for g, v in zip(kept, noisy, strict=True) if v["count"] >= k]
    suppressed += len(kept) - len(pairs)
    if raw.top is not None:
        pairs = sorted(pairs, key=lambda p: -p[1]["count"])[: raw.top]
    groups = tuple(ReleasedGroup(dict(zip(raw.group_by, g.key, strict=True)), v) for g, v in pairs)
    mechanism = "; ".join(
        [
            f"groups with fewer than {k} rows suppressed",
            *spend.notes,
            f"groups with a noisy count below {k} suppressed",
            *([f"top {raw.top} by noisy count"] if raw.top is not None else []),
            "OpenDP",
        ]
    )
    return Released(raw.algorithm, groups, suppressed, epsilon, mechanism, k, dict(spend.scales))
