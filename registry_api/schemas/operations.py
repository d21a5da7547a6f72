"""Operations: a write's way from the outbox to a confirmed (or failed) transaction."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from registry_api.schemas.common import Links

__all__ = ["OperationError", "OperationPublic"]


class OperationError(BaseModel):
    """Why an operation failed: the API's stable code and the contract's custom error (name and args)."""

    code: str = Field(examples=["ILLEGAL_TRANSITION"])
    name: str = Field(examples=["DeviceRegistryIllegalTransition"])
    args: dict[str, Any]
    message: str


class OperationPublic(BaseModel):
    id: str
    status: str = Field(description="queued | submitted | mined | confirmed | failed")
    contract: str
    function: str
    org_code: str
    account: str
    idempotency_key: str | None
    nonce: int | None
    tx_hash: str | None
    block_number: int | None
    block_hash: str | None
    error: OperationError | None
    created_at: str
    updated_at: str
    links: Links
