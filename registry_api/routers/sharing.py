"""/v1/sharing-requests and /v1/grants: request data, relay the approvers' own signed decisions, list grants.

The gateway never decides: an approval, refusal or revocation is the EIP-712 signature of an APPROVER account
of the entry's owner org, made on the approver's side over GET .../approval-typed-data. The route checks it
locally first (signature, deadline, approver role, nonce) so that a bad one is refused at once with a clear
code, then the caller org's account relays it and the contract verifies it again.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from eth_utils import to_checksum_address
from fastapi import APIRouter, Path, Query, Request, Response, status
from sqlmodel import Session, col, select

from chain_gateway.eip712 import Decision, decision_typed_data, recover_signer
from chain_gateway.outbox import Operation
from chain_gateway.rpc import JsonRpcClient
from indexer.models import CatalogEntry, SharingRequest
from registry_api import crud_sharing
from registry_api.auth import Principal
from registry_api.deps import GatewayDep, PageDep, PrincipalDep, SessionDep
from registry_api.encoding import from_unix
from registry_api.errors import ApiError
from registry_api.schemas.catalog import FORM_BITS
from registry_api.schemas.common import MAX_ID, ErrorPublic, OperationAccepted
from registry_api.schemas.sharing import (
    SECONDS_PER_DAY,
    GrantPublic,
    GrantsPublic,
    SharingRequestCreate,
    SharingRequestPublic,
    SharingRequestsPublic,
    SignedDecision,
    SignedReasonedDecision,
)
from registry_api.state import PENDING_STATUSES
from registry_api.writes import IdempotencyKey, MemberDep, Started, accepted, enqueue

__all__ = ["grants_router", "router"]

router = APIRouter(prefix="/v1/sharing-requests", tags=["sharing"])
grants_router = APIRouter(prefix="/v1/grants", tags=["sharing"])

CONTRACT = "SharingAgreements"
MAX_DEADLINE_SECONDS = 7 * SECONDS_PER_DAY
RequestId = Annotated[int, Path(ge=1, le=MAX_ID, description="the request's id (also its grant's)")]
DecisionName = Literal["approve", "refuse", "revoke"]
_DECISIONS: dict[str, Decision] = {"approve": Decision.APPROVE, "refuse": Decision.REFUSE, "revoke": Decision.REVOKE}

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic, "description": text}
    for code, text in {
        401: "no or bad token (UNAUTHENTICATED)",
        403: "BAD_SIGNATURE, NOT_AN_APPROVER, SIGNATURE_EXPIRED, NOT_OWNER_ORG, ORG_UNKNOWN",
        404: "no such request visible to the caller (REQUEST_NOT_FOUND), ENTRY_NOT_FOUND",
        409: "NOT_SHAREABLE, SIGNATURE_REPLAYED, NONCE_MISMATCH, ALREADY_APPROVED, REQUEST_NOT_PENDING, NOT_GRANTED",
        422: "VALIDATION_ERROR, FORM_NOT_ALLOWED, OWN_ENTRY, ...",
        503: "CHAIN_UNAVAILABLE or DATABASE_UNAVAILABLE",
    }.items()
}


def _rpc(request: Request) -> JsonRpcClient:
    rpc: JsonRpcClient = request.app.state.gateway.rpc
    return rpc


def _clock(request: Request) -> crud_sharing.ChainClock:
    clock: crud_sharing.ChainClock | None = getattr(request.app.state, "chain_clock", None)
    if clock is None:
        clock = request.app.state.chain_clock = crud_sharing.ChainClock()
    return clock


def _now(request: Request, session: Session) -> int | None:
    return _clock(request).now(session, request.app.state.services.health_rpc)


def _contract_address(request: Request) -> str:
    address: str = request.app.state.services.deployment["contracts"][CONTRACT]["address"]
    return address


def _found(session: Session, principal: Principal, request_id: int, now: int | None, grant: bool = False) -> Any:
    found = crud_sharing.get_request(session, principal, request_id, now, grant)
    if found is None:
        raise ApiError(404, "REQUEST_NOT_FOUND", f"no sharing request {request_id} visible to {principal.org_code}")
    return found


def _require_status(row: SharingRequest, decision: str) -> None:
    if decision == "revoke":
        if row.status != "granted":
            raise ApiError(409, "NOT_GRANTED", f"request {row.request_id} is {row.status}, not granted")
    elif row.status != "pending":
        raise ApiError(409, "REQUEST_NOT_PENDING", f"request {row.request_id} is {row.status}, no longer pending")


def _require_approver(session: Session, row: SharingRequest, approver: str, owner: str | None) -> None:
    if not crud_sharing.is_owner_approver(session, approver, row.owner_org_id):
        raise ApiError(
            403,
            "NOT_AN_APPROVER",
            f"{approver} is not an APPROVER account of {owner or row.owner_org_id}, the entry's owner",
            field="approver",
        )


def _not_yet_approved(session: Session, row: SharingRequest, approver: str) -> None:
    if crud_sharing.has_approved(session, row.request_id, approver):
        raise ApiError(
            409, "ALREADY_APPROVED", f"{approver} has already approved request {row.request_id}", field="approver"
        )


# ---------------------------------------------------------------- requests


@router.post("", status_code=status.HTTP_202_ACCEPTED, summary="Request to use a catalog entry", responses=_ERRORS)  # type: ignore[arg-type]
def create_request(
    body: SharingRequestCreate,
    principal: MemberDep,
    session: SessionDep,
    gateway: GatewayDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """Ask the owner of a published entry for one form of it, for a purpose and a number of days.

    A not-shareable entry answers 409 NOT_SHAREABLE; a form the entry does not allow 422 FORM_NOT_ALLOWED.
    Unconditional entries are granted in the same transaction; others wait for the owner's approvers.
    """
    entry = session.get(CatalogEntry, body.entry_id)
    if entry is None or (entry.status == "draft" and entry.owner_org_id != principal.org_id):
        raise ApiError(404, "ENTRY_NOT_FOUND", f"no catalog entry {body.entry_id}", field="entry_id")
    if entry.share_condition == "not_shareable":
        raise ApiError(
            409, "NOT_SHAREABLE", f"catalog entry {body.entry_id} is not shareable (不予共享)", field="entry_id"
        )
    args = [body.entry_id, FORM_BITS[body.form], body.purpose, body.duration_days * SECONDS_PER_DAY]
    op = enqueue(gateway, principal, CONTRACT, "request", args, idempotency_key)
    return accepted(op, response, started)


@router.get("", summary="List sharing requests", responses=_ERRORS)  # type: ignore[arg-type]
def list_requests(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    status: Annotated[
        Literal["pending", "granted", "refused", "revoked", "active", "expired"] | None,
        Query(description="active/expired: granted and before/after expires_at by the chain's time"),
    ] = None,
    entry: Annotated[int | None, Query(ge=1, le=MAX_ID, description="catalog entry id")] = None,
    requester: Annotated[str | None, Query(description="requester org code")] = None,
    owner: Annotated[str | None, Query(description="owner org code")] = None,
    pending_for_me: Annotated[
        bool, Query(description="pending requests for entries of the caller's org (its approvers' queue)")
    ] = False,
) -> SharingRequestsPublic:
    """Requests the caller may see (its org's, as requester or owner; all for auditors), newest first."""
    filters = crud_sharing.RequestFilter(
        status=status,
        entry_id=entry,
        requester=requester,
        owner=owner,
        pending_for=(principal.org_id if principal.org_id is not None else -1) if pending_for_me else None,
    )
    now = _now(request, session)
    data, count = crud_sharing.list_requests(session, principal, filters, now, page.limit, page.offset, grant=False)
    return SharingRequestsPublic(data=data, count=count)


@router.get("/{request_id}", summary="One sharing request", responses=_ERRORS)  # type: ignore[arg-type]
def get_request(
    request_id: RequestId, request: Request, session: SessionDep, principal: PrincipalDep
) -> SharingRequestPublic:
    """The request, its status and every signed decision on it (approver, nonce, tx hash, relaying account)."""
    _, public = _found(session, principal, request_id, _now(request, session))
    result: SharingRequestPublic = public
    return result


@router.get("/{request_id}/approval-typed-data", summary="The EIP-712 typed data an approver signs", responses=_ERRORS)  # type: ignore[arg-type]
def approval_typed_data(
    request_id: RequestId,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    approver: Annotated[str, Query(pattern=r"^0x[0-9a-fA-F]{40}$", description="the approver's account")],
    decision: Annotated[DecisionName, Query()] = "approve",
    reason: Annotated[str, Query(max_length=1_000, description="for refuse and revoke")] = "",
    deadline_seconds: Annotated[
        int, Query(ge=30, le=MAX_DEADLINE_SECONDS, description="validity from the chain's latest block time")
    ] = 600,
) -> dict[str, Any]:
    """The JSON `eth_signTypedData_v4` takes, with the approver's current nonce and a deadline.

    Sign it with the approver's own key (a wallet, or `dirchain approve`) and POST the signature to
    `/approvals` (approve), `/refusals` (refuse) or `/v1/grants/{id}/revoke` (revoke), with the same nonce,
    deadline and reason.
    """
    row, public = _found(session, principal, request_id, _now(request, session))
    account = to_checksum_address(approver)
    _require_status(row, decision)
    if decision != "approve" and not reason.strip():
        raise ApiError(422, "VALIDATION_ERROR", f"a {decision} needs a reason", field="reason")
    _require_approver(session, row, account, public.owner_org)
    if decision == "approve":
        _not_yet_approved(session, row, account)
    rpc = _rpc(request)
    gateway = request.app.state.gateway
    return decision_typed_data(
        chain_id=gateway.chain_id,
        contract=_contract_address(request),
        request_id=request_id,
        decision=_DECISIONS[decision],
        reason=reason if decision != "approve" else "",
        nonce=crud_sharing.approver_nonce(rpc, _contract_address(request), account),
        deadline=crud_sharing.latest_block_time(rpc) + deadline_seconds,
    )


def _in_outbox(session_engine: Any, signature: str) -> bool:
    """True if an operation not yet confirmed or failed already carries this signature (a replay in flight)."""
    with Session(session_engine) as session:
        found = session.exec(
            select(Operation.id).where(
                Operation.contract == CONTRACT,
                col(Operation.status).in_(PENDING_STATUSES),
                col(Operation.args_json).contains(signature),
            )
        ).first()
    return found is not None


def _relay(
    decision: DecisionName,
    request_id: int,
    body: SignedDecision,
    reason: str,
    request: Request,
    session: Session,
    principal: Principal,
    response: Response,
    started: float,
    idempotency_key: str | None,
) -> OperationAccepted:
    """Check a signed decision locally, then relay it with the caller org's account (the contract re-checks)."""
    gateway = request.app.state.gateway
    approver = to_checksum_address(body.approver)
    signature = body.signature.lower()
    args: list[Any] = [request_id, approver, body.nonce, body.deadline, signature]
    if decision != "approve":
        args.insert(1, reason)
    if idempotency_key is not None and _replayed_key(gateway.engine, principal.account, idempotency_key):
        return accepted(enqueue(gateway, principal, CONTRACT, decision, args, idempotency_key), response, started)
    row, public = _found(session, principal, request_id, _now(request, session))
    if row.owner_org_id != principal.org_id:
        raise ApiError(
            403,
            "NOT_OWNER_ORG",
            f"decisions on request {request_id} are relayed by {public.owner_org}, the entry's owner",
        )
    _require_status(row, decision)
    rpc = _rpc(request)
    if body.deadline <= crud_sharing.latest_block_time(rpc):
        raise ApiError(
            403, "SIGNATURE_EXPIRED", f"the signature's deadline {body.deadline} has passed", field="deadline"
        )
    typed = decision_typed_data(
        chain_id=gateway.chain_id,
        contract=_contract_address(request),
        request_id=request_id,
        decision=_DECISIONS[decision],
        reason=reason,
        nonce=body.nonce,
        deadline=body.deadline,
    )
    try:
        signer = recover_signer(typed, signature)
    except Exception as exc:  # eth_keys/eth_account raise several kinds for a malformed signature
        raise ApiError(403, "BAD_SIGNATURE", f"the signature cannot be recovered: {exc}", field="signature") from None
    if signer != approver:
        raise ApiError(
            403,
            "BAD_SIGNATURE",
            f"the signature is not {approver}'s over this {decision} (nonce, deadline, reason and request included)",
            field="signature",
            signer=signer,
        )
    _require_approver(session, row, approver, public.owner_org)
    expected = crud_sharing.approver_nonce(rpc, _contract_address(request), approver)
    if body.nonce < expected or _in_outbox(gateway.engine, signature):
        raise ApiError(
            409,
            "SIGNATURE_REPLAYED",
            f"nonce {body.nonce} of {approver} is already used (the next is {expected}): a signature counts once",
            field="nonce",
        )
    if body.nonce > expected:
        raise ApiError(409, "NONCE_MISMATCH", f"{approver}'s next nonce is {expected}, not {body.nonce}", field="nonce")
    if decision == "approve":
        _not_yet_approved(session, row, approver)
    op = enqueue(gateway, principal, CONTRACT, decision, args, idempotency_key)
    return accepted(op, response, started)


def _replayed_key(engine: Any, account: str, key: str) -> bool:
    with Session(engine) as session:
        found = session.exec(
            select(Operation.id).where(
                Operation.account == to_checksum_address(account), Operation.idempotency_key == key
            )
        ).first()
    return found is not None


@router.post(
    "/{request_id}/approvals",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Relay an approver's signed approval",
    responses=_ERRORS,  # type: ignore[arg-type]
)
def approve(
    request_id: RequestId,
    body: SignedDecision,
    request: Request,
    session: SessionDep,
    principal: MemberDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """`{approver, signature, nonce, deadline}` from the approval typed data; the owner org relays it.

    Refused at once: 403 BAD_SIGNATURE (not the approver's signature over this decision), NOT_AN_APPROVER,
    SIGNATURE_EXPIRED; 409 SIGNATURE_REPLAYED (nonce used), ALREADY_APPROVED, REQUEST_NOT_PENDING.
    The request is granted when its grade's number of approvals is reached.
    """
    return _relay("approve", request_id, body, "", request, session, principal, response, started, idempotency_key)


@router.post(
    "/{request_id}/refusals",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Relay an approver's signed refusal",
    responses=_ERRORS,  # type: ignore[arg-type]
)
def refuse(
    request_id: RequestId,
    body: SignedReasonedDecision,
    request: Request,
    session: SessionDep,
    principal: MemberDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """`{approver, signature, nonce, deadline, reason}`: one approver's signed refusal closes the request."""
    return _relay(
        "refuse", request_id, body, body.reason, request, session, principal, response, started, idempotency_key
    )


# ---------------------------------------------------------------- grants


@grants_router.get("", summary="List grants", responses=_ERRORS)  # type: ignore[arg-type]
def list_grants(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    status: Annotated[
        Literal["active", "expired", "revoked", "all"],
        Query(description="active (default), expired or revoked grants, or all of them"),
    ] = "active",
    entry: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    requester: Annotated[str | None, Query(description="requester org code")] = None,
    owner: Annotated[str | None, Query(description="owner org code")] = None,
) -> GrantsPublic:
    """Grants the caller may see, with the approvers' addresses and the tx hashes of their approvals.

    `expired` compares expires_at with the time of the latest mirrored block (the chain's clock).
    """
    now = _now(request, session)
    filters = crud_sharing.RequestFilter(
        status=None if status == "all" else status,
        entry_id=entry,
        requester=requester,
        owner=owner,
        grants_only=True,
    )
    data, count = crud_sharing.list_requests(session, principal, filters, now, page.limit, page.offset, grant=True)
    return GrantsPublic(data=data, count=count, chain_time=None if now is None else from_unix(now))


@grants_router.get("/{grant_id}", summary="One grant", responses=_ERRORS)  # type: ignore[arg-type]
def get_grant(grant_id: RequestId, request: Request, session: SessionDep, principal: PrincipalDep) -> GrantPublic:
    row, public = _found(session, principal, grant_id, _now(request, session), grant=True)
    if row.grant_tx_hash is None:
        raise ApiError(404, "GRANT_NOT_FOUND", f"request {grant_id} was never granted ({row.status})")
    result: GrantPublic = public
    return result


@grants_router.post(
    "/{grant_id}/revoke",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Relay an approver's signed revocation",
    responses=_ERRORS,  # type: ignore[arg-type]
)
def revoke(
    grant_id: RequestId,
    body: SignedReasonedDecision,
    request: Request,
    session: SessionDep,
    principal: MemberDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """`{approver, signature, nonce, deadline, reason}` over the revoke typed data; the grant ends at once."""
    return _relay(
        "revoke", grant_id, body, body.reason, request, session, principal, response, started, idempotency_key
    )
