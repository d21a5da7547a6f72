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
    "CodeRule",
    "Device",
    "DeviceEvent",
    "IndexedBlock",
    "IndexerCheckpoint",
    "Inspection",
    "Member",
    "Proposal",
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
