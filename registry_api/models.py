"""SQL tables owned by the API (the mirror's tables belong to the indexer, the outbox's to the gateway)."""

from __future__ import annotations

import time

from sqlmodel import Field, SQLModel

__all__ = ["ApiToken"]


class ApiToken(SQLModel, table=True):
    """A bearer token of a member org: only its sha256 is stored; writes are signed with `account`."""

    __tablename__ = "api_tokens"
    token_hash: str = Field(primary_key=True, max_length=64)  # hex sha256 of the plaintext token
    org_code: str = Field(index=True, max_length=64)
    account: str = Field(max_length=42)  # checksum address the org's writes are signed with
    label: str = ""
    created_at: float = Field(default_factory=time.time)  # unix seconds
    revoked: bool = False
