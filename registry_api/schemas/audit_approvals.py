"""Answers of the approval audit: each decision's provenance (checks with expected and actual values) and the
mirror's `sharing_approvals` rows compared with the chain's logs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "ApprovalAuditEntry",
    "ApprovalsAudit",
    "CallPath",
    "CheckValue",
    "DecisionName",
    "DecisionProvenance",
    "FieldDifference",
    "MirrorCheck",
    "MirrorStatus",
    "ProvenanceCheck",
]

CheckValue = str | int | bool | None
MirrorStatus = Literal["match", "differs", "missing", "extra", "not_indexed"]
DecisionName = Literal["approve", "refuse", "revoke"]
CallPath = Literal["direct", "internal"]


class ProvenanceCheck(BaseModel):
    """One check of a decision: what the chain says it must be (`expected`) and what was found (`actual`)."""

    name: str = Field(examples=["signer"])
    ok: bool | None = Field(description="true passed, false failed, null could not be checked (see detail)")
    expected: CheckValue
    actual: CheckValue
    detail: str = ""


class DecisionProvenance(BaseModel):
    """Where one sharing decision (approve, refuse, revoke) came from, from the chain alone.

    The log and its transaction, the call that carried the approver's signature, the EIP-712 digest rebuilt from
    the domain and the Decision struct, the signer recovered from it, and the checks: the signer is the event's
    approver; the signed fields are the event's; the signer was an account of the owner org, that org active and
    the account an APPROVER at that point of the chain (replayed from the Consortium's logs and cross-checked with
    the node's state at that block); the signature's deadline had not passed; the nonce is the approver's next.
    """

    chain_id: int
    contract: str = Field(description="SharingAgreements, the EIP-712 verifying contract")
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    block_time: int | None = Field(description="unix seconds")
    event: str = Field(examples=["SharingApproved"])
    decision: DecisionName
    request_id: int
    approver: str = Field(description="the approver the event names")
    owner_org_id: int
    nonce: str = Field(description="uint256 as decimal text")
    reason: str
    relayer: str | None = Field(description="the transaction's sender: it relays, it does not decide")
    call_path: CallPath | None = Field(
        description="direct: the transaction calls SharingAgreements; internal: a contract called it (found by "
        "the node's call tracer); null: no call carrying this decision was found"
    )
    deadline: int | None
    signature: str | None
    digest: str | None = Field(description="the EIP-712 digest rebuilt from the domain and the signed fields")
    signer: str | None = Field(description="recovered from the signature over `digest`")
    checks: list[ProvenanceCheck]
    verified: bool = Field(description="no check failed")


class FieldDifference(BaseModel):
    """A field of a mirror row that differs from what the chain's log says."""

    field: str
    mirror: CheckValue
    chain: CheckValue


class MirrorCheck(BaseModel):
    """A `sharing_approvals` row against the chain's log at the same (block, log index).

    match: equal; differs: the row does not say what the log says (`differences`); missing: a log with no row;
    extra: a row with no decision log at its place (a forged approval); not_indexed: a log past the mirror's
    checkpoint (not a failure).
    """

    status: MirrorStatus
    row_id: int | None = Field(description="sharing_approvals.id of the row, if there is one")
    block_number: int
    log_index: int
    tx_hash: str
    request_id: int
    differences: list[FieldDifference] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("match", "not_indexed")


class ApprovalAuditEntry(BaseModel):
    """One decision in chain order: a log, a mirror row, or both."""

    block_number: int
    log_index: int
    tx_hash: str
    decision: str
    request_id: int
    approver: str
    mirror: MirrorCheck
    provenance: DecisionProvenance | None = Field(description="null for a mirror row with no log")
    ok: bool


class ApprovalsAudit(BaseModel):
    """Every decision in a block range (or of one request): provenance and mirror comparison.

    `data` is one page of the decisions, each proved; `mirror_findings` lists every row that is wrong over the
    whole range, whatever the page. `verified` is true when no finding is listed and every decision of the page
    verifies.
    """

    chain_id: int
    contract: str
    from_block: int
    to_block: int
    request_id: int | None
    mirror_checkpoint: int | None = Field(description="the mirror's last indexed block; later logs are not_indexed")
    decisions_on_chain: int
    mirror_rows: int
    count: int = Field(description="entries in the range: logs, plus mirror rows without a log")
    limit: int | None
    offset: int
    mirror_findings: list[MirrorCheck]
    failed_provenance: int = Field(description="decisions of this page whose provenance does not verify")
    verified: bool
    data: list[ApprovalAuditEntry]
