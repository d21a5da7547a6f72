"""Privacy policy of a catalog entry: minimum group size k and epsilon budget, from its schema or its grade.

A schema may carry `"disclosure": {"k": 10, "epsilon_budget": 3.0, "max_epsilon_per_job": 0.5}`; what it leaves
out comes from the entry's grade (分级, 1 least to 4 most sensitive):

| grade | k | epsilon budget per grant | max epsilon per job |
|---|---|---|---|
| 1 | 5 | 10.0 | 1.0 |
| 2 | 5 | 5.0 | 1.0 |
| 3 | 10 | 2.0 | 0.5 |
| 4 | 10 | 1.0 | 0.25 |

Why these: k = 5 is the usual minimum cell size of statistical offices for non-sensitive tables, 10 where
cells can point at people (checkpoints, hotline callers); a total epsilon of 1 keeps a grade-4 grant within
what the DP literature calls strong protection, and the per-job cap makes even the first job only a share of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["GRADE_DEFAULTS", "PrivacyPolicy", "admit_epsilon", "disclosure_problems", "policy_for"]


@dataclass(frozen=True)
class PrivacyPolicy:
    """Minimum group size `k`, total epsilon per grant and the most one job may spend."""

    k: int
    epsilon_budget: float
    max_epsilon_per_job: float


GRADE_DEFAULTS: dict[int, PrivacyPolicy] = {
    1: PrivacyPolicy(k=5, epsilon_budget=10.0, max_epsilon_per_job=1.0),
    2: PrivacyPolicy(k=5, epsilon_budget=5.0, max_epsilon_per_job=1.0),
    3: PrivacyPolicy(k=10, epsilon_budget=2.0, max_epsilon_per_job=0.5),
    4: PrivacyPolicy(k=10, epsilon_budget=1.0, max_epsilon_per_job=0.25),
}


def disclosure_problems(schema: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field path, message) for each problem of the schema's optional `disclosure` object."""
    raise NotImplementedError


def policy_for(schema: Mapping[str, Any] | None, grade: int) -> PrivacyPolicy:
    """The entry's policy: its schema's `disclosure` over the defaults of its grade; InvalidSchema if ill-formed."""
    raise NotImplementedError


def admit_epsilon(policy: PrivacyPolicy, epsilon: float, spent: float) -> float:
    """Check a job's epsilon against the per-job cap and the budget left after `spent`; returns what is left after.

    BudgetRefused with code EPSILON_TOO_LARGE or PRIVACY_BUDGET_EXHAUSTED otherwise.
    """
    raise NotImplementedError
