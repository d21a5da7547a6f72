"""Data-zone jobs, rows behind a capability token, and usage receipts with their inclusion proofs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from registry_api.schemas.common import MAX_ID, StrictModel

__all__ = ["AnchorBatchPublic", "DataRowsPublic", "JobCreate", "JobPublic", "ReceiptPublic"]


class JobCreate(StrictModel):
    """Run a listed algorithm admitted for the entry; only results under disclosure control come back."""

    entry_id: int = Field(ge=1, le=MAX_ID)
    algorithm_id: int = Field(ge=1, le=MAX_ID)
    params: dict[str, Any] = Field(default_factory=dict, examples=[{"group_by": ["street"]}])
    epsilon: float | None = Field(
        default=None, gt=0, le=100, description="privacy loss to spend; default: the entry's per-job maximum"
    )


class JobPublic(BaseModel):
    id: str
    org: str
    entry_id: int
    entry_version_hash: str
    algorithm_id: int
    algorithm_code_hash: str
    params: dict[str, Any]
    grant_id: int | None = Field(description="null when the owner org ran it on its own entry")
    epsilon_spent: float
    result: dict[str, Any] = Field(description="released groups only (never rows), mechanism and noise scales")
    suppressed: int = Field(description="groups withheld (fewer than k rows, or a noisy count below k)")
    receipt_id: int
    decided_block: int
    created_at: str
    remaining_epsilon: float | None = Field(default=None, description="the grant's budget left (POST only)")


class DataRowsPublic(BaseModel):
    entry_id: int
    form: Literal["raw", "desensitized"]
    data: list[dict[str, Any]]
    count: int = Field(description="rows in the dataset")
    limit: int
    offset: int
    capability: dict[str, Any] = Field(description="the verified token's jti, grant_id, action and exp")


class AnchorBatchPublic(BaseModel):
    batch_id: int
    merkle_root: str
    first_receipt: int
    last_receipt: int
    relayer: str
    tx_hash: str
    block_number: int
    anchored_at: str


class ReceiptPublic(BaseModel):
    """A usage receipt, the hash an auditor recomputes, and its Merkle inclusion proof once anchored."""

    id: int
    kind: Literal["token", "job"]
    ref: str = Field(description="the token's jti or the job's id (not hashed)")
    account: str
    org: str
    entry_id: int
    entry_version_hash: str
    action: str
    form: str
    grant_id: int
    algorithm_code_hash: str
    result_hash: str
    epsilon_micros: int
    epsilon_spent: float
    decided_block: int
    issued_at: int = Field(description="unix seconds (hashed as uint64)")
    receipt_hash: str
    hash_abi_types: list[str] = Field(description="abi.encode types of the hashed fields, in order")
    leaf: str = Field(description="keccak256(bytes.concat(keccak256(abi.encode(uint64 id, bytes32 receiptHash))))")
    anchored: bool
    batch: AnchorBatchPublic | None = None
    proof: list[str] | None = Field(default=None, description="sibling hashes, OpenZeppelin MerkleProof order")
    root_matches: bool | None = Field(default=None, description="this database's root for the range = on-chain")
    anchor_status: str | None = Field(
        default=None, description="before anchoring: unbatched | recorded | queued | anchored (not yet mirrored)"
    )
    anchor_operation_id: str | None = None
