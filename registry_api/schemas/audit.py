"""Models of /v1/audit/verify: the live mirror compared with one rebuilt from the chain (indexer.verify)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["BlockDigestPublic", "RowDifferencePublic", "TableComparisonPublic", "VerifyPublic"]


class RowDifferencePublic(BaseModel):
    """A row that differs: `missing` (on the chain, not in the mirror), `extra` (in the mirror only), `differing`."""

    table: str
    kind: Literal["missing", "extra", "differing"]
    key: dict[str, Any] = Field(description="the row's chain-derived key (primary key, or block and log index)")
    block: int = Field(description="the block the row is attributed to (the newest of its block columns)")
    live: dict[str, Any] | None = Field(description="the live mirror's row; null when missing")
    chain: dict[str, Any] | None = Field(description="the row rebuilt from the chain's logs; null when extra")
    columns: list[str] = Field(description="the columns that differ (differing rows)")


class TableComparisonPublic(BaseModel):
    table: str
    ok: bool
    live_rows: int
    chain_rows: int
    missing: int
    extra: int
    differing: int
    samples: list[RowDifferencePublic] = Field(description="the first differences of each kind (up to `samples`)")


class BlockDigestPublic(BaseModel):
    """A block whose digest differs; null on a side with no rows attributed to the block."""

    number: int
    live: str | None
    chain: str | None


class VerifyPublic(BaseModel):
    """The verdict: `ok` when every table and every block digest agree."""

    ok: bool
    block: int = Field(description="the live mirror's checkpoint: both sides are compared as of this block")
    block_hash: str
    events: int = Field(description="logs replayed from the chain into the scratch store")
    live_digest: str = Field(description="the live mirror's proof of indexing: block digests chained in order")
    chain_digest: str = Field(description="the same over the mirror rebuilt from the chain")
    blocks: int = Field(description="blocks with at least one row")
    first_divergent_block: int | None
    divergent_block_count: int
    divergent_blocks: list[BlockDigestPublic]
    tables: list[TableComparisonPublic]
    rebuild_seconds: float
    compare_seconds: float
