"""The resolver's question and answer: a decision, its constraints, its proof and the capability token."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from registry_api.schemas.common import MAX_ID, StrictModel

__all__ = [
    "BlockRef",
    "CapabilityPublic",
    "DecisionConstraints",
    "DecisionProof",
    "JwksPublic",
    "ResolveCreate",
    "ResolvePublic",
]

ActionName = Literal["read_raw", "read_desensitized", "compute"]


class ResolveCreate(StrictModel):
    """May the caller's org do `action` on catalog entry `entry_id` now?"""

    entry_id: int = Field(ge=1, le=MAX_ID)
    action: ActionName = Field(description="read_raw | read_desensitized | compute")
    algorithm_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="compute: the algorithm to run")
    epsilon: float | None = Field(
        default=None, gt=0, le=100, description="compute: the epsilon the job will spend (checked against the budget)"
    )


class BlockRef(BaseModel):
    number: int
    hash: str


class DecisionProof(BaseModel):
    """Where the decision comes from: the owner org itself, or a grant and its on-chain trail."""

    basis: Literal["owner", "grant"] | None = Field(description="owner | grant (permits); null when denied")
    grant_id: int | None = Field(description="the grant used (permit) or judged (EXPIRED, REVOKED, ...)")
    grant_form: str | None = None
    request_tx_hash: str | None = None
    approval_tx_hashes: list[str] = Field(default_factory=list)
    grant_tx_hash: str | None = None
    grant_block: int | None = None
    entry_version_hash: str
    block: BlockRef = Field(description="the mirror's last indexed block, the decision's basis")
    chain_time: str | None = Field(description="that block's time (ISO 8601), by which expiry is judged")


class DecisionConstraints(BaseModel):
    purpose: str | None = None
    expires_at: str | None = Field(default=None, description="the grant's expiry (chain time, ISO 8601)")
    admitted_algorithms: list[int] | None = Field(
        default=None, description="compute: listed algorithms the entry admits"
    )
    k: int | None = Field(default=None, description="compute: minimum group size released")
    epsilon_budget: float | None = Field(default=None, description="compute: the grant's total epsilon")
    remaining_epsilon: float | None = Field(default=None, description="compute: epsilon left before this job")
    max_epsilon_per_job: float | None = None


class CapabilityPublic(BaseModel):
    """An ES256 JWT for the data holder (verify with GET /v1/resolver/jwks); its issuance has a receipt."""

    token: str
    token_type: Literal["JWT"] = "JWT"
    kid: str
    jti: str
    issued_at: str
    expires_at: str
    receipt_id: int
    receipt_hash: str


class ResolvePublic(BaseModel):
    decision: Literal["permit", "deny"]
    reason: str | None = Field(
        description="when denied: NO_GRANT, EXPIRED, REVOKED, FORM_NOT_ALLOWED, ALGORITHM_NOT_ADMITTED, "
        "BUDGET_EXHAUSTED, NOT_SHAREABLE or ENTRY_NOT_PUBLISHED"
    )
    message: str
    entry_id: int
    action: ActionName
    form: str = Field(description="the form the action delivers: raw | desensitized | result_only")
    org: str
    account: str
    algorithm_id: int | None = None
    algorithm_code_hash: str | None = None
    constraints: DecisionConstraints
    proof: DecisionProof
    capability: CapabilityPublic | None = Field(description="permits only")


class JwksPublic(BaseModel):
    """RFC 7517 key set: the current signing key first, then any previous one still honoured."""

    keys: list[dict[str, str]]
