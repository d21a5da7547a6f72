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

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from registry_api.zone.errors import BudgetRefused, InvalidRelease, InvalidSchema
from registry_api.zone.masking import SchemaProblem

__all__ = ["GRADE_DEFAULTS", "PrivacyPolicy", "admit_epsilon", "disclosure_problems", "policy_for"]

_SLACK = 1e-9  # relative: sums of float epsilons (0.1 + 0.2) must not refuse a job that exactly fits


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
_KEYS = ("k", "epsilon_budget", "max_epsilon_per_job")


def _positive_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value) and value > 0


def disclosure_problems(schema: Mapping[str, Any]) -> list[SchemaProblem]:
    """Each problem of the schema's optional `disclosure` object (code INVALID_DISCLOSURE)."""
    if not isinstance(schema, Mapping) or "disclosure" not in schema:
        return []
    disclosure = schema["disclosure"]
    if not isinstance(disclosure, Mapping):
        return [
            _problem("disclosure", "disclosure must be an object with k, epsilon_budget and/or max_epsilon_per_job")
        ]
    problems = [
        _problem(f"disclosure.{key}", f"unknown disclosure setting {key!r}") for key in disclosure if key not in _KEYS
    ]
    k = disclosure.get("k", 1)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        problems.append(_problem("disclosure.k", "k must be a whole number of at least 1"))
    for key in ("epsilon_budget", "max_epsilon_per_job"):
        if key in disclosure and not _positive_number(disclosure[key]):
            problems.append(_problem(f"disclosure.{key}", f"{key} must be a finite number above 0"))
    return problems


def _problem(field: str, message: str) -> SchemaProblem:
    return SchemaProblem(field, "INVALID_DISCLOSURE", message)


def policy_for(schema: Mapping[str, Any] | None, grade: int) -> PrivacyPolicy:
    """The entry's policy: its schema's `disclosure` over the defaults of its grade; InvalidSchema if ill-formed.

    A per-job cap above the budget is lowered to the budget (a job can never spend more than there is).
    """
    if grade not in GRADE_DEFAULTS:
        raise InvalidSchema(f"grade must be one of {sorted(GRADE_DEFAULTS)}, not {grade!r}", field="grade")
    policy = GRADE_DEFAULTS[grade]
    if not schema:
        return policy
    problems = disclosure_problems(schema)
    if problems:
        raise InvalidSchema(problems[0].message, field=problems[0].field, code=problems[0].code)
    overrides = {key: value for key, value in (schema.get("disclosure") or {}).items() if key in _KEYS}
    policy = replace(policy, **overrides)
    if policy.max_epsilon_per_job > policy.epsilon_budget:
        policy = replace(policy, max_epsilon_per_job=policy.epsilon_budget)
    return policy


def admit_epsilon(policy: PrivacyPolicy, epsilon: float, spent: float) -> float:
    """Check a job's epsilon against the per-job cap and the budget left after `spent`; returns what is left after.

    BudgetRefused with code EPSILON_TOO_LARGE or PRIVACY_BUDGET_EXHAUSTED otherwise (field "epsilon");
    InvalidRelease for an epsilon that is not a finite number above 0.
    """
    if not _positive_number(epsilon):
        raise InvalidRelease(f"epsilon must be a finite number above 0, not {epsilon!r}", field="epsilon")
    if epsilon > policy.max_epsilon_per_job * (1 + _SLACK):
        raise BudgetRefused(
            f"epsilon {epsilon:g} is over the {policy.max_epsilon_per_job:g} one job may spend on this entry",
            field="epsilon",
            code="EPSILON_TOO_LARGE",
        )
    left = policy.epsilon_budget - spent
    if epsilon > left + policy.epsilon_budget * _SLACK:
        raise BudgetRefused(
            f"the grant's privacy budget has {max(left, 0.0):g} of {policy.epsilon_budget:g} left; "
            f"the job asks {epsilon:g}",
            field="epsilon",
            code="PRIVACY_BUDGET_EXHAUSTED",
        )
    return max(left - epsilon, 0.0)
