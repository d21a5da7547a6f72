"""SQL tables of the chain mirror (written only by the indexer, read by the API).

Invariant: every row here can be rebuilt from the chain's logs; `block_number`/`tx_hash`/`log_index` say
which log last shaped it. Coordinates are stored as micro-degrees (integers, exact) like on-chain.
"""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel, UniqueConstraint

__all__ = [
    "Account",
    "AccountRole",
    "Algorithm",
    "AlgorithmEvaluation",
    "EntryAlgorithm",
    "ApprovalThreshold",
    "Carrier",
    "CarrierReuseRequest",
    "CatalogEntry",
    "CatalogEntryVersion",
    "CatalogLineage",
    "CatalogSearch",
    "CodeRule",
    "Device",
    "DeviceEvent",
    "IndexedBlock",
    "IndexerCheckpoint",
    "Inspection",
    "Member",
    "Project",
    "ProjectDevice",
    "Proposal",
    "ReceiptBatch",
    "ReviewLead",
    "SharingApproval",
    "SharingRequest",
    "UndoEntry",
]


class Member(SQLModel, table=True):
    """A member organisation (Consortium MemberAdmitted / MemberStatusChanged)."""

    __tablename__ = "members"
    org_id: int = Field(primary_key=True)
    code: str = Field(index=True, unique=True)
    name: str
    kind: str  # department | district | company | auditor
    active: bool = True
    block_number: int
    tx_hash: str


class Account(SQLModel, table=True):
    """An account attached to a member org (Consortium AccountAdded)."""

    __tablename__ = "accounts"
    address: str = Field(primary_key=True)  # checksum
    org_id: int = Field(index=True)
    block_number: int
    tx_hash: str


class AccountRole(SQLModel, table=True):
    """A role held by an account (AccessControl RoleGranted / RoleRevoked); role is the name, e.g. REGISTRAR."""

    __tablename__ = "account_roles"
    address: str = Field(primary_key=True)
    role: str = Field(primary_key=True)
    block_number: int
    tx_hash: str


class CodeRule(SQLModel, table=True):
    """A device type's code rule (DeviceRegistry CodeRuleSet)."""

    __tablename__ = "code_rules"
    type_id: int = Field(primary_key=True)
    type_name: str = Field(index=True, unique=True)
    prefix: str
    length: int
    charset: int  # bit set: 1 digits, 2 A-Z, 4 a-z, 8 '-'
    block_number: int
    tx_hash: str


class Device(SQLModel, table=True):
    """Current state of a front end (DeviceRegistered, DeviceUpdated, DeviceLifecycleChanged, DeviceInspected)."""

    __tablename__ = "devices"
    code: str = Field(primary_key=True)
    type_id: int = Field(index=True)
    owner_org_id: int = Field(index=True)
    status: str = Field(index=True)  # planned | active | suspended | replaced | retired
    district: int = Field(index=True, sa_type=BigInteger)  # uint32 on-chain
    lat_e6: int
    lon_e6: int
    built_at: int = Field(sa_type=BigInteger)  # unix seconds (uint40 on-chain: past 2038 in PostgreSQL too)
    attributes: str  # canonical JSON exactly as on-chain
    attributes_hash: str
    replaced_by: str | None = None
    last_inspected_at: int | None = Field(default=None, sa_type=BigInteger)
    tx_hash: str  # registration
    block_number: int  # registration
    updated_block: int
    updated_tx_hash: str


class DeviceEvent(SQLModel, table=True):
    """Every DeviceRegistry log about a device, in chain order: the device's history."""

    __tablename__ = "device_events"
    __table_args__ = (UniqueConstraint("block_number", "log_index"),)
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(index=True)
    event: str  # DeviceRegistered | DeviceUpdated | DeviceLifecycleChanged | DeviceInspected
    block_number: int = Field(index=True)
    block_hash: str
    block_time: int = Field(sa_type=BigInteger)
    tx_hash: str
    log_index: int
    sender: str | None = None  # tx sender when known
    data: str  # the decoded event arguments as JSON


class Inspection(SQLModel, table=True):
    """A periodic inspection (DeviceInspected)."""

    __tablename__ = "inspections"
    __table_args__ = (UniqueConstraint("block_number", "log_index"),)
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(index=True)
    result: str  # passed | issues | failed
    inspected_at: int = Field(sa_type=BigInteger)
    report_hash: str
    note: str
    block_number: int = Field(index=True)
    tx_hash: str
    log_index: int


class IndexedBlock(SQLModel, table=True):
    """(number, hash, parent hash) of recently indexed blocks, to detect reorgs."""

    __tablename__ = "indexed_blocks"
    number: int = Field(primary_key=True)
    hash: str
    parent_hash: str


class IndexerCheckpoint(SQLModel, table=True):
    """How far the mirror has been built: the last fully indexed block.

    `chain_head` is the node's head when the indexer last synced and `synced_at` (unix seconds) when, so a
    process that does not run the indexer can still report lag: `chain_head - block_number`.
    """

    __tablename__ = "indexer_checkpoints"
    name: str = Field(primary_key=True)
    block_number: int
    block_hash: str
    chain_head: int | None = None
    synced_at: float | None = None


class Proposal(SQLModel, table=True):
    """A consortium proposal (Consortium ProposalCreated / ProposalVoted / ProposalExecuted)."""

    __tablename__ = "proposals"
    proposal_id: int = Field(primary_key=True)
    proposer: str  # checksum
    proposer_org_id: int
    target: str  # checksum
    data: str  # 0x-hex calldata
    description: str
    votes: int
    executed: bool = False
    block_number: int  # creation
    tx_hash: str  # creation
    updated_block: int
    updated_tx_hash: str


class CatalogEntry(SQLModel, table=True):
    """Current version and status of a catalog entry (DataCatalog CatalogEntryVersioned / CatalogEntryStatusChanged).

    `forms` is the JSON list of form names in bit order (["raw", "desensitized", "result_only"]) and
    `forms_mask` the on-chain bit set (1 raw, 2 desensitized, 4 result-only); `schema` is the schema JSON text
    exactly as on-chain and `schema_hash` its keccak256; `device_codes`/`upstream` the current lineage as JSON
    lists in on-chain order (`catalog_lineage` holds the same, one row per reference).
    """

    __tablename__ = "catalog_entries"
    entry_id: int = Field(primary_key=True, sa_type=BigInteger)  # uint64 on-chain
    owner_org_id: int = Field(index=True, sa_type=BigInteger)
    title: str
    classification: str = Field(index=True)
    grade: int = Field(index=True)
    share_condition: str = Field(index=True)  # unconditional | conditional | not_shareable
    forms: str  # JSON list of form names
    forms_mask: int
    schema_: str = Field(sa_column_kwargs={"name": "schema"})  # JSON text as on-chain
    schema_hash: str
    device_codes: str  # JSON list, current version's lineage to devices
    upstream: str  # JSON list of entry ids, current version's lineage to entries
    status: str = Field(index=True)  # draft | published | deprecated
    major: int
    minor: int
    version_hash: str
    created_block: int
    created_tx_hash: str
    updated_block: int
    updated_tx_hash: str


class CatalogEntryVersion(SQLModel, table=True):
    """Every version of every catalog entry with its full record (CatalogEntryVersioned), in chain order."""

    __tablename__ = "catalog_entry_versions"
    __table_args__ = (UniqueConstraint("entry_id", "major", "minor"), UniqueConstraint("block_number", "log_index"))
    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(index=True, sa_type=BigInteger)
    major: int
    minor: int
    owner_org_id: int = Field(sa_type=BigInteger)
    title: str
    classification: str
    grade: int
    share_condition: str
    forms: str  # JSON list of form names
    forms_mask: int
    schema_: str = Field(sa_column_kwargs={"name": "schema"})
    schema_hash: str
    device_codes: str  # JSON list
    upstream: str  # JSON list of entry ids
    version_hash: str
    block_number: int = Field(index=True)
    block_time: int = Field(sa_type=BigInteger)
    tx_hash: str
    log_index: int
    sender: str | None = None


class CatalogLineage(SQLModel, table=True):
    """Lineage of an entry's CURRENT version: one row per device code or upstream entry (replaced on revision).

    `ref` is the device code, or the upstream entry id as decimal text; `position` the index in the on-chain
    list (a reference listed twice keeps its first position).
    """

    __tablename__ = "catalog_lineage"
    entry_id: int = Field(primary_key=True, sa_type=BigInteger)
    kind: str = Field(primary_key=True)  # device | entry
    ref: str = Field(primary_key=True, index=True)
    position: int
    block_number: int
    tx_hash: str


class CatalogSearch(SQLModel, table=True):
    """Text to search per catalog entry: title, classification and schema field names, one line each.

    Kept in sync by the indexer with the current version; the API builds its full-text index over it
    (SQLite FTS5, PostgreSQL tsvector).
    """

    __tablename__ = "catalog_search"
    entry_id: int = Field(primary_key=True, sa_type=BigInteger)
    text: str
    block_number: int


class SharingRequest(SQLModel, table=True):
    """A sharing request and its grant (SharingAgreements SharingRequested / Approved / Granted / Refused / Revoked).

    Times are unix seconds of the chain's blocks. "expired" is not stored: a granted request is active while
    the reader's time is before `expires_at`.
    """

    __tablename__ = "sharing_requests"
    request_id: int = Field(primary_key=True, sa_type=BigInteger)
    entry_id: int = Field(index=True, sa_type=BigInteger)
    requester_org_id: int = Field(index=True, sa_type=BigInteger)
    owner_org_id: int = Field(index=True, sa_type=BigInteger)
    requester: str  # checksum address of the requesting account
    form: str  # raw | desensitized | result_only
    purpose: str
    duration: int = Field(sa_type=BigInteger)  # seconds
    approvals_needed: int
    approvals: int
    status: str = Field(index=True)  # pending | granted | refused | revoked
    requested_at: int = Field(sa_type=BigInteger)
    granted_at: int | None = Field(default=None, sa_type=BigInteger)
    expires_at: int | None = Field(default=None, sa_type=BigInteger)
    refusal_reason: str | None = None
    revocation_reason: str | None = None
    closed_at: int | None = Field(default=None, sa_type=BigInteger)  # block time of the refusal or revocation
    closed_tx_hash: str | None = None
    request_tx_hash: str
    request_block: int
    grant_tx_hash: str | None = None
    grant_block: int | None = None
    updated_block: int
    updated_tx_hash: str


class SharingApproval(SQLModel, table=True):
    """Every signed decision relayed on-chain (SharingApproved / SharingRefused / SharingRevoked), in chain order.

    `approvals_after` is the request's approval count after the log; `reason` is empty for approvals.
    """

    __tablename__ = "sharing_approvals"
    __table_args__ = (UniqueConstraint("block_number", "log_index"),)
    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(index=True, sa_type=BigInteger)
    approver: str = Field(index=True)  # checksum
    owner_org_id: int = Field(sa_type=BigInteger)
    decision: str  # approve | refuse | revoke
    approvals_after: int
    nonce: str  # uint256 as decimal text
    reason: str
    block_number: int = Field(index=True)
    block_time: int = Field(sa_type=BigInteger)
    tx_hash: str
    log_index: int
    sender: str | None = None  # the relaying account when known


class ApprovalThreshold(SQLModel, table=True):
    """Approvals a conditional entry of a grade needs (SharingAgreements ApprovalThresholdSet)."""

    __tablename__ = "approval_thresholds"
    grade: int = Field(primary_key=True)
    approvals: int
    block_number: int
    tx_hash: str


class Algorithm(SQLModel, table=True):
    """An algorithm of the algorithm center (AlgorithmRegistry AlgorithmSubmitted / Evaluated / StatusChanged).

    `code_hash`, `report_hash` and `input_hash` are 0x-prefixed lowercase hex; `outputs` is the declared
    outputs JSON exactly as submitted; `score` and `report_hash` are the latest evaluation's (None before one).
    """

    __tablename__ = "algorithms"
    __table_args__ = (UniqueConstraint("name", "version"),)
    algorithm_id: int = Field(primary_key=True, sa_type=BigInteger)
    name: str = Field(index=True)
    version: str
    code_hash: str = Field(index=True)
    outputs: str
    input_hash: str
    submitter_org_id: int = Field(index=True, sa_type=BigInteger)
    submitter: str  # checksum address
    status: str = Field(index=True)  # submitted | evaluated | listed | delisted
    status_reason: str = ""  # the delisting reason
    score: int | None = None
    report_hash: str | None = None
    submitted_block: int
    submitted_tx_hash: str
    submitted_at: int = Field(sa_type=BigInteger)  # block time
    updated_block: int
    updated_tx_hash: str
    updated_at: int = Field(sa_type=BigInteger)  # block time of the last change (delisting time when delisted)


class AlgorithmEvaluation(SQLModel, table=True):
    """Every evaluation of an algorithm (AlgorithmEvaluated), in chain order."""

    __tablename__ = "algorithm_evaluations"
    __table_args__ = (UniqueConstraint("block_number", "log_index"),)
    id: int | None = Field(default=None, primary_key=True)
    algorithm_id: int = Field(index=True, sa_type=BigInteger)
    reviewer_org_id: int = Field(sa_type=BigInteger)
    reviewer: str  # checksum address
    report_hash: str
    score: int
    passed: bool
    block_number: int = Field(index=True)
    block_time: int = Field(sa_type=BigInteger)
    tx_hash: str
    log_index: int


class EntryAlgorithm(SQLModel, table=True):
    """An algorithm a catalog entry's owner admitted for the entry (AlgorithmAdmitted; deleted on Withdrawn).

    Counts for the resolver and the zone only while the algorithm is listed (join with `algorithms`).
    """

    __tablename__ = "entry_algorithms"
    entry_id: int = Field(primary_key=True, sa_type=BigInteger)
    algorithm_id: int = Field(primary_key=True, index=True, sa_type=BigInteger)
    owner_org_id: int = Field(sa_type=BigInteger)
    admitted_by: str  # checksum address
    block_number: int
    tx_hash: str


class ReceiptBatch(SQLModel, table=True):
    """A batch of data-zone usage receipts anchored by its Merkle root (SharingAgreements UsageReceiptsAnchored)."""

    __tablename__ = "receipt_batches"
    batch_id: int = Field(primary_key=True, sa_type=BigInteger)
    relayer_org_id: int = Field(index=True, sa_type=BigInteger)
    relayer: str  # checksum address
    merkle_root: str  # 0x-prefixed lowercase hex
    first_receipt: int = Field(index=True, sa_type=BigInteger)
    last_receipt: int = Field(index=True, sa_type=BigInteger)
    block_number: int
    block_time: int = Field(sa_type=BigInteger)
    tx_hash: str
    log_index: int


class ReviewLead(SQLModel, table=True):
    """The lead org of a joint-review domain (ReviewBoard LeadOrgSet); org id 0 when the consortium unset it."""

    __tablename__ = "review_leads"
    domain: str = Field(primary_key=True)  # imagery | city_management | emergency | other
    org_id: int = Field(sa_type=BigInteger)
    block_number: int
    tx_hash: str


class Project(SQLModel, table=True):
    """A joint-review project (联审) of planned front ends (ReviewBoard ProjectFiled / ProjectDecided / Withdrawn).

    `devices_hash` is keccak256(abi.encode(devices)) as filed: the approval re-sends the devices of
    `project_devices`, which the contract checks against it. Times are block times (unix seconds).
    """

    __tablename__ = "projects"
    project_id: int = Field(primary_key=True, sa_type=BigInteger)
    applicant_org_id: int = Field(index=True, sa_type=BigInteger)
    applicant: str  # checksum address of the filing account
    domain: str = Field(index=True)  # imagery | city_management | emergency | other
    title: str
    status: str = Field(index=True)  # filed | approved | refused | withdrawn
    device_count: int
    devices_hash: str  # 0x-prefixed lowercase hex
    reviewer_org_id: int | None = Field(default=None, sa_type=BigInteger)
    reviewer: str | None = None  # checksum address of the deciding account
    reason: str = ""  # the refusal's reason
    filed_at: int = Field(sa_type=BigInteger)
    closed_at: int | None = Field(default=None, sa_type=BigInteger)  # decision or withdrawal
    filed_block: int
    filed_tx_hash: str
    closed_block: int | None = None
    closed_tx_hash: str | None = None


class ProjectDevice(SQLModel, table=True):
    """A planned device of a project, exactly as filed (ProjectFiled); `position` is its index in the list.

    Append-only: written in the filing's block and never changed (the ledger's own rows come from the
    DeviceRegistered events of the approval). `carrier` is the `carrier` attribute when it is a string.
    """

    __tablename__ = "project_devices"
    project_id: int = Field(primary_key=True, sa_type=BigInteger)
    position: int = Field(primary_key=True)
    code: str = Field(index=True)
    type_id: int
    district: int = Field(sa_type=BigInteger)
    lat_e6: int
    lon_e6: int
    built_at: int = Field(sa_type=BigInteger)
    attributes: str  # canonical JSON exactly as filed
    attributes_hash: str
    carrier: str | None = Field(default=None, index=True)
    block_number: int = Field(index=True)
    tx_hash: str


class Carrier(SQLModel, table=True):
    """A carrier (感知载体): pole, mount, cabinet or building mount (CarrierRegistry CarrierRegistered / UsageChanged).

    Coordinates in micro-degrees like devices; `attributes` is the JSON exactly as on-chain.
    """

    __tablename__ = "carriers"
    code: str = Field(primary_key=True)
    carrier_hash: str = Field(index=True)  # keccak256 of the code, 0x-prefixed lowercase hex
    owner_org_id: int = Field(index=True, sa_type=BigInteger)
    kind: str = Field(index=True)  # pole | mount | cabinet | building
    district: int = Field(index=True, sa_type=BigInteger)
    lat_e6: int = Field(index=True)
    lon_e6: int
    slots: int
    slots_used: int
    ports: int
    ports_used: int
    attributes: str
    attributes_hash: str
    registered_by: str  # checksum address
    block_number: int  # registration
    tx_hash: str  # registration
    updated_block: int
    updated_tx_hash: str


class CarrierReuseRequest(SQLModel, table=True):
    """A request to reuse slots and ports of another org's carrier (CarrierReuseRequested / Decided / Withdrawn)."""

    __tablename__ = "carrier_reuse_requests"
    request_id: int = Field(primary_key=True, sa_type=BigInteger)
    carrier_code: str = Field(index=True)
    requester_org_id: int = Field(index=True, sa_type=BigInteger)
    owner_org_id: int = Field(index=True, sa_type=BigInteger)
    requester: str  # checksum address
    slots: int
    ports: int
    purpose: str
    status: str = Field(index=True)  # requested | granted | refused | withdrawn
    reason: str = ""  # the owner's reason (required for a refusal)
    decided_by: str | None = None  # checksum address of the deciding or withdrawing account
    requested_at: int = Field(sa_type=BigInteger)
    closed_at: int | None = Field(default=None, sa_type=BigInteger)
    request_block: int
    request_tx_hash: str
    closed_block: int | None = None
    closed_tx_hash: str | None = None


class UndoEntry(SQLModel, table=True):
    """Undo journal of the indexer: a projection row as it was before `block_number` first changed it.

    Written only for blocks within the finality depth of the head when they were indexed, and pruned with
    the indexed block hashes; `key` is the JSON list of primary-key values, `prior` the JSON row or None
    when the row did not exist.
    """

    __tablename__ = "indexer_undo"
    id: int | None = Field(default=None, primary_key=True)
    block_number: int = Field(index=True)
    table_name: str
    key: str
    prior: str | None = None
