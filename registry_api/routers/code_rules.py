"""/v1/code-rules: how codes of each device type are formed (prefix, length, characters, regex, example)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from sqlmodel import select

from indexer.models import CodeRule
from registry_api import crud
from registry_api.deps import PageDep, PrincipalDep, SessionDep
from registry_api.errors import ApiError
from registry_api.schemas.code_rules import CodeRulePublic, CodeRulesPublic
from registry_api.schemas.common import VALIDATION_ERROR_RESPONSE, ErrorPublic

__all__ = ["router"]

router = APIRouter(prefix="/v1/code-rules", tags=["code rules"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "no or bad token"},
    422: VALIDATION_ERROR_RESPONSE,
    404: {"model": ErrorPublic, "description": "no rule for this type (UNKNOWN_TYPE)"},
}


@router.get("", summary="List code rules", responses=_ERRORS)
def list_code_rules(session: SessionDep, _: PrincipalDep, page: PageDep) -> CodeRulesPublic:
    """Every device type's code rule, with a regular expression that matches valid codes and an example."""
    data, count = crud.list_code_rules(session, page.limit, page.offset)
    return CodeRulesPublic(data=data, count=count)


@router.get("/{type}", summary="One type's code rule", responses=_ERRORS)
def get_code_rule(
    type: Annotated[str, Path(min_length=1, max_length=64)], session: SessionDep, _: PrincipalDep
) -> CodeRulePublic:
    rule = session.exec(select(CodeRule).where(CodeRule.type_name == type)).first()
    if rule is None:
        raise ApiError(404, "UNKNOWN_TYPE", f"no code rule for device type {type!r}", field="type")
    return crud.code_rule_public(rule)
