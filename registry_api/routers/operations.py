"""/v1/operations: follow a write from queued to confirmed (or failed, with the decoded reason)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from registry_api import crud
from registry_api.deps import GatewayDep, PrincipalDep
from registry_api.errors import ApiError
from registry_api.schemas.common import VALIDATION_ERROR_RESPONSE, ErrorPublic
from registry_api.schemas.operations import OperationPublic

__all__ = ["router"]

router = APIRouter(prefix="/v1/operations", tags=["operations"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "no or bad token"},
    422: VALIDATION_ERROR_RESPONSE,
    404: {"model": ErrorPublic, "description": "no such operation of the caller's org (OPERATION_NOT_FOUND)"},
}


@router.get("/{operation_id}", summary="One operation", responses=_ERRORS)
def get_operation(
    operation_id: Annotated[str, Path(min_length=1, max_length=64)], gateway: GatewayDep, principal: PrincipalDep
) -> OperationPublic:
    """Status (queued, submitted, mined, confirmed, failed), tx hash and block; the decoded error when failed.

    Only the org that made an operation sees it; to others it does not exist.
    """
    op = gateway.get_operation(operation_id)
    if op is None or op.org_code != principal.org_code:
        raise ApiError(404, "OPERATION_NOT_FOUND", f"no operation {operation_id} of {principal.org_code}")
    return crud.operation_public(op)
