"""An import as the API shows it (progress, rates, ETA) and its per-row report as streamed CSV text."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy import Engine

from registry_api.imports import store
from registry_api.models import ImportJob
from registry_api.schemas.imports import (
    REPORT_COLUMNS,
    ImportAccepted,
    ImportBatchesPublic,
    ImportErrorPublic,
    ImportLinks,
    ImportPublic,
    ImportRowsPublic,
    ImportThroughput,
)

__all__ = ["import_accepted", "import_public", "report_csv"]


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _links(import_id: str) -> ImportLinks:
    base = f"/v1/imports/{import_id}"
    return ImportLinks(status=base, report=f"{base}/report", rejected=f"{base}/report?outcome=rejected")


def import_accepted(job: ImportJob) -> ImportAccepted:
    return ImportAccepted(import_id=job.import_id, status=job.status, links=_links(job.import_id))


def _eta(job: ImportJob, confirmed_rate: float | None) -> float | None:
    """Seconds until the accepted rows still expected (extrapolated from the part of the file read) are
    confirmed, at the rate rows have been confirmed so far."""
    if job.status not in store.ACTIVE:
        return 0.0 if job.status == store.DONE else None
    if not confirmed_rate or job.offset <= 0:
        return None
    expected = job.rows_accepted
    if job.status != store.SUBMITTING and job.file_bytes > job.offset:
        expected = round(job.rows_accepted * job.file_bytes / job.offset)
    return round(max(0, expected - job.rows_confirmed) / confirmed_rate, 1)


def import_public(job: ImportJob, now: float | None = None) -> ImportPublic:
    """The job with its progress: rows and batches, rates since it started, ETA."""
    now = time.time() if now is None else now
    elapsed = ((job.finished_at or now) - job.started_at) if job.started_at else 0.0
    read_rate = round(job.rows_read / elapsed, 1) if elapsed > 0 else None
    confirmed_rate = round(job.rows_confirmed / elapsed, 1) if elapsed > 0 else None
    in_flight = job.batches_total - job.batches_confirmed - job.batches_split - job.batches_failed
    return ImportPublic(
        import_id=job.import_id,
        org_code=job.org_code,
        status=job.status,
        file_name=job.file_name,
        format=job.format,
        file_bytes=job.file_bytes,
        bytes_read=job.offset,
        read_fraction=round(min(1.0, job.offset / job.file_bytes), 4) if job.file_bytes else 1.0,
        rows=ImportRowsPublic(
            read=job.rows_read,
            accepted=job.rows_accepted,
            rejected=job.rows_rejected,
            confirmed=job.rows_confirmed,
            pending=job.rows_accepted - job.rows_confirmed,
        ),
        batches=ImportBatchesPublic(
            total=job.batches_total,
            confirmed=job.batches_confirmed,
            in_flight=in_flight,
            split=job.batches_split,
            failed=job.batches_failed,
        ),
        throughput=ImportThroughput(rows_read_per_s=read_rate, rows_confirmed_per_s=confirmed_rate),
        eta_seconds=_eta(job, confirmed_rate),
        error=ImportErrorPublic(code=job.error_code, message=job.error_message or "") if job.error_code else None,
        created_at=_iso(job.created_at) or "",
        started_at=_iso(job.started_at),
        finished_at=_iso(job.finished_at),
        links=_links(job.import_id),
    )


def report_csv(engine: Engine, import_id: str, outcome: str | None) -> Iterator[str]:
    """The report as CSV text, a page of rows at a time: one line per data row (or per `outcome` row).

    `confirmed` is true once an accepted row's batch is on-chain; operation id, tx hash and block are its
    batch's (for a rejected row: of the batch the chain refused it in, if it got that far).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    after = 0
    while True:
        page = store.report_page(engine, import_id, after, outcome)
        for row, line, code, row_outcome, op_id, tx_hash, block, batch_status, reason, message, column in page:
            confirmed = batch_status == store.BATCH_CONFIRMED and row_outcome == store.ACCEPTED
            writer.writerow(
                (row, line, code or "", row_outcome, "true" if confirmed else "false", op_id or "", tx_hash or "",
                 "" if block is None else block, reason or "", message or "", column or "")
            )  # fmt: skip
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(page) < store.REPORT_PAGE:
            return
        after = page[-1][0]
