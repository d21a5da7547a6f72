"""The answer of GET /v1/audit/records/{kind}/{id}: a record, its on-chain trail, and the checks that prove it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from registry_api.audit.trail import RecordAudit, TrailEvent
from registry_api.audit.trail_checks import Check
from registry_api.schemas.audit_approvals import DecisionProvenance

__all__ = ["CheckPublic", "FieldCheckPublic", "RecordAuditPublic", "TrailEventPublic", "TrailPage"]


class FieldCheckPublic(BaseModel):
    """One compared field or row: what the chain says (`expected`), what the mirror says (`actual`)."""

    field: str = Field(examples=["attributes"])
    expected: Any
    actual: Any
    ok: bool


class CheckPublic(BaseModel):
    """One check of the audit."""

    name: str = Field(
        description="checkpoint | mirror_record | mirror_history | attributes_hash | schema_hash | version_hash | "
        "input_hash | devices_hash | account_proof | storage_proof | proven_state | approval_provenance",
        examples=["attributes_hash"],
    )
    ok: bool
    message: str
    expected: Any = Field(default=None, description="the chain's value (hash, state root, block hash)")
    actual: Any = Field(default=None, description="the mirror's value, or the value recomputed from the mirror")
    fields: list[FieldCheckPublic] = Field(default_factory=list)

    @classmethod
    def of(cls, check: Check) -> CheckPublic:
        fields = [FieldCheckPublic(field=f.field, expected=f.expected, actual=f.actual, ok=f.ok) for f in check.fields]
        return cls(
            name=check.name, ok=check.ok, message=check.message, expected=check.expected, actual=check.actual,
            fields=fields,
        )  # fmt: skip


class TrailEventPublic(BaseModel):
    """One event that shaped the record, as the chain logged it."""

    contract: str = Field(examples=["DeviceRegistry"])
    event: str = Field(examples=["DeviceUpdated"])
    args: dict[str, Any] = Field(description="the decoded event arguments (enums as numbers, as logged)")
    block_number: int
    block_hash: str
    block_time: int = Field(description="unix seconds")
    tx_hash: str
    log_index: int = Field(description="the log's index in its block")
    signer: str | None = Field(description="the transaction's sender (for sharing decisions: the relayer)")
    approval: DecisionProvenance | None = Field(
        default=None, description="sharing decisions: the approver recovered from the EIP-712 signature, and why"
    )

    @classmethod
    def of(cls, event: TrailEvent) -> TrailEventPublic:
        return cls(
            contract=event.contract, event=event.event, args=event.args, block_number=event.block_number,
            block_hash=event.block_hash, block_time=event.block_time, tx_hash=event.tx_hash,
            log_index=event.log_index, signer=event.signer, approval=event.approval,
        )  # fmt: skip


class TrailPage(BaseModel):
    """A page of the trail, in chain order; `count` is the whole trail's length."""

    data: list[TrailEventPublic]
    count: int
    limit: int
    offset: int


class RecordAuditPublic(BaseModel):
    """A record checked against the chain at the mirror's checkpoint block; `verified` when every check passed."""

    kind: str = Field(examples=["device"])
    id: str = Field(examples=["BJ-CAMR-110105000001"])
    contract: str
    address: str
    block_number: int = Field(description="the mirror's checkpoint: the trail ends and the state is proved here")
    block_hash: str
    state_root: str = Field(description="the block's state root the account proof hangs from")
    verified: bool
    failed: list[str] = Field(description="names of the checks that failed")
    record: dict[str, Any] | None = Field(description="the mirror's row (null: the mirror lacks the record)")
    chain_record: dict[str, Any] | None = Field(description="the row as the chain's events replayed make it")
    proven: dict[str, Any] = Field(description="the record's contract storage, decoded from the proven slots")
    checks: list[CheckPublic]
    trail: TrailPage

    @classmethod
    def of(cls, audit: RecordAudit, limit: int, offset: int) -> RecordAuditPublic:
        """The audit with one page of its trail."""
        page = [TrailEventPublic.of(e) for e in audit.trail[offset : offset + limit]]
        return cls(
            kind=audit.kind, id=audit.id, contract=audit.contract, address=audit.address,
            block_number=audit.block_number, block_hash=audit.block_hash, state_root=audit.state_root,
            verified=audit.verified, failed=[c.name for c in audit.checks if not c.ok], record=audit.record,
            chain_record=audit.chain_record, proven=audit.proven, checks=[CheckPublic.of(c) for c in audit.checks],
            trail=TrailPage(data=page, count=len(audit.trail), limit=limit, offset=offset),
        )  # fmt: skip
