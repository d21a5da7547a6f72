"""Privacy policy: k and epsilon budgets by grade or schema; jobs admitted until the budget runs out."""

from __future__ import annotations

from typing import Any

import pytest

from registry_api.zone.errors import BudgetRefused, InvalidRelease, InvalidSchema
from registry_api.zone.policy import GRADE_DEFAULTS, PrivacyPolicy, admit_epsilon, disclosure_problems, policy_for


def test_defaults_by_grade_grow_stricter_with_sensitivity() -> None:
    policies = [policy_for(None, grade) for grade in (1, 2, 3, 4)]
    assert [p.k for p in policies] == [5, 5, 10, 10]
    assert [p.epsilon_budget for p in policies] == [10.0, 5.0, 2.0, 1.0]
    assert all(p.max_epsilon_per_job <= p.epsilon_budget for p in policies)
    assert policy_for({"fields": []}, 3) == GRADE_DEFAULTS[3]


def test_schema_disclosure_overrides_the_grade_defaults() -> None:
    policy = policy_for({"fields": [], "disclosure": {"k": 20, "epsilon_budget": 3.0}}, 4)
    assert policy == PrivacyPolicy(k=20, epsilon_budget=3.0, max_epsilon_per_job=0.25)
    capped = policy_for({"disclosure": {"epsilon_budget": 0.1}}, 1)
    assert capped.max_epsilon_per_job == 0.1  # a job never spends more than the whole budget


@pytest.mark.parametrize(
    ("disclosure", "field"),
    [
        ({"k": 0}, "disclosure.k"),
        ({"k": 2.5}, "disclosure.k"),
        ({"epsilon_budget": -1}, "disclosure.epsilon_budget"),
        ({"max_epsilon_per_job": "1"}, "disclosure.max_epsilon_per_job"),
        ({"delta": 1e-6}, "disclosure.delta"),
        ([10], "disclosure"),
    ],
)
def test_ill_formed_disclosure_settings_are_refused_with_their_field(disclosure: Any, field: str) -> None:
    schema = {"fields": [], "disclosure": disclosure}
    assert disclosure_problems(schema)[0].field == field
    with pytest.raises(InvalidSchema) as caught:
        policy_for(schema, 2)
    assert caught.value.field == field and caught.value.code == "INVALID_DISCLOSURE"


def test_unknown_grade_is_refused() -> None:
    with pytest.raises(InvalidSchema) as caught:
        policy_for(None, 5)
    assert caught.value.field == "grade"


def test_jobs_are_admitted_until_the_budget_runs_out() -> None:
    policy = PrivacyPolicy(k=10, epsilon_budget=1.0, max_epsilon_per_job=0.25)
    spent, admitted = 0.0, 0
    while True:
        try:
            left = admit_epsilon(policy, 0.1, spent)
        except BudgetRefused as refused:
            assert refused.code == "PRIVACY_BUDGET_EXHAUSTED" and refused.field == "epsilon"
            break
        spent += 0.1
        admitted += 1
        assert left == pytest.approx(1.0 - spent)
    assert admitted == 10  # ten jobs of 0.1 fit a budget of 1.0 exactly, despite float sums


def test_a_job_over_the_per_job_cap_is_refused() -> None:
    policy = PrivacyPolicy(k=10, epsilon_budget=1.0, max_epsilon_per_job=0.25)
    with pytest.raises(BudgetRefused) as caught:
        admit_epsilon(policy, 0.3, 0.0)
    assert caught.value.code == "EPSILON_TOO_LARGE"
    with pytest.raises(InvalidRelease):
        admit_epsilon(policy, 0.0, 0.0)
