"""Models shared by every resource: the error body, pagination and the 202 answer of a write."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "ErrorPublic", "Links", "OperationAccepted", "StrictModel"]

DEFAULT_LIMIT = 50  # items per page
MAX_LIMIT = 1_000


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


class Links(BaseModel):
    operation: str = Field(examples=["/v1/operations/5f0c..."])


class OperationAccepted(BaseModel):
    """The answer to every write (202): the operation to follow until it is confirmed or failed."""

    operation_id: str
    status: str = Field(description="queued | submitted | mined | confirmed | failed")
    links: Links
