"""/v1/zone: data-zone jobs (results only), rows behind a capability token, and usage receipts with their proofs.

Refusals: a job the resolver denies answers 403 with the deny reason as `code` (NO_GRANT, EXPIRED, REVOKED,
FORM_NOT_ALLOWED, ALGORITHM_NOT_ADMITTED, BUDGET_EXHAUSTED, NOT_SHAREABLE, ENTRY_NOT_PUBLISHED); a listed
algorithm whose code hash no built-in implementation has, 422 ALGORITHM_NOT_IMPLEMENTED; bad params, 422
INVALID_PARAMS naming `params.<field>`; an epsilon over the entry's per-job cap, 422 EPSILON_TOO_LARGE. Rows
need the `X-Capability` header: a token that fails the data holder's offline check answers 403 with the
check's code (BAD_SIGNATURE, TOKEN_EXPIRED, WRONG_AUDIENCE, UNKNOWN_KEY, WRONG_ENTRY, FORM_NOT_COVERED, ...).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, status
from sqlmodel import Session

from indexer.models import CatalogEntry
from registry_api.anchoring import receipt_inclusion
from registry_api.auth import Principal
from registry_api.capability import CapabilityError
from registry_api.deps import PrincipalDep, SessionDep, SettingsDep
from registry_api.encoding import from_unix
from registry_api.errors import ApiError
from registry_api.models import ZoneJob
from registry_api.receipts import RECEIPT_ABI_TYPES, leaf_hash
from registry_api.resolver import MICROS, ResolverError
from registry_api.routers.resolver import resolver_error
from registry_api.schemas.common import DEFAULT_LIMIT, MAX_ID, MAX_LIMIT, MAX_OFFSET, ErrorPublic
from registry_api.schemas.zone import AnchorBatchPublic, DataRowsPublic, JobCreate, JobPublic, ReceiptPublic
from registry_api.writes import MemberDep
from registry_api.zone.errors import ZoneError
from registry_api.zone.service import JobOutcome, JobRequest, ZoneDenied, ZoneService

__all__ = ["router"]

router = APIRouter(prefix="/v1/zone", tags=["data zone"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic, "description": text}
    for code, text in {
        401: "no or bad token (UNAUTHENTICATED); rows without X-Capability (CAPABILITY_REQUIRED)",
        403: "a deny reason (NO_GRANT, EXPIRED, REVOKED, FORM_NOT_ALLOWED, ALGORITHM_NOT_ADMITTED, BUDGET_EXHAUSTED, "
        "NOT_SHAREABLE, ENTRY_NOT_PUBLISHED); a capability check's code (BAD_SIGNATURE, TOKEN_EXPIRED, ...)",
        404: "ENTRY_NOT_FOUND, ALGORITHM_NOT_FOUND, JOB_NOT_FOUND, RECEIPT_NOT_FOUND",
        422: "VALIDATION_ERROR, INVALID_PARAMS, EPSILON_TOO_LARGE, ALGORITHM_NOT_IMPLEMENTED, DATASET_NOT_AVAILABLE",
        503: "MIRROR_NOT_READY, DATABASE_UNAVAILABLE",
    }.items()
}


def get_zone(request: Request) -> ZoneService:
    zone: ZoneService = request.app.state.zone
    return zone


ZoneDep = Annotated[ZoneService, Depends(get_zone)]


def _zone_error(exc: ZoneError) -> ApiError:
    """One boundary from the zone's errors to the API's (see the module docstring for the statuses)."""
    if isinstance(exc, ZoneDenied):
        return ApiError(403, exc.code, exc.message, field=exc.field, decision="deny")
    field = exc.field
    if exc.code == "INVALID_PARAMS":
        field = f"params.{field}" if field else "params"
    return ApiError(422, exc.code, exc.message, field=field)


def _job_public(job: ZoneJob, remaining: float | None = None) -> JobPublic:
    return JobPublic(
        id=job.job_id,
        org=job.org_code,
        entry_id=job.entry_id,
        entry_version_hash=job.entry_version_hash,
        algorithm_id=job.algorithm_id,
        algorithm_code_hash=job.algorithm_code_hash,
        params=json.loads(job.params),
        grant_id=job.grant_id or None,
        epsilon_spent=job.epsilon_micros / MICROS,
        result=json.loads(job.result),
        suppressed=job.suppressed,
        receipt_id=job.receipt_id,
        decided_block=job.decided_block,
        created_at=from_unix(int(job.created_at)),
        remaining_epsilon=remaining,
    )


@router.post("/jobs", status_code=status.HTTP_201_CREATED, summary="Run an algorithm in the zone", responses=_ERRORS)  # type: ignore[arg-type]
def create_job(body: JobCreate, principal: MemberDep, zone: ZoneDep) -> JobPublic:
    """Run a listed algorithm admitted for the entry on the entry's data, where the data is; only groups under
    disclosure control come back (groups below k suppressed, OpenDP noise spending `epsilon` of the grant's
    budget). The spend and the job's usage receipt are written in one transaction."""
    try:
        outcome: JobOutcome = zone.run_job(
            principal, JobRequest(body.entry_id, body.algorithm_id, body.params, body.epsilon)
        )
    except ResolverError as exc:
        raise resolver_error(exc) from exc
    except ZoneError as exc:
        raise _zone_error(exc) from exc
    return _job_public(outcome.job, outcome.remaining_epsilon)


@router.get("/jobs/{job_id}", summary="One job of the caller's org", responses=_ERRORS)  # type: ignore[arg-type]
def get_job(
    job_id: Annotated[str, Path(min_length=1, max_length=64)], principal: PrincipalDep, zone: ZoneDep
) -> JobPublic:
    """The job and its released result; another org's jobs do not exist for the caller."""
    job = zone.get_job(principal, job_id)
    if job is None:
        raise ApiError(404, "JOB_NOT_FOUND", f"no job {job_id} of {principal.org_code}")
    return _job_public(job)


@router.get("/entries/{entry_id}/rows", summary="Rows of an entry, against a capability token", responses=_ERRORS)  # type: ignore[arg-type]
def get_rows(
    entry_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    principal: PrincipalDep,
    zone: ZoneDep,
    capability: Annotated[
        str | None, Header(alias="X-Capability", description="a capability token from POST /v1/resolve")
    ] = None,
    form: Annotated[Literal["desensitized", "raw"], Query(description="raw needs a read_raw token")] = "desensitized",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> DataRowsPublic:
    """A page of the entry's rows, served as a data holder serves them: the capability token is verified offline
    against the published keys (signature, expiry, audience, entry, form) and must be the caller org's; in the
    desensitized form personal fields are masked or dropped per the entry's schema."""
    if not capability:
        raise ApiError(
            401, "CAPABILITY_REQUIRED", "send X-Capability: <token from POST /v1/resolve>", field="X-Capability"
        )
    try:
        page = zone.rows(principal, entry_id, form, capability, limit, offset)
    except CapabilityError as exc:
        raise ApiError(403, exc.code, exc.message, field="X-Capability") from exc
    except ZoneError as exc:
        raise _zone_error(exc) from exc
    claims = page.claims
    return DataRowsPublic(
        entry_id=entry_id,
        form=form,
        data=page.rows,
        count=page.count,
        limit=limit,
        offset=offset,
        capability={k: claims.get(k) for k in ("jti", "grant_id", "action", "form", "exp")},
    )


def _may_see_receipt(session: Session, principal: Principal, org_code: str, entry_id: int) -> bool:
    if principal.org_code == org_code or principal.has_role("AUDITOR"):
        return True
    entry = session.get(CatalogEntry, entry_id)
    return entry is not None and entry.owner_org_id == principal.org_id


@router.get("/receipts/{receipt_id}", summary="A usage receipt and its inclusion proof", responses=_ERRORS)  # type: ignore[arg-type]
def get_receipt(
    receipt_id: Annotated[int, Path(ge=1, lt=2**63)],
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
) -> ReceiptPublic:
    """The receipt, its hash (keccak256 of the ABI encoding of `hash_abi_types`), and once its batch is
    anchored (as mirrored): the on-chain batch, root, tx hash and block, and the Merkle proof that
    `SharingAgreements.verifyReceipt(batch_id, id, receipt_hash, proof)` accepts. Visible to the receipt's
    org, the entry's owner org and auditors."""
    found = receipt_inclusion(session, receipt_id, settings.zone_operator_org)
    if found is None or not _may_see_receipt(session, principal, found.receipt.org_code, found.receipt.entry_id):
        raise ApiError(404, "RECEIPT_NOT_FOUND", f"no usage receipt {receipt_id} visible to {principal.org_code}")
    r, batch = found.receipt, found.batch
    return ReceiptPublic(
        id=r.receipt_id,
        kind=r.kind,  # type: ignore[arg-type]
        ref=r.ref,
        account=r.account,
        org=r.org_code,
        entry_id=r.entry_id,
        entry_version_hash=r.entry_version_hash,
        action=r.action,
        form=r.form,
        grant_id=r.grant_id,
        algorithm_code_hash=r.algorithm_code_hash,
        result_hash=r.result_hash,
        epsilon_micros=r.epsilon_micros,
        epsilon_spent=r.epsilon_micros / MICROS,
        decided_block=r.decided_block,
        issued_at=r.issued_at,
        receipt_hash=r.receipt_hash,
        hash_abi_types=list(RECEIPT_ABI_TYPES),
        leaf="0x" + leaf_hash(r.receipt_id, r.receipt_hash).hex(),
        anchored=batch is not None and found.proof is not None,
        batch=None
        if batch is None
        else AnchorBatchPublic(
            batch_id=batch.batch_id,
            merkle_root=batch.merkle_root,
            first_receipt=batch.first_receipt,
            last_receipt=batch.last_receipt,
            relayer=batch.relayer,
            tx_hash=batch.tx_hash,
            block_number=batch.block_number,
            anchored_at=from_unix(batch.block_time),
        ),
        proof=found.proof,
        root_matches=None if batch is None or found.local_root is None else found.local_root == batch.merkle_root,
        anchor_status=found.pending.status if found.pending is not None else (None if batch else "unbatched"),
        anchor_operation_id=found.pending.operation_id if found.pending is not None else None,
    )
