"""The data zone against anvil and each database: jobs release groups only under disclosure control, a grant's
budget runs out (also under concurrent jobs), and rows are served only against a capability token."""

from __future__ import annotations

import threading
from typing import Any

from sqlmodel import Session, select

from registry_api.auth import resolve_principal
from registry_api.models import PrivacyBudget, UsageReceipt
from registry_api.zone.datasets import dataset_for
from registry_api.zone.errors import ZoneError
from registry_api.zone.service import JobRequest, ZoneService
from tests.registry_api.catalog_support import create_entry
from tests.registry_api.resolver_support import (
    OWNER,
    api_settings,  # noqa: F401  (the fixture: keys under tmp_path, no anchoring job)
    grant,
    hotline_entry,
    listed_builtin,
    resolve,
)
from tests.registry_api.support import Api
from tests.registry_api.test_algorithms import algorithm

STREET_AND_CATEGORY = {"group_by": ["street", "category"]}
TIGHT_BUDGET = {"disclosure": {"epsilon_budget": 1.0, "max_epsilon_per_job": 0.25}}  # four jobs of 0.25


def _job(api: Api, org: str, entry_id: int, algorithm_id: int, params: dict[str, Any], epsilon: float | None) -> Any:
    body: dict[str, Any] = {"entry_id": entry_id, "algorithm_id": algorithm_id, "params": params}
    if epsilon is not None:
        body["epsilon"] = epsilon
    return api.post("/v1/zone/jobs", body, org)


def _tight(**changes: Any) -> dict[str, Any]:
    body = hotline_entry(**changes)
    body["schema"] = {**body["schema"], **TIGHT_BUDGET}
    return body


def test_a_job_releases_groups_only_and_suppresses_small_ones(api: Api) -> None:
    entry_id = create_entry(api, hotline_entry())
    algorithm_id = listed_builtin(api, "grouped_count", entry_id)
    grant_id = grant(api, entry_id, "CO-ZHCS", "result_only")

    answer = _job(api, "CO-ZHCS", entry_id, algorithm_id, STREET_AND_CATEGORY, 0.5)
    assert answer.status_code == 201, answer.text
    job = answer.json()
    assert (job["org"], job["grant_id"]) == ("CO-ZHCS", grant_id)
    assert (job["epsilon_spent"], job["remaining_epsilon"]) == (0.5, 4.5)
    result = job["result"]
    dataset = dataset_for("城市体征/热线诉求", entry_id)
    assert dataset is not None
    sizes: dict[tuple[Any, ...], int] = {}
    for street, category in zip(dataset.column("street"), dataset.column("category"), strict=True):
        sizes[(street, category)] = sizes.get((street, category), 0) + 1
    small = [key for key, size in sizes.items() if size < 5]
    assert small and job["suppressed"] >= len(small)  # every group under k = 5 is withheld, maybe more (noisy)
    released = {(g["key"]["street"], g["key"]["category"]) for g in result["groups"]}
    assert released and not released & set(small)
    assert len(released) + job["suppressed"] == len(sizes)
    assert all(set(g["key"]) == {"street", "category"} and g["values"]["count"] >= 5 for g in result["groups"])
    text = str(result)
    assert not any(str(phone) in text for phone in dataset.column("caller_phone")[:50])  # never rows
    assert result["epsilon_spent"] == 0.5 and "OpenDP" in result["mechanism"]

    shown = api.get(f"/v1/zone/jobs/{job['id']}", "CO-ZHCS").json()
    assert shown["result"] == result and shown["receipt_id"] == job["receipt_id"]
    other = api.get(f"/v1/zone/jobs/{job['id']}", "BJ-CMC")
    assert other.status_code == 404 and other.json()["code"] == "JOB_NOT_FOUND"

    personal = _job(api, "CO-ZHCS", entry_id, algorithm_id, {"group_by": ["caller_phone"]}, 0.5)
    assert personal.status_code == 422 and personal.json()["code"] == "INVALID_PARAMS"
    assert personal.json()["field"].startswith("params.group_by")
    too_much = _job(api, "CO-ZHCS", entry_id, algorithm_id, STREET_AND_CATEGORY, 2.0)  # grade 2: 1.0 per job
    assert too_much.status_code == 422 and too_much.json()["code"] == "EPSILON_TOO_LARGE"
    denied = _job(api, "BJ-EMB", entry_id, algorithm_id, STREET_AND_CATEGORY, 0.5)
    assert denied.status_code == 403 and denied.json()["code"] == "NO_GRANT"
    with Session(api.app.state.engine) as session:
        budget = session.get(PrivacyBudget, grant_id)
    assert budget is not None and (budget.spent_micros, budget.jobs) == (500_000, 1)  # refusals spend nothing


def test_a_grants_budget_runs_out_and_further_jobs_and_decisions_are_denied(api: Api) -> None:
    entry_id = create_entry(api, _tight())
    algorithm_id = listed_builtin(api, "grouped_count", entry_id)
    grant_id = grant(api, entry_id, "CO-ZHCS", "result_only")
    other = grant(api, entry_id, "BJ-EMB", "desensitized")
    remaining = []
    for _ in range(4):
        answer = _job(api, "CO-ZHCS", entry_id, algorithm_id, {"group_by": ["street"]}, None)  # the per-job max
        assert answer.status_code == 201, answer.text
        remaining.append(answer.json()["remaining_epsilon"])
    assert remaining == [0.75, 0.5, 0.25, 0.0]

    refused = _job(api, "CO-ZHCS", entry_id, algorithm_id, {"group_by": ["street"]}, 0.1)
    assert refused.status_code == 403 and refused.json()["code"] == "BUDGET_EXHAUSTED"
    decision = resolve(api, "CO-ZHCS", entry_id, "compute", algorithm_id=algorithm_id, epsilon=0.1)
    assert (decision["decision"], decision["reason"], decision["proof"]["grant_id"]) == (
        "deny",
        "BUDGET_EXHAUSTED",
        grant_id,
    )
    assert decision["constraints"]["remaining_epsilon"] == 0.0 and decision["constraints"]["epsilon_budget"] == 1.0
    # another grant keeps its own budget, and the owner computes without one
    assert _job(api, "BJ-EMB", entry_id, algorithm_id, {"group_by": ["street"]}, 0.25).json()["grant_id"] == other
    owner = _job(api, OWNER, entry_id, algorithm_id, {"group_by": ["street"]}, 0.25)
    assert owner.status_code == 201 and owner.json()["grant_id"] is None


def test_concurrent_jobs_never_overspend_a_grant(api: Api) -> None:
    entry_id = create_entry(api, _tight())
    algorithm_id = listed_builtin(api, "grouped_count", entry_id)
    grant_id = grant(api, entry_id, "CO-ZHCS", "result_only")
    zone: ZoneService = api.app.state.zone
    with Session(api.app.state.engine) as session:
        principal = resolve_principal(session, api.tokens["CO-ZHCS"])
    assert principal is not None
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def run() -> None:
        start.wait()
        try:
            zone.run_job(principal, JobRequest(entry_id, algorithm_id, {"group_by": ["street"]}, 0.25))
            outcome = "ran"
        except ZoneError as exc:
            outcome = exc.code
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["BUDGET_EXHAUSTED"] * 4 + ["ran"] * 4
    with Session(api.app.state.engine) as session:
        budget = session.get(PrivacyBudget, grant_id)
        receipts = session.exec(select(UsageReceipt).where(UsageReceipt.kind == "job")).all()
    assert budget is not None and (budget.spent_micros, budget.jobs) == (1_000_000, 4)
    assert len(receipts) == 4 and sum(r.epsilon_micros for r in receipts) == 1_000_000


def test_jobs_need_a_builtin_implementation_and_data_in_the_zone(api: Api) -> None:
    entry_id = create_entry(api, hotline_entry())
    mystery = listed_builtin(api, "mystery", entry_id, algorithm("mystery"))  # listed, but no code of ours
    grant(api, entry_id, "CO-ZHCS", "result_only")
    answer = _job(api, "CO-ZHCS", entry_id, mystery, {}, 0.5)
    assert answer.status_code == 422 and answer.json()["code"] == "ALGORITHM_NOT_IMPLEMENTED"
    assert answer.json()["field"] == "algorithm_id"

    elsewhere = create_entry(api, hotline_entry(classification="城市体征/其他"))  # the zone keeps no such data
    counted = listed_builtin(api, "grouped_count", elsewhere)
    answer = _job(api, OWNER, elsewhere, counted, {"group_by": ["street"]}, 0.5)
    assert answer.status_code == 422 and answer.json()["code"] == "DATASET_NOT_AVAILABLE"


def _token(api: Api, org: str, entry_id: int, action: str) -> str:
    answer = resolve(api, org, entry_id, action)
    assert answer["decision"] == "permit", answer
    token: str = answer["capability"]["token"]
    return token


def _rows(api: Api, org: str, entry_id: int, token: str | None, **params: Any) -> Any:
    headers = api.auth(org) | ({"X-Capability": token} if token is not None else {})
    return api.client.get(f"/v1/zone/entries/{entry_id}/rows", headers=headers, params=params)


def test_rows_are_served_only_against_a_capability_and_desensitized_per_schema(api: Api) -> None:
    entry_id = create_entry(api, hotline_entry())
    other_entry = create_entry(api, hotline_entry(title="另一工单"))
    grant(api, entry_id, "BJ-EMB", "desensitized")
    grant(api, entry_id, "BJ-CMC", "raw")
    dataset = dataset_for("城市体征/热线诉求", entry_id)
    assert dataset is not None
    clear = dataset.rows[2:5]

    desensitized = _token(api, "BJ-EMB", entry_id, "read_desensitized")
    page = _rows(api, "BJ-EMB", entry_id, desensitized, limit=3, offset=2)
    assert page.status_code == 200, page.text
    body = page.json()
    assert (body["form"], body["count"], body["limit"], body["offset"]) == ("desensitized", len(dataset), 3, 2)
    for shown, row in zip(body["data"], clear, strict=True):
        assert "content" not in shown  # personal, no rule: dropped
        assert shown["caller_phone"] == "*" * (len(row["caller_phone"]) - 4) + row["caller_phone"][-4:]
        assert shown["caller_name"] != row["caller_name"] and "*" in shown["caller_name"]
        assert shown["received_at"] == row["received_at"][:10]  # generalized to the day
        assert (shown["street"], shown["category"]) == (row["street"], row["category"])

    raw = _token(api, "BJ-CMC", entry_id, "read_raw")
    clear_page = _rows(api, "BJ-CMC", entry_id, raw, form="raw", limit=3, offset=2).json()
    assert clear_page["data"] == clear and clear_page["capability"]["action"] == "read_raw"
    masked = _rows(api, "BJ-CMC", entry_id, raw, form="desensitized", limit=3, offset=2).json()  # raw covers it
    assert masked["data"] == body["data"]

    def refused(answer: Any, status: int, code: str) -> None:
        assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text

    refused(_rows(api, "BJ-EMB", entry_id, desensitized, form="raw"), 403, "FORM_NOT_COVERED")
    refused(_rows(api, "BJ-EMB", entry_id, None), 401, "CAPABILITY_REQUIRED")
    refused(_rows(api, "BJ-EMB", entry_id, raw), 403, "TOKEN_NOT_YOURS")
    refused(_rows(api, "BJ-EMB", other_entry, desensitized), 403, "WRONG_ENTRY")
    header, payload, signature = desensitized.split(".")
    refused(_rows(api, "BJ-EMB", entry_id, f"{header}.{payload}.{signature[:-4]}AAAA"), 403, "BAD_SIGNATURE")
    result_only = grant(api, other_entry, "CO-ZHCS", "result_only")
    assert result_only
    compute_token = resolve(
        api, "CO-ZHCS", other_entry, "compute", algorithm_id=listed_builtin(api, "grouped_count", other_entry)
    )["capability"]["token"]
    refused(_rows(api, "CO-ZHCS", other_entry, compute_token), 403, "FORM_NOT_COVERED")  # results only, no rows
