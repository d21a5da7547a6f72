"""The health report of /healthz."""

from __future__ import annotations

from pydantic import BaseModel

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
