"""/v1/algorithms and /v1/catalog/{entry_id}/algorithms: the algorithm center (算法中心) and per-entry admissions.

Any member submits; a REVIEWER of another org than the submitter's evaluates and lists; any REVIEWER delists;
a REGISTRAR of a catalog entry's owner org admits listed algorithms for the entry and withdraws them. Every write
is signed by the caller's org and answers 202 with an operation; the contract's refusals come back at once
(simulation) with stable codes: ALGORITHM_NOT_FOUND, ALGORITHM_DUPLICATE, SELF_EVALUATION, NOT_PASSED,
ILLEGAL_STATUS, ALGORITHM_DELISTED, ALGORITHM_NOT_LISTED, NOT_ENTRY_OWNER, ALREADY_ADMITTED, NOT_ADMITTED.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status

from registry_api import crud_algorithms, crud_catalog
from registry_api.auth import Principal
from registry_api.deps import GatewayDep, PageDep, PrincipalDep, RegistrarDep, SessionDep, require_role
from registry_api.errors import ApiError
from registry_api.schemas.algorithms import (
    AdmissionCreate,
    AlgorithmCreate,
    AlgorithmDetailPublic,
    AlgorithmsPublic,
    AlgorithmStatus,
    DelistingCreate,
    EntryAlgorithmsPublic,
    EvaluationCreate,
)
from registry_api.schemas.common import MAX_ID, ErrorPublic, OperationAccepted
from registry_api.writes import IdempotencyKey, MemberDep, Started, accepted, enqueue

__all__ = ["entry_router", "router"]

router = APIRouter(prefix="/v1/algorithms", tags=["algorithms"])
entry_router = APIRouter(prefix="/v1/catalog", tags=["algorithms"])

CONTRACT = "AlgorithmRegistry"
AlgorithmId = Annotated[int, Path(ge=1, le=MAX_ID, description="the algorithm's id")]
EntryId = Annotated[int, Path(ge=1, le=MAX_ID, description="the catalog entry's id")]
ReviewerDep = Annotated[Principal, Depends(require_role("REVIEWER"))]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic, "description": text}
    for code, text in {
        401: "no or bad token (UNAUTHENTICATED)",
        403: "ROLE_REQUIRED (with the missing `role`), SELF_EVALUATION, NOT_ENTRY_OWNER, ORG_UNKNOWN, ORG_INACTIVE",
        404: "ALGORITHM_NOT_FOUND, ENTRY_NOT_FOUND, NOT_ADMITTED",
        409: "ALGORITHM_DUPLICATE, NOT_PASSED, ILLEGAL_STATUS, ALGORITHM_DELISTED, ALGORITHM_NOT_LISTED, "
        "ALREADY_ADMITTED, IDEMPOTENCY_CONFLICT",
        422: "VALIDATION_ERROR",
        503: "CHAIN_UNAVAILABLE or DATABASE_UNAVAILABLE",
    }.items()
}


def _write(
    gateway: GatewayDep,
    principal: Principal,
    function: str,
    args: list[Any],
    idempotency_key: str | None,
    response: Response,
    started: float,
) -> OperationAccepted:
    """Simulate and queue AlgorithmRegistry.`function` signed by the caller's org; the 202 answer."""
    op = enqueue(gateway, principal, CONTRACT, function, args, idempotency_key)
    return accepted(op, response, started)


def _visible_entry(session: SessionDep, entry_id: int, principal: Principal) -> None:
    if crud_catalog.get_entry(session, entry_id, principal.org_id) is None:
        raise ApiError(404, "ENTRY_NOT_FOUND", f"no catalog entry {entry_id} (or not indexed yet)", field="entry_id")


# ---------------------------------------------------------------- algorithms


@router.post("", status_code=status.HTTP_202_ACCEPTED, summary="Submit an algorithm", responses=_ERRORS)  # type: ignore[arg-type]
def submit_algorithm(
    body: AlgorithmCreate,
    principal: MemberDep,
    gateway: GatewayDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """Submit an algorithm of the caller's org for evaluation: name and version (unique together, else 409
    ALGORITHM_DUPLICATE), the code hash the zone will pin, and the declared outputs (stored as canonical JSON).

    Its id is in the operation's AlgorithmSubmitted event and in GET /v1/algorithms once indexed.
    """
    args = [crud_algorithms.algorithm_input(body)]
    return _write(gateway, principal, "submit", args, idempotency_key, response, started)


@router.get("", summary="List algorithms", responses=_ERRORS)  # type: ignore[arg-type]
def list_algorithms(
    session: SessionDep,
    _: PrincipalDep,
    page: PageDep,
    status: Annotated[AlgorithmStatus | None, Query(description="submitted | evaluated | listed | delisted")] = None,
    name: Annotated[str | None, Query(max_length=100, description="exact algorithm name (every version)")] = None,
    submitter: Annotated[str | None, Query(max_length=64, description="submitter org code")] = None,
) -> AlgorithmsPublic:
    """Algorithms by id with `{"data", "count"}`, each with its status and latest evaluation."""
    filters = crud_algorithms.AlgorithmFilter(status=status, name=name, submitter=submitter)
    data, count = crud_algorithms.list_algorithms(session, filters, page.limit, page.offset)
    return AlgorithmsPublic(data=data, count=count)


@router.get("/{algorithm_id}", summary="One algorithm", responses=_ERRORS)  # type: ignore[arg-type]
def get_algorithm(algorithm_id: AlgorithmId, session: SessionDep, principal: PrincipalDep) -> AlgorithmDetailPublic:
    """The algorithm's record, every evaluation (reviewer, report hash, score, tx) and the entries admitting it."""
    detail = crud_algorithms.algorithm_detail(session, algorithm_id, principal.org_id)
    if detail is None:
        raise ApiError(
            404, "ALGORITHM_NOT_FOUND", f"no algorithm {algorithm_id} (or not indexed yet)", field="algorithm_id"
        )
    return detail


@router.post(
    "/{algorithm_id}/evaluations",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Record an evaluation (REVIEWER)",
    responses=_ERRORS,  # type: ignore[arg-type]
)
def evaluate_algorithm(
    algorithm_id: AlgorithmId,
    body: EvaluationCreate,
    principal: ReviewerDep,
    gateway: GatewayDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """A REVIEWER of another org than the submitter's (else 403 SELF_EVALUATION) records the report's hash
    (keccak256 of `report`, or `report_hash`) and a score 0..100.

    The first evaluation makes a submitted algorithm evaluated; a listed algorithm scored below the pass mark
    (60) is delisted at once. A delisted algorithm is not evaluated again (409 ALGORITHM_DELISTED).
    """
    args = [algorithm_id, crud_algorithms.report_hash(body), body.score]
    return _write(gateway, principal, "evaluate", args, idempotency_key, response, started)


@router.post(
    "/{algorithm_id}/listing",
    status_code=status.HTTP_202_ACCEPTED,
    summary="List an evaluated algorithm (REVIEWER)",
    responses=_ERRORS,  # type: ignore[arg-type]
)
def list_algorithm(
    algorithm_id: AlgorithmId,
    principal: ReviewerDep,
    gateway: GatewayDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """上架: an evaluated algorithm whose latest score passes (else 409 NOT_PASSED) becomes usable in the zone,
    where entry owners admit it. Only from evaluated (else 409 ILLEGAL_STATUS); not by the submitter's org."""
    return _write(gateway, principal, "list", [algorithm_id], idempotency_key, response, started)


@router.post(
    "/{algorithm_id}/delisting",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Delist an algorithm (REVIEWER)",
    responses=_ERRORS,  # type: ignore[arg-type]
)
def delist_algorithm(
    algorithm_id: AlgorithmId,
    body: DelistingCreate,
    principal: ReviewerDep,
    gateway: GatewayDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """下架 for a reason, final: every admission of it stops counting at once (the resolver and the zone refuse
    it as soon as the delisting is indexed). A fixed algorithm comes back as a new version."""
    return _write(gateway, principal, "delist", [algorithm_id, body.reason], idempotency_key, response, started)


# ---------------------------------------------------------------- admissions per catalog entry


@entry_router.get("/{entry_id}/algorithms", summary="Algorithms an entry admits", responses=_ERRORS)  # type: ignore[arg-type]
def list_entry_algorithms(
    entry_id: EntryId, session: SessionDep, principal: PrincipalDep, page: PageDep
) -> EntryAlgorithmsPublic:
    """The algorithms the entry's owner admitted, with their current status; only listed ones are `usable`
    (an admission of a delisted algorithm stays until withdrawn, but counts for nothing)."""
    _visible_entry(session, entry_id, principal)
    return crud_algorithms.entry_algorithms(session, entry_id, page.limit, page.offset)


@entry_router.post(
    "/{entry_id}/algorithms",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Admit a listed algorithm for an entry (REGISTRAR of the owner)",
    responses=_ERRORS,  # type: ignore[arg-type]
)
def admit_algorithm(
    entry_id: EntryId,
    body: AdmissionCreate,
    principal: RegistrarDep,
    session: SessionDep,
    gateway: GatewayDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """Let a listed algorithm (else 409 ALGORITHM_NOT_LISTED) run on the entry's data in the zone. Only a
    REGISTRAR of the entry's owner org (else 403 NOT_ENTRY_OWNER); twice is 409 ALREADY_ADMITTED."""
    _visible_entry(session, entry_id, principal)
    return _write(gateway, principal, "admit", [entry_id, body.algorithm_id], idempotency_key, response, started)


@entry_router.delete(
    "/{entry_id}/algorithms/{algorithm_id}",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Withdraw an admission (REGISTRAR of the owner)",
    responses=_ERRORS,  # type: ignore[arg-type]
)
def withdraw_algorithm(
    entry_id: EntryId,
    algorithm_id: AlgorithmId,
    principal: RegistrarDep,
    session: SessionDep,
    gateway: GatewayDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """Stop admitting an algorithm for the entry (404 NOT_ADMITTED if it is not admitted)."""
    _visible_entry(session, entry_id, principal)
    return _write(gateway, principal, "withdraw", [entry_id, algorithm_id], idempotency_key, response, started)
