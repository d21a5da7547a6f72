"""Bulk imports of devices as the API answers them: the 202 of an upload, an import's progress, a page of them."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = [
    "REPORT_COLUMNS",
    "ImportAccepted",
    "ImportBatchesPublic",
    "ImportErrorPublic",
    "ImportLinks",
    "ImportPublic",
    "ImportRowsPublic",
    "ImportThroughput",
    "ImportsPublic",
]

REPORT_COLUMNS = (
    "row", "line", "code", "outcome", "confirmed", "operation_id", "tx_hash", "block_number", "reason_code",
    "message", "column",
)  # fmt: skip


class ImportLinks(BaseModel):
    status: str = Field(examples=["/v1/imports/5f0c..."])
    report: str = Field(examples=["/v1/imports/5f0c.../report"])
    rejected: str = Field(examples=["/v1/imports/5f0c.../report?outcome=rejected"])


class ImportAccepted(BaseModel):
    """The answer to an upload (202): the import to follow until it is done."""

    import_id: str
    status: str = Field(description="queued | validating | submitting | done | failed")
    links: ImportLinks


class ImportRowsPublic(BaseModel):
    read: int = Field(description="data rows read from the file so far")
    accepted: int = Field(description="valid rows, on-chain or on their way (rows the chain refused are rejected)")
    rejected: int
    confirmed: int = Field(description="rows on-chain with the confirmations the gateway waits for")
    pending: int = Field(description="accepted rows not yet confirmed")


class ImportBatchesPublic(BaseModel):
    total: int = Field(description="registerDevices batches made, split ones included")
    confirmed: int
    in_flight: int = Field(description="recorded or in the outbox, not yet confirmed")
    split: int = Field(description="refused by the chain: offending rows rejected, the rest sent again")
    failed: int


class ImportThroughput(BaseModel):
    rows_read_per_s: float | None
    rows_confirmed_per_s: float | None


class ImportErrorPublic(BaseModel):
    code: str
    message: str


class ImportPublic(BaseModel):
    """An import and how far it got."""

    import_id: str
    org_code: str
    status: str = Field(
        description="queued | validating (reading the file; accepted rows go on-chain meanwhile) | submitting "
        "(the file is read; waiting for its last batches) | done | failed"
    )
    file_name: str
    format: str = Field(description="csv | ndjson")
    file_bytes: int
    bytes_read: int
    read_fraction: float = Field(description="of the file's bytes, 0..1")
    rows: ImportRowsPublic
    batches: ImportBatchesPublic
    throughput: ImportThroughput
    eta_seconds: float | None = Field(description="until every accepted row is confirmed, at the current rate")
    error: ImportErrorPublic | None = Field(description="why a failed import stopped")
    created_at: str
    started_at: str | None
    finished_at: str | None
    links: ImportLinks


class ImportsPublic(BaseModel):
    data: list[ImportPublic]
    count: int
