"""/v1/reviews: joint review (联审) of construction projects of planned front ends.

A REGISTRAR files a project for its org; a REVIEWER of the lead org of the project's domain (imagery: public
security, city management: city management commission, emergency: emergency bureau, other: economy and
information bureau) approves it, which puts its devices on the ledger as planned devices of the applicant in the
same transaction, or refuses it with a reason; the applicant may withdraw it while it is filed. Every write is
signed by the caller's org and answers 202 with an operation; the contract's refusals come back at once
(simulation) with stable codes: REVIEW_NOT_FOUND, NOT_LEAD_ORG, REVIEW_NOT_FILED, NOT_APPLICANT, NO_LEAD_ORG,
DUPLICATE_CODE (a planned code filed on the ledger meanwhile: the approval is refused as a whole), ...
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status

from registry_api import crud, crud_carriers, crud_reviews
from registry_api.auth import Principal
from registry_api.deps import GatewayDep, PageDep, PrincipalDep, RegistrarDep, SessionDep, require_role
from registry_api.encoding import code_rule_violation
from registry_api.errors import ApiError
from registry_api.schemas.common import MAX_ID, ErrorPublic, OperationAccepted
from registry_api.schemas.reviews import (
    DEFAULT_RADIUS_M,
    MAX_RADIUS_M,
    PlannedDeviceCreate,
    RefusalCreate,
    ReviewCreate,
    ReviewDetailPublic,
    ReviewDomain,
    ReviewsPublic,
    ReviewStatus,
)
from registry_api.writes import IdempotencyKey, Started, accepted, enqueue

__all__ = ["router"]

router = APIRouter(prefix="/v1/reviews", tags=["reviews"])

CONTRACT = "ReviewBoard"
ProjectId = Annotated[int, Path(ge=1, le=MAX_ID, description="the review project's id")]
ReviewerDep = Annotated[Principal, Depends(require_role("REVIEWER"))]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic, "description": text}
    for code, text in {
        401: "no or bad token (UNAUTHENTICATED)",
        403: "ROLE_REQUIRED (with the missing `role`), NOT_LEAD_ORG, NOT_APPLICANT, ORG_UNKNOWN, ORG_INACTIVE",
        404: "REVIEW_NOT_FOUND",
        409: "REVIEW_NOT_FILED, DUPLICATE_CODE, CODE_IN_OPEN_PROJECT, NO_LEAD_ORG, DEVICES_MISMATCH, "
        "IDEMPOTENCY_CONFLICT",
        422: "VALIDATION_ERROR, NOT_PLANNED, UNKNOWN_TYPE, CODE_RULE_VIOLATION, DUPLICATE_CODE_IN_REQUEST, "
        "UNKNOWN_CARRIER, PERSONAL_DATA_NOT_ALLOWED",
        503: "CHAIN_UNAVAILABLE or DATABASE_UNAVAILABLE",
    }.items()
}


def _check_planned(session: SessionDep, devices: list[PlannedDeviceCreate]) -> dict[str, int]:
    """What the chain checks only at approval, checked at filing: unique codes that follow their type's rule, not
    on the ledger nor planned by another open project, and named carriers that exist. Returns type ids by name."""
    where: dict[str, int] = {}
    for i, device in enumerate(devices):
        if device.code in where:
            raise ApiError(
                422,
                "DUPLICATE_CODE_IN_REQUEST",
                f"code {device.code} is planned twice in the project",
                field=f"devices[{i}].code",
                first=f"devices[{where[device.code]}].code",
            )
        where[device.code] = i
    rules = crud.code_rules_by_type(session, [d.type for d in devices])
    for i, device in enumerate(devices):
        rule = rules.get(device.type)
        if rule is None:
            message = f"no code rule for device type {device.type!r}; see GET /v1/code-rules"
            raise ApiError(422, "UNKNOWN_TYPE", message, field=f"devices[{i}].type")
        why = code_rule_violation(device.code, rule.prefix, rule.length, rule.charset)
        if why is not None:
            message = f"code {device.code!r} breaks the rule of {rule.type_name}: {why}"
            raise ApiError(422, "CODE_RULE_VIOLATION", message, field=f"devices[{i}].code")
    on_ledger = crud_reviews.codes_on_ledger(session, list(where))
    if on_ledger:
        code = min(on_ledger, key=where.__getitem__)
        message = f"device code {code} is already on the ledger"
        raise ApiError(409, "DUPLICATE_CODE", message, field=f"devices[{where[code]}].code")
    planned = crud_reviews.codes_in_open_projects(session, list(where))
    if planned:
        code = min(planned, key=where.__getitem__)
        message = f"device code {code} is planned by project {planned[code]}, still under review"
        raise ApiError(
            409, "CODE_IN_OPEN_PROJECT", message, field=f"devices[{where[code]}].code", project_id=planned[code]
        )
    for i, device in enumerate(devices):
        carrier = device.attributes.get("carrier")
        if carrier is not None and crud_carriers.get_carrier(session, carrier) is None:
            message = f"carrier {carrier} is not registered (GET /v1/carriers)"
            raise ApiError(422, "UNKNOWN_CARRIER", message, field=f"devices[{i}].attributes.carrier")
    return {name: rule.type_id for name, rule in rules.items()}


@router.post("", status_code=status.HTTP_202_ACCEPTED, summary="File a project for joint review", responses=_ERRORS)  # type: ignore[arg-type]
def file_review(
    body: ReviewCreate,
    principal: RegistrarDep,
    session: SessionDep,
    gateway: GatewayDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """File a construction project of 1..200 planned devices (device objects as POST /v1/devices takes them, status
    planned; `attributes.carrier` names the carrier a device will be mounted on) for the caller's org.

    The lead org of `domain` reviews it against the devices and carriers around each planned one
    (GET /v1/reviews/{id}); its id is in the operation's ProjectFiled event and in GET /v1/reviews once indexed.
    """
    type_ids = _check_planned(session, body.devices)
    paths = {d.code: f"devices[{i}]" for i, d in enumerate(body.devices)}
    args = crud_reviews.file_args(body, type_ids)
    return accepted(enqueue(gateway, principal, CONTRACT, "file", args, idempotency_key, paths), response, started)


@router.get("", summary="List review projects", responses=_ERRORS)  # type: ignore[arg-type]
def list_reviews(
    session: SessionDep,
    _: PrincipalDep,
    page: PageDep,
    status: Annotated[ReviewStatus | None, Query(description="filed | approved | refused | withdrawn")] = None,
    domain: Annotated[ReviewDomain | None, Query(description="imagery | city_management | emergency | other")] = None,
    applicant: Annotated[str | None, Query(max_length=64, description="applicant org code")] = None,
) -> ReviewsPublic:
    """Projects by id with `{"data", "count"}`, each with its status, lead org and decision."""
    filters = crud_reviews.ReviewFilter(status=status, domain=domain, applicant=applicant)
    data, count = crud_reviews.list_reviews(session, filters, page.limit, page.offset)
    return ReviewsPublic(data=data, count=count)


@router.get("/{project_id}", summary="The review view of a project", responses=_ERRORS)  # type: ignore[arg-type]
def get_review(
    project_id: ProjectId,
    session: SessionDep,
    _: PrincipalDep,
    radius_m: Annotated[
        float, Query(gt=0, le=MAX_RADIUS_M, description="metres around each planned device")
    ] = DEFAULT_RADIUS_M,
) -> ReviewDetailPublic:
    """The project, its planned devices and, for each, the existing devices of the same type within `radius_m`
    (nearest first, with distances; retired and replaced ones left out) and the carriers with a spare slot within
    it: what the lead org weighs against duplicate building."""
    detail = crud_reviews.review_detail(session, project_id, radius_m)
    if detail is None:
        raise ApiError(404, "REVIEW_NOT_FOUND", f"no review project {project_id} (or not indexed yet)", field="id")
    return detail


def _filed(session: SessionDep, project_id: int) -> list[dict[str, Any]]:
    if crud_reviews.get_project(session, project_id) is None:
        raise ApiError(404, "REVIEW_NOT_FOUND", f"no review project {project_id} (or not indexed yet)", field="id")
    return crud_reviews.filed_devices(session, project_id)


@router.post(
    "/{project_id}/approval",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Approve a project (REVIEWER of the lead org)",
    responses=_ERRORS,  # type: ignore[arg-type]
)
def approve_review(
    project_id: ProjectId,
    principal: ReviewerDep,
    session: SessionDep,
    gateway: GatewayDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """Approve a filed project: its devices (re-sent from the mirror, checked on-chain against the filed hash) go on
    the ledger as planned devices of the applicant in the same transaction, all or none: a code filed on the ledger
    meanwhile refuses the approval with 409 DUPLICATE_CODE at `devices[i].code` (refuse the project instead)."""
    devices = _filed(session, project_id)
    paths = {d["code"]: f"devices[{i}]" for i, d in enumerate(devices)}
    op = enqueue(gateway, principal, CONTRACT, "approve", [project_id, devices], idempotency_key, paths)
    return accepted(op, response, started)


@router.post(
    "/{project_id}/refusal",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Refuse a project (REVIEWER of the lead org)",
    responses=_ERRORS,  # type: ignore[arg-type]
)
def refuse_review(
    project_id: ProjectId,
    body: RefusalCreate,
    principal: ReviewerDep,
    gateway: GatewayDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """Refuse a filed project for a reason (e.g. existing devices of the same type nearby); nothing is registered."""
    op = enqueue(gateway, principal, CONTRACT, "refuse", [project_id, body.reason], idempotency_key)
    return accepted(op, response, started)


@router.post(
    "/{project_id}/withdrawal",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Withdraw a filed project (REGISTRAR of the applicant)",
    responses=_ERRORS,  # type: ignore[arg-type]
)
def withdraw_review(
    project_id: ProjectId,
    principal: RegistrarDep,
    gateway: GatewayDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """Withdraw the caller's org's project while it is filed (403 NOT_APPLICANT for another org's)."""
    op = enqueue(gateway, principal, CONTRACT, "withdraw", [project_id], idempotency_key)
    return accepted(op, response, started)
