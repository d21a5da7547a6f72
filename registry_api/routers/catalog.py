"""/v1/catalog: file, search (full text with facets), read, revise and publish data catalog entries."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status

from registry_api import crud_catalog
from registry_api.deps import GatewayDep, PageDep, PrincipalDep, RegistrarDep, SessionDep
from registry_api.errors import ApiError
from registry_api.schemas.catalog import (
    CatalogEntriesPublic,
    CatalogEntryBase,
    CatalogEntryCreate,
    CatalogEntryPublic,
    CatalogEntryUpdate,
    CatalogStatusChange,
    CatalogVersionsPublic,
    LineagePublic,
)
from registry_api.schemas.common import MAX_ID, ErrorPublic, OperationAccepted
from registry_api.writes import IdempotencyKey, Started, accepted, enqueue
from registry_api.zone.masking import check_schema
from registry_api.zone.policy import disclosure_problems

__all__ = ["router"]

router = APIRouter(prefix="/v1/catalog", tags=["catalog"])

CONTRACT = "DataCatalog"
STATUS_CODES = {"published": 2, "deprecated": 3}  # IDataCatalog.EntryStatus
EntryId = Annotated[int, Path(ge=1, le=MAX_ID, description="the entry's id")]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic, "description": text}
    for code, text in {
        401: "no or bad token (UNAUTHENTICATED)",
        403: "role missing (ROLE_REQUIRED) or the entry belongs to another org (ENTRY_NOT_OWNED)",
        404: "no such entry (ENTRY_NOT_FOUND)",
        409: "ILLEGAL_STATUS or IDEMPOTENCY_CONFLICT",
        422: "VALIDATION_ERROR, UNKNOWN_DEVICE, UNKNOWN_UPSTREAM, ...",
        503: "CHAIN_UNAVAILABLE or DATABASE_UNAVAILABLE",
    }.items()
}


def _lineage_field(exc: ApiError, body: CatalogEntryBase) -> ApiError:
    """Point a lineage refusal at the list item at fault: device_codes[3], upstream[0]."""
    if exc.code == "UNKNOWN_DEVICE" and exc.extra.get("device_code") in body.device_codes:
        exc.field = f"device_codes[{body.device_codes.index(exc.extra['device_code'])}]"
    elif exc.code == "UNKNOWN_UPSTREAM" and exc.extra.get("entry_id") in body.upstream:
        exc.field = f"upstream[{body.upstream.index(exc.extra['entry_id'])}]"
    return exc


def _check_schema(body: CatalogEntryBase) -> None:
    """The zone must be able to honour the schema: field masking rules and the optional disclosure settings.

    422 with the problem's code (INVALID_SCHEMA, INVALID_MASK, INVALID_DISCLOSURE, ...) at `schema.<path>`,
    before anything is signed: a rule the zone cannot apply must not reach the chain.
    """
    problems = check_schema(body.schema_) + disclosure_problems(body.schema_)
    if problems:
        first = problems[0]
        raise ApiError(
            422,
            first.code,
            first.message,
            field=f"schema.{first.field}",
            problems=[{"field": f"schema.{p.field}", "code": p.code, "message": p.message} for p in problems],
        )


def _visible_entry(session: SessionDep, entry_id: int, org_id: int | None) -> CatalogEntryPublic:
    entry = crud_catalog.get_entry(session, entry_id, org_id)
    if entry is None:
        raise ApiError(404, "ENTRY_NOT_FOUND", f"no catalog entry {entry_id} (or not indexed yet)", field="id")
    return entry


@router.post("", status_code=status.HTTP_202_ACCEPTED, summary="File a catalog entry", responses=_ERRORS)  # type: ignore[arg-type]
def create_entry(
    body: CatalogEntryCreate,
    principal: RegistrarDep,
    gateway: GatewayDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """A new entry (version 1.0) owned by the caller's org, a draft or (`publish`) published at once.

    Lineage devices must be on the ledger (422 UNKNOWN_DEVICE at `device_codes[i]`) and upstream entries must
    exist (422 UNKNOWN_UPSTREAM); the entry's id is in the operation's CatalogEntryVersioned event and in
    GET /v1/catalog once indexed.
    """
    _check_schema(body)
    args = [crud_catalog.entry_input(body), body.publish]
    try:
        op = enqueue(gateway, principal, CONTRACT, "createEntry", args, idempotency_key)
    except ApiError as exc:
        raise _lineage_field(exc, body) from None
    return accepted(op, response, started)


@router.get("", summary="Search the catalog", responses=_ERRORS)  # type: ignore[arg-type]
def list_entries(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    q: Annotated[
        str | None, Query(max_length=200, description="words of the title, classification or schema fields")
    ] = None,
    classification: Annotated[str | None, Query(description="a classification and those below it")] = None,
    grade: Annotated[int | None, Query(ge=1, le=4)] = None,
    owner: Annotated[str | None, Query(description="owner org code")] = None,
    share_condition: Annotated[Literal["unconditional", "conditional", "not_shareable"] | None, Query()] = None,
    form: Annotated[Literal["raw", "desensitized", "result_only"] | None, Query()] = None,
    status: Annotated[Literal["draft", "published", "deprecated"] | None, Query()] = None,
    device: Annotated[str | None, Query(description="entries whose lineage names this device code")] = None,
) -> CatalogEntriesPublic:
    """Entries by id with `{"data", "count", "facets"}`; `q` is full-text (Chinese titles found by any word).

    Facets count every matching entry by classification, grade, owner, share condition and form.
    Drafts are seen only by their owner org.
    """
    filters = crud_catalog.CatalogFilter(
        viewer_org_id=principal.org_id,
        q=q.strip() if q else None,
        classification=classification,
        grade=grade,
        owner=owner,
        share_condition=share_condition,
        form=form,
        status=status,
        device=device,
    )
    data, count, facets = crud_catalog.list_entries(session, request.app.state.engine, filters, page.limit, page.offset)
    return CatalogEntriesPublic(data=data, count=count, facets=facets)


@router.get("/{entry_id}", summary="One catalog entry", responses=_ERRORS)  # type: ignore[arg-type]
def get_entry(entry_id: EntryId, session: SessionDep, principal: PrincipalDep) -> CatalogEntryPublic:
    return _visible_entry(session, entry_id, principal.org_id)


@router.patch(
    "/{entry_id}", status_code=status.HTTP_202_ACCEPTED, summary="Revise an entry (new version)", responses=_ERRORS
)  # type: ignore[arg-type]
def revise_entry(
    entry_id: EntryId,
    body: CatalogEntryUpdate,
    principal: RegistrarDep,
    session: SessionDep,
    gateway: GatewayDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """A new version with the whole record: major+1.0 with `major`, else major.minor+1; the status is kept."""
    _visible_entry(session, entry_id, principal.org_id)
    _check_schema(body)
    args = [entry_id, crud_catalog.entry_input(body), body.major]
    try:
        op = enqueue(gateway, principal, CONTRACT, "reviseEntry", args, idempotency_key)
    except ApiError as exc:
        raise _lineage_field(exc, body) from None
    return accepted(op, response, started)


@router.post(
    "/{entry_id}/status", status_code=status.HTTP_202_ACCEPTED, summary="Publish or deprecate", responses=_ERRORS
)  # type: ignore[arg-type]
def change_status(
    entry_id: EntryId,
    body: CatalogStatusChange,
    principal: RegistrarDep,
    session: SessionDep,
    gateway: GatewayDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """draft -> published -> deprecated (or draft -> deprecated); anything else is 409 ILLEGAL_STATUS."""
    _visible_entry(session, entry_id, principal.org_id)
    args = [entry_id, STATUS_CODES[body.status]]
    op = enqueue(gateway, principal, CONTRACT, "setStatus", args, idempotency_key)
    return accepted(op, response, started)


@router.get("/{entry_id}/versions", summary="An entry's versions", responses=_ERRORS)  # type: ignore[arg-type]
def list_versions(
    entry_id: EntryId, session: SessionDep, principal: PrincipalDep, page: PageDep
) -> CatalogVersionsPublic:
    """Every version (1.0, 1.1, 2.0, ...) with its full record, version hash and transaction, oldest first."""
    _visible_entry(session, entry_id, principal.org_id)
    data, count = crud_catalog.list_versions(session, entry_id, page.limit, page.offset)
    return CatalogVersionsPublic(data=data, count=count)


@router.get("/{entry_id}/lineage", summary="An entry's lineage", responses=_ERRORS)  # type: ignore[arg-type]
def get_lineage(entry_id: EntryId, session: SessionDep, principal: PrincipalDep) -> LineagePublic:
    """The producing devices and upstream entries of the current version, and the entries derived from it."""
    entry = _visible_entry(session, entry_id, principal.org_id)
    return crud_catalog.lineage(session, entry, principal.org_id)
