"""Disclosure control: what of a RawResult may leave the zone, and with how much noise (OpenDP).

The release, in this order:
1. groups with fewer than `k` contributing rows are suppressed (counted in `suppressed_groups`, never shown);
2. differential-privacy noise from OpenDP calibrated to the statistic's L1 sensitivity under adding or removing
   one row (each row falls in exactly one group, so a whole vector of disjoint groups has the sensitivity of one):
   counts 1 (discrete Laplace); sums max(|lower|, |upper|) of the clamping bounds; means as a noisy sum of
   values shifted to the bounds' midpoint ((upper - lower) / 2) over a noisy count; quantiles by OpenDP's
   private quantile (exponential mechanism) over candidates from the bounds. Every statistic but a count spends
   half of epsilon on the noisy count;
3. groups whose NOISY count falls below `k` are suppressed too, so no released count is below k;
4. top_k keeps the k groups with the largest noisy counts (post-processing, no extra epsilon).
The epsilon passed in is what is spent (`epsilon_spent`), whatever groups survive.

Step 1 works on exact counts: it is the statistical offices' minimum-frequency rule, layered on the DP noise,
not itself differentially private (whether a group of exactly k rows appears depends on one row); step 3 keeps
groups near the threshold from showing an exact small count. The set of released group keys comes from the data.

Without noise (`epsilon=None`) only the explicit k-only mode releases anything, for raw-grant holders who may
see the rows anyway: k-suppression still applies, values are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry_api.zone.algorithms import RawResult
from registry_api.zone.datasets import Scalar

__all__ = ["Released", "ReleasedGroup", "release"]


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

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (canonical_json of it is what a receipt's result hash covers)."""
        raise NotImplementedError


def release(raw: RawResult, *, k: int, epsilon: float | None, k_only: bool = False) -> Released:
    """Release a RawResult under disclosure control: k-suppression, then OpenDP noise spending `epsilon`.

    `epsilon=None` releases exact values only when `k_only=True` (raw-grant holders); otherwise InvalidRelease,
    as for epsilon <= 0, k < 1, or k_only with an epsilon.
    """
    raise NotImplementedError
