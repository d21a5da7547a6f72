"""The health report of /healthz."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["ChainHealth", "DatabaseHealth", "Health", "IndexerHealth", "OutboxHealth"]


class DatabaseHealth(BaseModel):
    ok: bool
    error: str | None = None


class ChainHealth(BaseModel):
    ok: bool
    head: int | None = None
    chain_id: int | None = None
    error: str | None = None


class IndexerHealth(BaseModel):
    last_indexed_block: int | None
    lag: int | None
    synced_at: float | None
    running_here: bool
    error: str | None = None
    role: Literal["leader", "standby"] | None = Field(
        default=None,
        description="the indexer running in this process: leader (holds the database's leader lock and writes the "
        "mirror) or standby (another indexer holds it; this one takes over when it is released); null when no "
        "indexer runs here",
    )


class OutboxHealth(BaseModel):
    queue_depth: int | None = None
    by_status: dict[str, int] = {}
    running_here: bool


class Health(BaseModel):
    status: str  # ok | degraded | down
    database: DatabaseHealth
    chain: ChainHealth
    indexer: IndexerHealth
    outbox: OutboxHealth
