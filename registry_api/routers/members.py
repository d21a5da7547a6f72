"""/v1/members: the consortium's member organisations with their accounts and on-chain roles."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from registry_api import crud
from registry_api.deps import PageDep, PrincipalDep, SessionDep
from registry_api.errors import ApiError
from registry_api.schemas.common import VALIDATION_ERROR_RESPONSE, ErrorPublic
from registry_api.schemas.members import MemberPublic, MembersPublic

__all__ = ["router"]

router = APIRouter(prefix="/v1/members", tags=["members"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "no or bad token"},
    422: VALIDATION_ERROR_RESPONSE,
    404: {"model": ErrorPublic, "description": "no such member (MEMBER_NOT_FOUND)"},
}


@router.get("", summary="List members", responses=_ERRORS)
def list_members(session: SessionDep, _: PrincipalDep, page: PageDep) -> MembersPublic:
    """Member orgs by org id: code, name, kind, active, and each account with its roles."""
    data, count = crud.list_members(session, page.limit, page.offset)
    return MembersPublic(data=data, count=count)


@router.get("/{code}", summary="One member", responses=_ERRORS)
def get_member(
    code: Annotated[str, Path(min_length=1, max_length=64)], session: SessionDep, _: PrincipalDep
) -> MemberPublic:
    data, _count = crud.list_members(session, 1, 0, code=code)
    if not data:
        raise ApiError(404, "MEMBER_NOT_FOUND", f"no member organisation {code}", field="code")
    return data[0]
