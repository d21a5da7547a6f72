"""/v1/audit/records/{kind}/{id}: one record's on-chain trail, the mirror compared with it, its state proved.

Any authenticated member may audit a record: the answer is computed from the chain (trail, storage proofs) and
compared with the mirror, so it reveals no more than the chain shows every member node. See
registry_api.audit.trail.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from chain_gateway.rpc import JsonRpcClient
from indexer.errors import ChainMovedError
from registry_api.audit.trail import audit_record
from registry_api.audit.trail_errors import RecordAuditError
from registry_api.audit.trail_kinds import KINDS
from registry_api.deps import PageDep, PrincipalDep
from registry_api.errors import ApiError
from registry_api.schemas.audit_records import RecordAuditPublic
from registry_api.schemas.common import ErrorPublic

__all__ = ["router"]

router = APIRouter(prefix="/v1/audit", tags=["audit"])

_KINDS_HELP = "; ".join(f"`{name}`: {kind.description}" for name, kind in KINDS.items())
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic, "description": text}
    for code, text in {
        401: "no or bad token (UNAUTHENTICATED)",
        404: "RECORD_NOT_FOUND: neither the chain nor the mirror has the record",
        409: "MIRROR_NOT_SYNCED: the indexer has not run yet",
        422: "UNKNOWN_KIND (field kind), INVALID_ID (field id)",
        503: "CHAIN_UNAVAILABLE, CHAIN_MOVED (reorganising under the audit) or DATABASE_UNAVAILABLE",
    }.items()
}


@router.get(
    "/records/{kind}/{id}",
    summary="Audit one record against the chain: its trail, hashes and proven state",
    responses=_ERRORS,  # type: ignore[arg-type]
)
def get_record_audit(
    request: Request,
    kind: Annotated[str, Path(description=f"the kind of record: {_KINDS_HELP}", examples=["device"])],
    id: Annotated[str, Path(min_length=1, max_length=80, description="the record's id (code or number)")],
    _: PrincipalDep,
    page: PageDep,
) -> RecordAuditPublic:
    """Every event that shaped the record, read from the chain (eth_getLogs on its contract by its indexed id, up to
    the mirror's checkpoint block), each with block hash, time, tx hash, log index and the transaction's signer;
    sharing decisions also carry their approver's EIP-712 provenance. Checks, each with expected (chain) and actual
    (mirror) values: the mirror's row equals the trail replayed (field by field) and so do its history rows; the
    hashes recomputed from the mirrored record equal the chain's; the record's contract storage, proved with
    eth_getProof at the checkpoint block and verified here against the block's state root, equals the mirror.
    `verified` is true when every check passed. The page (`limit`, `offset`) applies to the trail."""
    services = request.app.state.services
    rpc: JsonRpcClient = services.rpcs[0]  # the long-timeout client (the health one gives up after a second)
    try:
        audit = audit_record(rpc, services.engine, services.deployment, kind, id)
    except RecordAuditError as exc:
        raise ApiError(exc.status, exc.code, exc.message, field=exc.field) from exc
    except ChainMovedError as exc:
        raise ApiError(503, "CHAIN_MOVED", f"the chain reorganised while the record was read: {exc}") from exc
    return RecordAuditPublic.of(audit, page.limit, page.offset)
