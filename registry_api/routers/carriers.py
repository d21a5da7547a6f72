"""/v1/carriers and /v1/carrier-reuse-requests: carriers (感知载体, "多杆合一") and requests to reuse them.

A REGISTRAR registers carriers of its org and sets how much of them its own devices use; another org's
REGISTRAR applies to reuse spare slots and ports; a REGISTRAR of the owner org grants (taking the capacity at
once, re-checked then) or refuses with a reason; the requester may withdraw an open request. Every write is signed
by the caller's org and answers 202 with an operation; the contract's refusals come back at once with stable codes:
CARRIER_NOT_FOUND, CARRIER_DUPLICATE, CARRIER_NOT_OWNED, OWN_CARRIER, NO_CAPACITY, USAGE_EXCEEDS_CAPACITY,
REUSE_REQUEST_NOT_FOUND, REUSE_REQUEST_CLOSED, NOT_REQUESTER.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response, status

from registry_api import crud_carriers
from registry_api.deps import GatewayDep, PageDep, PrincipalDep, RegistrarDep, SessionDep
from registry_api.errors import ApiError
from registry_api.routers.devices import MAX_NEAR_RADIUS_M, _parse_floats
from registry_api.schemas.carriers import (
    CARRIER_CODE_PATTERN,
    CarrierCreate,
    CarrierDetailPublic,
    CarrierKind,
    CarriersPublic,
    ReuseDecisionCreate,
    ReuseRequestCreate,
    ReuseRequestPublic,
    ReuseRequestsPublic,
    ReuseStatus,
    UsageUpdate,
)
from registry_api.schemas.common import MAX_ID, ErrorPublic, OperationAccepted
from registry_api.writes import IdempotencyKey, Started, accepted, enqueue

__all__ = ["requests_router", "router"]

router = APIRouter(prefix="/v1/carriers", tags=["carriers"])
requests_router = APIRouter(prefix="/v1/carrier-reuse-requests", tags=["carriers"])

CONTRACT = "CarrierRegistry"
CodePath = Annotated[str, Path(pattern=CARRIER_CODE_PATTERN, description="the carrier's code")]
RequestId = Annotated[int, Path(ge=1, le=MAX_ID, description="the reuse request's id")]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic, "description": text}
    for code, text in {
        401: "no or bad token (UNAUTHENTICATED)",
        403: "ROLE_REQUIRED (with the missing `role`), CARRIER_NOT_OWNED, NOT_REQUESTER, ORG_UNKNOWN, ORG_INACTIVE",
        404: "CARRIER_NOT_FOUND, REUSE_REQUEST_NOT_FOUND",
        409: "CARRIER_DUPLICATE, NO_CAPACITY, REUSE_REQUEST_CLOSED, IDEMPOTENCY_CONFLICT",
        422: "VALIDATION_ERROR, BAD_LOCATION, USAGE_EXCEEDS_CAPACITY, OWN_CARRIER, PERSONAL_DATA_NOT_ALLOWED",
        503: "CHAIN_UNAVAILABLE or DATABASE_UNAVAILABLE",
    }.items()
}


# ---------------------------------------------------------------- carriers


@router.post("", status_code=status.HTTP_202_ACCEPTED, summary="Register a carrier", responses=_ERRORS)  # type: ignore[arg-type]
def register_carrier(
    body: CarrierCreate,
    principal: RegistrarDep,
    gateway: GatewayDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """Register a carrier of the caller's org with its slots and ports, nothing in use yet (POST .../usage)."""
    args = [crud_carriers.carrier_input(body)]
    op = enqueue(gateway, principal, CONTRACT, "register", args, idempotency_key)
    return accepted(op, response, started)


@router.get("", summary="List carriers", responses=_ERRORS)  # type: ignore[arg-type]
def list_carriers(
    session: SessionDep,
    _: PrincipalDep,
    page: PageDep,
    owner: Annotated[str | None, Query(max_length=64, description="owner org code, e.g. BJ-CMC")] = None,
    district: Annotated[int | None, Query(ge=100_000, le=999_999, description="6-digit division code")] = None,
    kind: Annotated[CarrierKind | None, Query(description="pole | mount | cabinet | building")] = None,
    has_spare: Annotated[bool | None, Query(description="true: a free mounting slot; false: none")] = None,
    near: Annotated[str | None, Query(description="lat,lon,radius_m: nearest first, with distance_m")] = None,
) -> CarriersPublic:
    """Carriers of the mirror by code (or by distance with `near`), `{"data": [...], "count": total}`."""
    point = None
    if near is not None:
        lat, lon, radius = _parse_floats("near", near, 3)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180 and 0 < radius <= MAX_NEAR_RADIUS_M):
            message = f"near must be lat,lon,radius_m with 0 < radius_m <= {MAX_NEAR_RADIUS_M:.0f}"
            raise ApiError(422, "VALIDATION_ERROR", message, field="near")
        point = (lat, lon, radius)
    filters = crud_carriers.CarrierFilter(owner=owner, district=district, kind=kind, has_spare=has_spare, near=point)
    data, count = crud_carriers.list_carriers(session, filters, page.limit, page.offset)
    return CarriersPublic(data=data, count=count)


@router.get("/{code}", summary="One carrier", responses=_ERRORS)  # type: ignore[arg-type]
def get_carrier(code: CodePath, session: SessionDep, principal: PrincipalDep) -> CarrierDetailPublic:
    """The carrier with its capacity and use, and the reuse requests the caller may see (all for its owner)."""
    detail = crud_carriers.carrier_detail(session, code, principal.org_id)
    if detail is None:
        raise ApiError(404, "CARRIER_NOT_FOUND", f"carrier {code} is not registered (or not indexed yet)", field="code")
    return detail


@router.post(
    "/{code}/usage",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Set how much of a carrier is in use (REGISTRAR of the owner)",
    responses=_ERRORS,  # type: ignore[arg-type]
)
def set_usage(
    code: CodePath,
    body: UsageUpdate,
    principal: RegistrarDep,
    gateway: GatewayDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """The slots and ports the owner's devices use, at most the capacity (else 422 USAGE_EXCEEDS_CAPACITY)."""
    args = [code, body.slots_used, body.ports_used]
    op = enqueue(gateway, principal, CONTRACT, "setUsage", args, idempotency_key)
    return accepted(op, response, started)


@router.post(
    "/{code}/reuse-requests",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Apply to reuse another org's carrier (REGISTRAR)",
    responses=_ERRORS,  # type: ignore[arg-type]
)
def request_reuse(
    code: CodePath,
    body: ReuseRequestCreate,
    principal: RegistrarDep,
    gateway: GatewayDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """Apply for spare slots and/or ports of another org's carrier (409 NO_CAPACITY beyond what is free now; 422
    OWN_CARRIER for the caller's own); its owner decides. The id is in GET /v1/carrier-reuse-requests once indexed."""
    args = [code, body.slots, body.ports, body.purpose]
    op = enqueue(gateway, principal, CONTRACT, "requestReuse", args, idempotency_key)
    return accepted(op, response, started)


# ---------------------------------------------------------------- reuse requests


@requests_router.get("", summary="Reuse requests made or received by the caller's org", responses=_ERRORS)  # type: ignore[arg-type]
def list_reuse_requests(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    role: Annotated[
        Literal["requester", "owner"] | None, Query(description="requester: made; owner: received; both if absent")
    ] = None,
    status: Annotated[ReuseStatus | None, Query(description="requested | granted | refused | withdrawn")] = None,
    carrier: Annotated[str | None, Query(max_length=64, description="carrier code")] = None,
) -> ReuseRequestsPublic:
    """The caller's org's reuse requests, as requester or as the carrier's owner, newest first."""
    if principal.org_id is None:
        return ReuseRequestsPublic(data=[], count=0)
    filters = crud_carriers.ReuseFilter(principal.org_id, role=role, status=status, carrier=carrier)
    data, count = crud_carriers.list_reuse_requests(session, filters, page.limit, page.offset)
    return ReuseRequestsPublic(data=data, count=count)


@requests_router.get("/{request_id}", summary="One reuse request", responses=_ERRORS)  # type: ignore[arg-type]
def get_reuse_request(request_id: RequestId, session: SessionDep, principal: PrincipalDep) -> ReuseRequestPublic:
    """A reuse request of the caller's org as requester or owner (404 for anyone else's)."""
    found = crud_carriers.get_reuse_request(session, request_id, principal.org_id)
    if found is None:
        message = f"no reuse request {request_id} of your organisation (or not indexed yet)"
        raise ApiError(404, "REUSE_REQUEST_NOT_FOUND", message, field="id")
    return found


@requests_router.post(
    "/{request_id}/decision",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Grant or refuse a reuse request (REGISTRAR of the owner)",
    responses=_ERRORS,  # type: ignore[arg-type]
)
def decide_reuse(
    request_id: RequestId,
    body: ReuseDecisionCreate,
    principal: RegistrarDep,
    gateway: GatewayDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """A grant takes the slots and ports at once (409 NO_CAPACITY if they are no longer free); a refusal needs a
    reason. Only an open request (409 REUSE_REQUEST_CLOSED)."""
    args = [request_id, body.grant, body.reason]
    op = enqueue(gateway, principal, CONTRACT, "decideReuse", args, idempotency_key)
    return accepted(op, response, started)


@requests_router.post(
    "/{request_id}/withdrawal",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Withdraw an open reuse request (REGISTRAR of the requester)",
    responses=_ERRORS,  # type: ignore[arg-type]
)
def withdraw_reuse(
    request_id: RequestId,
    principal: RegistrarDep,
    gateway: GatewayDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """Withdraw the caller's org's open request (403 NOT_REQUESTER for another org's)."""
    op = enqueue(gateway, principal, CONTRACT, "withdrawReuse", [request_id], idempotency_key)
    return accepted(op, response, started)
