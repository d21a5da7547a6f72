"""Sharing requests (共享申请), the approvers' signed decisions on them, and the grants they lead to."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from registry_api.schemas.common import MAX_ID, StrictModel

__all__ = [
    "MAX_DURATION_DAYS",
    "DecisionPublic",
    "GrantPublic",
    "GrantsPublic",
    "SharingRequestCreate",
    "SharingRequestPublic",
    "SharingRequestsPublic",
    "SignedDecision",
    "SignedReasonedDecision",
]

SECONDS_PER_DAY = 86_400
MAX_DURATION_DAYS = 5 * 365  # SharingAgreements.MAX_DURATION
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SIGNATURE = re.compile(r"^0x[0-9a-fA-F]{130}$")

Form = Literal["raw", "desensitized", "result_only"]


class SharingRequestCreate(StrictModel):
    """A request of the caller's org to use one form of a published, shareable entry for a purpose."""

    entry_id: int = Field(ge=1, le=MAX_ID)
    form: Form = Field(description="one form the entry allows: raw | desensitized | result_only")
    purpose: str = Field(min_length=1, max_length=1_000, examples=["交通拥堵治理：主干道早晚高峰流量分析"])
    duration_days: int = Field(ge=1, le=MAX_DURATION_DAYS, description="how long the grant lasts once granted")


class SignedDecision(StrictModel):
    """An approver's EIP-712 signature over the typed data of GET .../approval-typed-data, relayed as is."""

    approver: str = Field(description="the approver's account (0x...)")
    signature: str = Field(description="65-byte signature as 0x hex (eth_signTypedData_v4)")
    nonce: int = Field(ge=0, lt=2**256, description="message.nonce of the signed typed data")
    deadline: int = Field(ge=0, lt=2**256, description="message.deadline (unix seconds of the chain)")

    @field_validator("approver")
    @classmethod
    def _address(cls, value: str) -> str:
        if not _ADDRESS.match(value):
            raise ValueError("an account address is 0x and 40 hex digits")
        return value

    @field_validator("signature")
    @classmethod
    def _signature(cls, value: str) -> str:
        if not _SIGNATURE.match(value):
            raise ValueError("a signature is 0x and 130 hex digits (r, s, v)")
        return value


class SignedReasonedDecision(SignedDecision):
    """A signed refusal or revocation: the reason is part of what was signed (its keccak256)."""

    reason: str = Field(min_length=1, max_length=1_000)


class DecisionPublic(BaseModel):
    """One signed decision as relayed on-chain: who signed it and the transaction that carried it."""

    approver: str
    decision: str = Field(description="approve | refuse | revoke")
    nonce: str
    reason: str
    tx_hash: str
    block_number: int
    time: str
    relayed_by: str | None


class SharingRequestPublic(BaseModel):
    id: int
    entry_id: int
    entry_title: str | None
    requester_org: str | None
    owner_org: str | None
    requester: str
    form: str
    purpose: str
    duration_days: float
    status: str = Field(description="pending | granted | refused | revoked (expired: granted and `expired`)")
    approvals: int
    approvals_needed: int
    requested_at: str
    granted_at: str | None
    expires_at: str | None
    expired: bool = Field(description="granted but past expires_at by the latest mirrored block's time")
    active: bool = Field(description="granted, not revoked and not expired")
    refusal_reason: str | None
    revocation_reason: str | None
    tx_hash: str = Field(description="of the request")
    block_number: int
    grant_tx_hash: str | None
    grant_block: int | None
    decisions: list[DecisionPublic]


class SharingRequestsPublic(BaseModel):
    data: list[SharingRequestPublic]
    count: int


class GrantPublic(SharingRequestPublic):
    """A granted request: `id` is the request id, which is also the grant's id."""

    approvers: list[str] = Field(description="the accounts whose signatures granted it")
    approval_tx_hashes: list[str]


class GrantsPublic(BaseModel):
    data: list[GrantPublic]
    count: int
    chain_time: str | None = Field(description="the latest mirrored block's time that `expired` is judged by")
