"""What every write route shares: the Idempotency-Key header, simulate-and-queue through the gateway, the 202 answer."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import Depends, Header, Response

from chain_gateway.errors import ContractRevert
from chain_gateway.gateway import Gateway
from chain_gateway.outbox import Operation
from registry_api.auth import Principal
from registry_api.deps import PrincipalDep
from registry_api.errors import ApiError, revert_error
from registry_api.schemas.common import Links, OperationAccepted

__all__ = ["IdempotencyKey", "MemberDep", "Started", "accepted", "enqueue"]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="the same key with the same body answers the same operation; with another body 409",
    ),
]


def _started() -> float:
    return time.time()


Started = Annotated[float, Depends(_started)]  # when the request arrived: older operations are idempotent replays


def require_member(principal: PrincipalDep) -> Principal:
    """Any account of an active member org (no particular role): what a sharing request or a relay needs."""
    if principal.org_id is None:
        raise ApiError(403, "ORG_UNKNOWN", f"organisation {principal.org_code} is not (yet) a consortium member")
    if not principal.org_active:
        raise ApiError(403, "ORG_INACTIVE", f"organisation {principal.org_code} is suspended from the consortium")
    if not principal.account_in_org:  # a token pairing org A with org B's account would sign as org B
        raise ApiError(
            403,
            "ACCOUNT_NOT_IN_ORG",
            f"account {principal.account} of the token is not an account of {principal.org_code} on-chain",
        )
    return principal


MemberDep = Annotated[Principal, Depends(require_member)]


def enqueue(
    gateway: Gateway,
    principal: Principal,
    contract: str,
    function: str,
    args: list[Any],
    idempotency_key: str | None,
    paths: dict[str, str] | None = None,
) -> Operation:
    """Simulate (a contract refusal raises the mapped ApiError at once) and queue a call signed by the caller.

    `paths` maps a value named in a contract error (e.g. a device code) to the request field it came from.
    """
    try:
        return gateway.enqueue(
            org_code=principal.org_code,
            account=principal.account,
            contract=contract,
            function=function,
            args=args,
            idempotency_key=idempotency_key,
        )
    except ContractRevert as exc:
        raise revert_error(exc, paths) from exc


def accepted(op: Operation, response: Response, started: float) -> OperationAccepted:
    """The 202 answer: the operation to follow (Location), flagged when an Idempotency-Key replayed it."""
    link = f"/v1/operations/{op.id}"
    response.headers["Location"] = link
    if op.created_at < started:
        response.headers["Idempotent-Replayed"] = "true"
    return OperationAccepted(operation_id=op.id, status=op.status, links=Links(operation=link))
