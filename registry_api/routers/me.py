"""/v1/me: who the bearer token acts as (org, account, on-chain roles); the console's log-in check."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from registry_api import crud
from registry_api.deps import PrincipalDep, SessionDep
from registry_api.schemas.common import ErrorPublic

__all__ = ["MePublic", "router"]

router = APIRouter(prefix="/v1/me", tags=["members"])

_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorPublic, "description": "no or bad token"}}


class MePublic(BaseModel):
    org_code: str
    org_name: str | None  # None until the org is mirrored
    account: str
    roles: list[str]  # on-chain, as mirrored
    org_active: bool
    token_label: str
    expires_at: float | None  # unix seconds; None: never


@router.get("", summary="Who this token acts as", responses=_ERRORS)
def who_am_i(session: SessionDep, principal: PrincipalDep) -> MePublic:
    """The token's org and account and the account's roles on-chain: what the console shows and offers."""
    members, _count = crud.list_members(session, 1, 0, code=principal.org_code)
    return MePublic(
        org_code=principal.org_code,
        org_name=members[0].name if members else None,
        account=principal.account,
        roles=sorted(principal.roles),
        org_active=principal.org_active,
        token_label=principal.token_label,
        expires_at=principal.expires_at,
    )
