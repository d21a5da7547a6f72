"""Models shared by every resource: the error body, pagination and the 202 answer of a write."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_ID",
    "MAX_LIMIT",
    "MAX_OFFSET",
    "ErrorPublic",
    "Links",
    "OperationAccepted",
    "StrictModel",
    "VALIDATION_ERROR_RESPONSE",
]

DEFAULT_LIMIT = 50  # items per page
MAX_LIMIT = 1_000
# Ids are uint64 (uint256 for sharing requests) on-chain but signed BIGINT in the mirror, where the counters that
# make them never get near 2**63: a larger id cannot exist, and SQLite cannot even bind it (OverflowError, a 500).
MAX_ID = 2**63 - 1
MAX_OFFSET = 2**63 - 1  # items to skip: SQL's LIMIT/OFFSET are BIGINT too


class StrictModel(BaseModel):
    """A request body: unknown members are refused (a typo must not be silently dropped)."""

    model_config = ConfigDict(extra="forbid")


class ErrorPublic(BaseModel):
    """Every error answer: a stable code, a human message and the field at fault (a path like devices[0].code)."""

    model_config = ConfigDict(extra="allow")
    code: str = Field(examples=["CODE_RULE_VIOLATION"])
    message: str
    field: str | None = Field(default=None, examples=["devices[0].code"])
    contract_error: dict[str, Any] | None = Field(
        default=None, description="the contract's custom error when the chain refused: {name, args}"
    )


# the OpenAPI entry of a 422 for routes whose own text adds nothing (FastAPI would document its `{detail}` body)
VALIDATION_ERROR_RESPONSE: dict[str, Any] = {
    "model": ErrorPublic,
    "description": "VALIDATION_ERROR: a parameter or the body (the field says which)",
}


class Links(BaseModel):
    operation: str = Field(examples=["/v1/operations/5f0c..."])


class OperationAccepted(BaseModel):
    """The answer to every write (202): the operation to follow until it is confirmed or failed."""

    operation_id: str
    status: str = Field(description="queued | submitted | mined | confirmed | failed")
    links: Links
