"""/v1/audit/approvals: each sharing decision proved from the chain, and the mirror's rows compared with the logs.

Any authenticated member may audit: the answers are computed from the chain (and the mirror they are compared
with), so they reveal no more than the chain does to every member node. See registry_api.audit.approvals.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from chain_gateway.deployments import Deployment
from chain_gateway.rpc import JsonRpcClient
from registry_api.audit.approvals import (
    BadBlockRange,
    DecisionNotFound,
    NotADecision,
    audit_approvals,
    decision_provenance,
)
from registry_api.deps import PageDep, PrincipalDep
from registry_api.errors import ApiError
from registry_api.schemas.audit_approvals import ApprovalsAudit, DecisionProvenance
from registry_api.schemas.common import MAX_ID, ErrorPublic

__all__ = ["router"]

router = APIRouter(prefix="/v1/audit", tags=["audit"])

TX_HASH_PATTERN = r"^0x[0-9a-fA-F]{64}$"
MAX_LOG_INDEX = 2**31 - 1  # JSON-RPC quantities of log indexes stay far below this
TxHash = Annotated[str, Path(pattern=TX_HASH_PATTERN, description="the transaction's hash, 0x + 64 hex digits")]
LogIndex = Annotated[int, Path(ge=0, le=MAX_LOG_INDEX, description="the log's index in its block")]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic, "description": text}
    for code, text in {
        401: "no or bad token (UNAUTHENTICATED)",
        404: "DECISION_NOT_FOUND (no such transaction or log), NOT_A_DECISION (the log is another event)",
        422: "VALIDATION_ERROR (bad tx hash, negative block...), BAD_BLOCK_RANGE",
        503: "CHAIN_UNAVAILABLE or DATABASE_UNAVAILABLE",
    }.items()
}


def _chain(request: Request) -> tuple[JsonRpcClient, Deployment]:
    services = request.app.state.services
    rpc: JsonRpcClient = services.rpcs[0]  # the long-timeout client (the health one gives up after a second)
    return rpc, services.deployment


@router.get("/approvals", summary="Audit the sharing decisions of a block range or a request", responses=_ERRORS)  # type: ignore[arg-type]
def list_approvals(
    request: Request,
    _: PrincipalDep,
    page: PageDep,
    request_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="only this sharing request's")] = None,
    from_block: Annotated[int | None, Query(ge=0, le=MAX_ID, description="first block (default: deployment's)")] = None,
    to_block: Annotated[int | None, Query(ge=0, le=MAX_ID, description="last block (default: the chain head)")] = None,
) -> ApprovalsAudit:
    """Every approval, refusal and revocation logged in the range, each proved from the chain (its signer
    recovered from the EIP-712 signature and shown to hold the owner org's APPROVER role at that block), and the
    mirror's `sharing_approvals` rows compared with the logs: `mirror_findings` names every edited, forged or
    missing row of the range. The page (`limit`, `offset`) applies to the proved decisions."""
    if from_block is not None and to_block is not None and from_block > to_block:
        raise ApiError(
            422, "BAD_BLOCK_RANGE", f"from_block {from_block} is after to_block {to_block}", field="from_block"
        )
    rpc, deployment = _chain(request)
    try:
        return audit_approvals(
            rpc,
            deployment,
            request.app.state.engine,
            request_id=request_id,
            from_block=from_block,
            to_block=to_block,
            limit=page.limit,
            offset=page.offset,
        )
    except BadBlockRange as exc:
        raise ApiError(422, "BAD_BLOCK_RANGE", str(exc), field="from_block") from exc


@router.get(
    "/approvals/{tx_hash}/{log_index}",
    summary="The provenance of one sharing decision",
    responses=_ERRORS,  # type: ignore[arg-type]
)
def get_approval(request: Request, _: PrincipalDep, tx_hash: TxHash, log_index: LogIndex) -> DecisionProvenance:
    """The decision logged at `log_index` by `tx_hash`: the call that carried it, the EIP-712 digest rebuilt, the
    signer recovered, and every check with its expected and actual values (`verified` when none failed)."""
    rpc, deployment = _chain(request)
    try:
        return decision_provenance(rpc, deployment, tx_hash, log_index)
    except DecisionNotFound as exc:
        raise ApiError(404, "DECISION_NOT_FOUND", str(exc), field="tx_hash") from exc
    except NotADecision as exc:
        raise ApiError(404, "NOT_A_DECISION", str(exc), field="log_index") from exc
