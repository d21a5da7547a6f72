"""Member organisations of the consortium, their accounts and roles (from the mirror)."""

from __future__ import annotations

from pydantic import BaseModel

__all__ = ["AccountPublic", "MemberPublic", "MembersPublic"]


class AccountPublic(BaseModel):
    address: str
    roles: list[str]


class MemberPublic(BaseModel):
    code: str
    org_id: int
    name: str
    kind: str
    active: bool
    accounts: list[AccountPublic]


class MembersPublic(BaseModel):
    data: list[MemberPublic]
    count: int
