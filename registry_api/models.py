"""SQL tables owned by the API (the mirror's tables belong to the indexer, the outbox's to the gateway)."""

from __future__ import annotations

import time

from sqlalchemy import BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = [
    "ApiToken",
    "ImportBatch",
    "ImportJob",
    "ImportRow",
    "PrivacyBudget",
    "ReceiptAnchor",
    "ReceiptSequence",
    "UsageReceipt",
    "ZoneJob",
]


class ApiToken(SQLModel, table=True):
    """A bearer token of a member org: only its sha256 is stored; writes are signed with `account`."""

    __tablename__ = "api_tokens"
    token_hash: str = Field(primary_key=True, max_length=64)  # hex sha256 of the plaintext token
    org_code: str = Field(index=True, max_length=64)
    account: str = Field(max_length=42)  # checksum address the org's writes are signed with
    label: str = ""
    created_at: float = Field(default_factory=time.time)  # unix seconds
    revoked: bool = False
    expires_at: float | None = None  # unix seconds (UTC); None: never (the dev profile's tokens)


class UsageReceipt(SQLModel, table=True):
    """A usage receipt: one per capability token issued and per data-zone job (see `registry_api.receipts`).

    `receipt_id` is taken in the writing transaction under a lock held to its commit (`receipt_sequence` on
    PostgreSQL), so ids are gapless and committed in order; `receipt_hash` = keccak256 of the ABI encoding
    documented in `registry_api.receipts`.
    """

    __tablename__ = "usage_receipts"
    receipt_id: int = Field(primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False})
    kind: str = Field(max_length=8)  # token | job
    ref: str = Field(max_length=64)  # the token's jti or the job's id (not hashed: the result hash binds it)
    account: str = Field(max_length=42)  # checksum address of the principal
    org_code: str = Field(max_length=64)  # no secondary indexes: a receipt is written on every permit's path
    entry_id: int = Field(sa_type=BigInteger)
    entry_version_hash: str = Field(max_length=66)
    action: str = Field(max_length=32)  # read_raw | read_desensitized | compute
    form: str = Field(max_length=16)  # raw | desensitized | result_only
    grant_id: int = Field(sa_type=BigInteger)  # 0: the owner on its own entry
    algorithm_code_hash: str = Field(max_length=66)  # 0x00..00 unless compute
    result_hash: str = Field(max_length=66)
    epsilon_micros: int = Field(sa_type=BigInteger)  # epsilon spent x 1e6 (integers: exact sums)
    decided_block: int = Field(sa_type=BigInteger)
    issued_at: int = Field(sa_type=BigInteger)  # unix seconds
    receipt_hash: str = Field(max_length=66)


class ReceiptSequence(SQLModel, table=True):
    """Counters: `usage` is the next usage-receipt id on PostgreSQL (its row is locked by the UPDATE that takes
    an id until the receipt commits); `anchor` is the anchoring job's lock row."""

    __tablename__ = "receipt_sequence"
    name: str = Field(primary_key=True, max_length=16)
    next_id: int = Field(sa_type=BigInteger)


class ReceiptAnchor(SQLModel, table=True):
    """A batch of usage receipts on its way to `SharingAgreements.anchorReceipts`, recorded before it is queued.

    `idempotency_key` is derived from `anchor_id`, so a crash between recording and queueing queues the same
    operation again, never a second one; `status` is queued (in the outbox) | anchored | failed (retaken).
    """

    __tablename__ = "receipt_anchors"
    anchor_id: int | None = Field(default=None, primary_key=True)
    first_receipt: int = Field(index=True, sa_type=BigInteger)
    last_receipt: int = Field(sa_type=BigInteger)
    merkle_root: str = Field(max_length=66)
    idempotency_key: str = Field(unique=True, max_length=64)
    operation_id: str | None = Field(default=None, max_length=32)
    status: str = Field(default="recorded", max_length=16)  # recorded | queued | anchored | failed
    error: str | None = None
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)


class PrivacyBudget(SQLModel, table=True):
    """Epsilon spent under one grant, in micro-epsilon; the budget itself comes from the entry's privacy policy."""

    __tablename__ = "privacy_budgets"
    grant_id: int = Field(primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False})
    entry_id: int = Field(index=True, sa_type=BigInteger)
    spent_micros: int = Field(default=0, sa_type=BigInteger)
    jobs: int = 0
    updated_at: float = Field(default_factory=time.time)


class ZoneJob(SQLModel, table=True):
    """A data-zone job: what ran, on what, under which grant, and what was released (groups only, never rows)."""

    __tablename__ = "zone_jobs"
    job_id: str = Field(primary_key=True, max_length=32)
    org_code: str = Field(index=True, max_length=64)
    account: str = Field(max_length=42)
    entry_id: int = Field(index=True, sa_type=BigInteger)
    entry_version_hash: str = Field(max_length=66)
    algorithm_id: int = Field(sa_type=BigInteger)
    algorithm_code_hash: str = Field(max_length=66)
    params: str  # canonical JSON as given
    grant_id: int = Field(sa_type=BigInteger)  # 0: the owner
    epsilon_micros: int = Field(sa_type=BigInteger)
    result: str  # canonical JSON of the release
    result_hash: str = Field(max_length=66)
    suppressed: int
    receipt_id: int = Field(sa_type=BigInteger)
    decided_block: int = Field(sa_type=BigInteger)
    created_at: float = Field(default_factory=time.time)


class ImportJob(SQLModel, table=True):
    """A bulk import of devices (`registry_api.imports`): its file, where reading stopped, and its counters.

    `offset`, `lines_read` and `rows_read` move only in the transaction that records the rows read up to
    there (and their batch), so a restarted runner goes on from `offset` and never reads a row twice.
    """

    __tablename__ = "import_jobs"
    __table_args__ = (
        Index("ix_import_jobs_org_created", "org_code", "created_at"),
        UniqueConstraint("org_code", "idempotency_key", name="uq_import_jobs_org_idempotency_key"),
    )
    import_id: str = Field(primary_key=True, max_length=32)
    org_code: str = Field(max_length=64)
    account: str = Field(max_length=42)  # checksum address that signs the batches
    idempotency_key: str | None = Field(default=None, max_length=255)
    file_name: str = Field(default="", max_length=255)
    format: str = Field(max_length=8)  # csv | ndjson
    file_path: str  # the upload, deleted once the import is finished
    file_bytes: int = Field(sa_type=BigInteger)
    file_sha256: str = Field(max_length=64)
    columns_json: str | None = None  # the CSV header as a JSON list
    status: str = Field(default="queued", max_length=16)  # queued | validating | submitting | done | failed
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = None
    offset: int = Field(default=0, sa_type=BigInteger)  # bytes of the file read and recorded
    lines_read: int = Field(default=0, sa_type=BigInteger)
    rows_read: int = Field(default=0, sa_type=BigInteger)
    rows_accepted: int = Field(default=0, sa_type=BigInteger)  # valid rows not (yet) refused by the chain
    rows_rejected: int = Field(default=0, sa_type=BigInteger)
    rows_confirmed: int = Field(default=0, sa_type=BigInteger)
    batches_total: int = 0  # batches recorded, split ones included (the next batch number is this + 1)
    batches_confirmed: int = 0
    batches_split: int = 0
    batches_failed: int = 0
    created_at: float = Field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    updated_at: float = Field(default_factory=time.time)


class ImportRow(SQLModel, table=True):
    """One data row of an import file and its outcome: accepted (in `batch`) or rejected with a reason."""

    __tablename__ = "import_rows"
    __table_args__ = (
        Index("ix_import_rows_code", "import_id", "code"),
        Index("ix_import_rows_batch", "import_id", "batch"),
    )
    import_id: str = Field(primary_key=True, max_length=32)
    row: int = Field(primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False})
    line: int = Field(sa_type=BigInteger)  # physical line where the row starts (the header is line 1)
    code: str | None = Field(default=None, max_length=128)
    outcome: str = Field(max_length=8)  # accepted | rejected
    batch: int | None = None  # accepted rows; rejected ones keep the batch the chain refused them in
    reason_code: str | None = Field(default=None, max_length=64)
    message: str | None = None
    column: str | None = Field(default=None, max_length=128)


class ImportBatch(SQLModel, table=True):
    """A `registerDevices` call of an import: recorded (with its arguments) before it is queued in the outbox
    under `idempotency_key`, so a crash in between queues the same operation again, never a second one.

    status: recorded | queued (in the outbox) | confirmed | split (refused: its rows went to new batches or
    were rejected) | failed (refused and not retried: the import stopped)
    """

    __tablename__ = "import_batches"
    __table_args__ = (Index("ix_import_batches_status", "import_id", "status", "batch"),)
    import_id: str = Field(primary_key=True, max_length=32)
    batch: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    parent: int | None = None  # the batch this one was split from
    rows: int
    idempotency_key: str = Field(max_length=96)
    args_json: str | None = None  # the DeviceInput list, kept until the outbox holds it
    operation_id: str | None = Field(default=None, max_length=32)
    status: str = Field(default="recorded", max_length=16)
    tx_hash: str | None = Field(default=None, max_length=66)
    block_number: int | None = Field(default=None, sa_type=BigInteger)
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = None
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
