"""Consortium proposals, and code rules proposed by the lead department of their domain."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from registry_api.schemas.common import StrictModel

__all__ = ["CodeRuleProposal", "ProposalPublic", "ProposalsPublic"]

Charset = Literal["digits", "upper", "lower", "hyphen"]


class CodeRuleProposal(StrictModel):
    """A code rule for one device type, proposed to the consortium (it applies once k of n ADMIN orgs voted)."""

    type_id: int = Field(ge=1, le=65_535, description="the device type's number on-chain")
    type: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9]+(\.[a-z0-9-]+)*$", examples=["camera.road"])
    prefix: str = Field(min_length=1, max_length=32, pattern=r"^[A-Z0-9-]+$", examples=["BJ-CAMR-"])
    length: int = Field(ge=2, le=64, description="characters in a whole code, prefix included")
    charset: list[Charset] = Field(min_length=1, description="characters allowed after the prefix")
    description: str = Field(default="", max_length=500, description="why; shown to the voters")

    @model_validator(mode="after")
    def _prefix_shorter_than_code(self) -> CodeRuleProposal:
        if len(self.prefix) >= self.length:
            raise ValueError(f"length must exceed the prefix's {len(self.prefix)} characters")
        return self


class ProposalPublic(BaseModel):
    id: int
    proposer: str
    proposer_org: str | None
    target: str = Field(description="the contract the proposal calls")
    call: str | None = Field(description="the decoded function, e.g. setCodeRule, when known")
    args: dict[str, object] | None = Field(description="its decoded arguments, when known")
    description: str
    votes: int
    executed: bool
    tx_hash: str
    block_number: int


class ProposalsPublic(BaseModel):
    data: list[ProposalPublic]
    count: int
