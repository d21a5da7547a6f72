"""Code rules per device type, with a regular expression and an example so a new user can form valid codes."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["CodeRulePublic", "CodeRulesPublic"]


class CodeRulePublic(BaseModel):
    type: str = Field(examples=["camera.road"])
    type_id: int
    prefix: str = Field(examples=["BJ-CAMR-"])
    length: int = Field(description="characters in a whole code, prefix included")
    charset: list[str] = Field(description="characters allowed after the prefix: digits, upper, lower, hyphen")
    pattern: str = Field(examples=[r"^BJ\-CAMR\-[0-9]{12}$"], description="Python/JavaScript regular expression")
    example: str = Field(examples=["BJ-CAMR-110105000001"])


class CodeRulesPublic(BaseModel):
    data: list[CodeRulePublic]
    count: int
