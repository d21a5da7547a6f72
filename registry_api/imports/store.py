"""SQL of imports (tables `import_jobs`, `import_rows`, `import_batches` of `registry_api.models`).

Every write that moves an import along is one transaction, so the tables always tell exactly how far it got:
- `record_chunk`: the rows read up to a file position, their outcomes and the batches of the accepted ones,
  with the job's position and counters (guarded by the position it started from: a chunk is recorded once);
- `mark_queued`: the operations that hold batches in the outbox;
- `confirm`: batches on-chain, with the job's confirmed counters;
- `split`: a batch the chain refused, its offending rows rejected and the rest in new batches;
- `fail_batch`, `stop`, `finish`: an import that cannot go on, and the end of one.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Engine, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import SQLModel

from chain_gateway.outbox import CONFIRMED, Operation
from chain_gateway.outbox import FAILED as OP_FAILED
from indexer.models import CodeRule, Device
from registry_api.encoding import canonical_json
from registry_api.imports.formats import Position, RowProblem
from registry_api.models import ImportBatch, ImportJob, ImportRow

__all__ = [
    "ACCEPTED",
    "ACTIVE",
    "BATCH_CONFIRMED",
    "BATCH_FAILED",
    "BATCH_QUEUED",
    "BATCH_RECORDED",
    "BATCH_SPLIT",
    "DONE",
    "FAILED",
    "OPEN_BATCHES",
    "OpenBatch",
    "OperationState",
    "QUEUED",
    "REJECTED",
    "REPORT_PAGE",
    "SUBMITTING",
    "VALIDATING",
    "Child",
    "accepted_rows_of",
    "active_jobs",
    "args_json",
    "batch_counts",
    "batch_rows",
    "code_rules",
    "confirm",
    "create_import_tables",
    "fail_batch",
    "finished_batches",
    "finish",
    "get_job",
    "insert_job",
    "job_by_key",
    "jobs_of",
    "ledger_codes",
    "list_jobs",
    "mark_queued",
    "open_batches",
    "operations",
    "recorded_batches",
    "record_chunk",
    "report_page",
    "split",
    "start",
    "stop",
]

QUEUED, VALIDATING, SUBMITTING, DONE, FAILED = "queued", "validating", "submitting", "done", "failed"
ACTIVE = (QUEUED, VALIDATING, SUBMITTING)
ACCEPTED, REJECTED = "accepted", "rejected"
BATCH_RECORDED, BATCH_QUEUED, BATCH_CONFIRMED = "recorded", "queued", "confirmed"
BATCH_SPLIT, BATCH_FAILED = "split", "failed"
OPEN_BATCHES = (BATCH_RECORDED, BATCH_QUEUED)
LOOKUP_CHUNK = 500  # codes per IN (...) lookup
MAX_ERROR_MESSAGE = 1_000  # characters


def create_import_tables(engine: Engine) -> None:
    SQLModel.metadata.create_all(
        engine,
        tables=[ImportJob.__table__, ImportRow.__table__, ImportBatch.__table__],  # type: ignore[list-item]
    )


# ---------------------------------------------------------------- jobs


def insert_job(engine: Engine, job: ImportJob) -> ImportJob | None:
    """Store a new job; None if the org already has a job under its idempotency key."""
    try:
        with Session(engine, expire_on_commit=False) as session:
            session.add(job)
            session.commit()
    except IntegrityError:
        if job.idempotency_key is None:
            raise
        return None
    return job


def job_by_key(engine: Engine, org_code: str, key: str) -> ImportJob | None:
    with Session(engine, expire_on_commit=False) as session:
        return session.execute(
            select(ImportJob).where(ImportJob.org_code == org_code, ImportJob.idempotency_key == key)
        ).scalar_one_or_none()


def get_job(engine: Engine, import_id: str) -> ImportJob | None:
    with Session(engine, expire_on_commit=False) as session:
        return session.get(ImportJob, import_id)


def list_jobs(
    engine: Engine, org_code: str, limit: int, offset: int, status: str | None = None
) -> tuple[list[ImportJob], int]:
    """One org's imports, newest first, and how many it has (with `status`: in that status)."""
    where = [ImportJob.org_code == org_code]
    if status is not None:
        where.append(ImportJob.status == status)
    with Session(engine, expire_on_commit=False) as session:
        total = session.execute(select(func.count()).select_from(ImportJob).where(*where)).scalar_one()
        jobs = session.execute(
            select(ImportJob)
            .where(*where)
            .order_by(ImportJob.created_at.desc(), ImportJob.import_id)  # type: ignore[attr-defined]
            .offset(offset)
            .limit(limit)
        ).scalars()
        return list(jobs), int(total)


def jobs_of(engine: Engine, statuses: Sequence[str]) -> list[str]:
    """Ids of the jobs in `statuses`, oldest first."""
    with Session(engine) as session:
        return list(
            session.execute(
                select(ImportJob.import_id)
                .where(ImportJob.status.in_(statuses))  # type: ignore[attr-defined]
                .order_by(ImportJob.created_at)  # type: ignore[arg-type]
            ).scalars()
        )


def active_jobs(engine: Engine) -> list[ImportJob]:
    """The unfinished jobs, oldest first (one query for a runner's whole pass)."""
    with Session(engine, expire_on_commit=False) as session:
        return list(
            session.execute(
                select(ImportJob)
                .where(ImportJob.status.in_(ACTIVE))  # type: ignore[attr-defined]
                .order_by(ImportJob.created_at)  # type: ignore[arg-type]
            ).scalars()
        )


def start(engine: Engine, import_id: str) -> None:
    """queued -> validating, with the time it started."""
    now = time.time()
    with Session(engine) as session:
        session.execute(
            update(ImportJob)
            .where(ImportJob.import_id == import_id, ImportJob.status == QUEUED)  # type: ignore[arg-type]
            .values(status=VALIDATING, started_at=now, updated_at=now)
        )
        session.commit()


def stop(engine: Engine, import_id: str, code: str, message: str) -> None:
    """Read no further and send no more batches: the job ends failed once its batches in the outbox are done."""
    with Session(engine) as session:
        session.execute(
            update(ImportJob)
            .where(ImportJob.import_id == import_id, ImportJob.error_code.is_(None))  # type: ignore[arg-type, union-attr]
            .values(error_code=code, error_message=message[:MAX_ERROR_MESSAGE], updated_at=time.time())
        )
        session.commit()


def finish(engine: Engine, import_id: str) -> str:
    """The end of a job with no open batch: done, or failed if it was stopped; returns the status."""
    now = time.time()
    with Session(engine) as session:
        job = session.get(ImportJob, import_id)
        if job is None or job.status not in ACTIVE:
            return job.status if job else FAILED
        job.status = FAILED if job.error_code else DONE
        job.finished_at = job.updated_at = now
        session.commit()
        return job.status


# ---------------------------------------------------------------- reading the file


def record_chunk(
    engine: Engine,
    job: ImportJob,
    after: Position,
    rows: Sequence[Mapping[str, Any]],
    batches: Sequence[ImportBatch],
    status: str,
) -> bool:
    """Record the rows read since the job's position (and their batches) and move the position to `after`.

    False (and nothing written) if the job moved meanwhile (position or batch count): the chunk is someone
    else's, or its batches' numbers are taken.
    """
    accepted = sum(1 for r in rows if r["outcome"] == ACCEPTED)
    now = time.time()
    with Session(engine, expire_on_commit=False) as session:
        moved = session.execute(
            update(ImportJob)
            .where(
                ImportJob.import_id == job.import_id,  # type: ignore[arg-type]
                ImportJob.offset == job.offset,  # type: ignore[arg-type]
                ImportJob.batches_total == job.batches_total,  # the batch's number is still free
                ImportJob.status == VALIDATING,  # type: ignore[arg-type]
            )
            .values(
                offset=after.offset,
                lines_read=after.lines,
                rows_read=after.rows,
                rows_accepted=ImportJob.rows_accepted + accepted,
                rows_rejected=ImportJob.rows_rejected + (len(rows) - accepted),
                batches_total=ImportJob.batches_total + len(batches),
                status=status,
                updated_at=now,
            )
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            return False
        if rows:  # Core, not the ORM's bulk insert (which costs several times more per row)
            session.execute(insert(ImportRow.__table__), [_storable(r) for r in rows])  # type: ignore[arg-type]
        session.add_all(batches)
        session.commit()
    return True


# Every key of an import_rows row: one executemany needs the same keys in each row.
_ROW_DEFAULTS: dict[str, Any] = {"code": None, "batch": None, "reason_code": None, "message": None, "column": None}


def _storable(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row for SQL with NUL shown as U+FFFD in its text: PostgreSQL's text cannot hold NUL, and a rejected row
    quoting a code with NUL in it failed the whole chunk (the import never moved on)."""
    stored = {**_ROW_DEFAULTS, **row}
    for key in ("code", "message", "column"):
        value = stored[key]
        if isinstance(value, str) and "\x00" in value:
            stored[key] = value.replace("\x00", "\ufffd")
    return stored


def code_rules(engine: Engine) -> dict[str, CodeRule]:
    """Every device type's code rule in the mirror, by type name."""
    with Session(engine, expire_on_commit=False) as session:
        return {rule.type_name: rule for rule in session.execute(select(CodeRule)).scalars()}


def _chunks(codes: Sequence[str]) -> Iterable[list[str]]:
    for start_ in range(0, len(codes), LOOKUP_CHUNK):
        yield list(codes[start_ : start_ + LOOKUP_CHUNK])


def accepted_rows_of(engine: Engine, import_id: str, codes: Sequence[str]) -> dict[str, int]:
    """Of `codes`, those an earlier row of the import was accepted with: code -> that row's number."""
    found: dict[str, int] = {}
    with Session(engine) as session:
        for part in _chunks(codes):
            for code, row in session.execute(
                select(ImportRow.code, ImportRow.row).where(
                    ImportRow.import_id == import_id,
                    ImportRow.code.in_(part),  # type: ignore[union-attr]
                    ImportRow.outcome == ACCEPTED,
                )
            ):
                found.setdefault(code, row)
    return found


def ledger_codes(engine: Engine, codes: Sequence[str]) -> set[str]:
    """Of `codes`, those the mirror of the ledger holds."""
    found: set[str] = set()
    with Session(engine) as session:
        for part in _chunks(codes):
            found.update(session.execute(select(Device.code).where(Device.code.in_(part))).scalars())  # type: ignore[attr-defined]
    return found


# ---------------------------------------------------------------- batches


class OpenBatch(NamedTuple):
    """A batch not yet confirmed, split or failed, without its (large) arguments."""

    batch: int
    status: str  # recorded | queued
    rows: int
    operation_id: str | None
    idempotency_key: str


_OPEN_BATCH = (
    ImportBatch.batch,
    ImportBatch.status,
    ImportBatch.rows,
    ImportBatch.operation_id,
    ImportBatch.idempotency_key,
)  # the columns of an OpenBatch


def open_batches(
    engine: Engine, import_id: str, statuses: Sequence[str] = OPEN_BATCHES, limit: int | None = None
) -> list[OpenBatch]:
    """The job's batches in `statuses` (by default all not yet confirmed, split or failed), in batch order."""
    query = (
        select(*_OPEN_BATCH)
        .where(ImportBatch.import_id == import_id, ImportBatch.status.in_(statuses))  # type: ignore[attr-defined]
        .order_by(ImportBatch.batch)  # type: ignore[arg-type]
        .limit(limit)
    )
    with Session(engine) as session:
        return [OpenBatch(*row) for row in session.execute(query)]


def batch_counts(engine: Engine, import_id: str) -> dict[str, int]:
    """How many of the job's batches are recorded and queued (the statuses still open)."""
    query = (
        select(ImportBatch.status, func.count())
        .where(ImportBatch.import_id == import_id, ImportBatch.status.in_(OPEN_BATCHES))  # type: ignore[attr-defined]
        .group_by(ImportBatch.status)
    )
    counts = dict.fromkeys(OPEN_BATCHES, 0)
    with Session(engine) as session:
        counts.update({str(status): int(n) for status, n in session.execute(query)})
    return counts


def finished_batches(engine: Engine, import_id: str) -> list[tuple[OpenBatch, OperationState]]:
    """The job's queued batches whose outbox operation is confirmed or failed, with its state, in batch order.

    One join instead of listing every queued batch and looking up its operation: a runner's pass while the
    chain works through a backlog asks this of every import, and most passes find nothing.
    """
    query = (
        select(
            *_OPEN_BATCH,
            *_OPERATION_STATE,
        )
        .join(Operation, Operation.id == ImportBatch.operation_id)  # type: ignore[arg-type]
        .where(
            ImportBatch.import_id == import_id,
            ImportBatch.status == BATCH_QUEUED,
            Operation.status.in_([CONFIRMED, OP_FAILED]),  # type: ignore[attr-defined]
        )
        .order_by(ImportBatch.batch)  # type: ignore[arg-type]
    )
    with Session(engine) as session:
        return [(OpenBatch(*row[:5]), OperationState(*row[5:])) for row in session.execute(query)]


def recorded_batches(engine: Engine, import_id: str, limit: int) -> list[tuple[OpenBatch, str]]:
    """Up to `limit` recorded batches (not yet in the outbox) with their arguments (canonical JSON), in order."""
    query = (
        select(
            *_OPEN_BATCH,
            ImportBatch.args_json,
        )
        .where(ImportBatch.import_id == import_id, ImportBatch.status == BATCH_RECORDED)
        .order_by(ImportBatch.batch)  # type: ignore[arg-type]
        .limit(limit)
    )
    with Session(engine) as session:
        return [(OpenBatch(*row[:5]), row[5] or "[]") for row in session.execute(query)]


def _move_batch(session: Session, import_id: str, batch: int, from_: Sequence[str], **values: Any) -> bool:
    """Set `values` on a batch if it is still in one of the statuses `from_`; whether it was."""
    moved = session.execute(
        update(ImportBatch)
        .where(
            ImportBatch.import_id == import_id,  # type: ignore[arg-type]
            ImportBatch.batch == batch,  # type: ignore[arg-type]
            ImportBatch.status.in_(from_),  # type: ignore[attr-defined]
        )
        .values(updated_at=time.time(), **values)
    )
    return bool(moved.rowcount == 1)  # type: ignore[attr-defined]


def mark_queued(engine: Engine, import_id: str, queued: Sequence[tuple[int, str]]) -> None:
    """The outbox holds the batches, (batch, operation id) each: their arguments need not be kept here any more."""
    with Session(engine) as session:
        for batch, operation_id in queued:
            _move_batch(
                session,
                import_id,
                batch,
                [BATCH_RECORDED],
                status=BATCH_QUEUED,
                operation_id=operation_id,
                args_json=None,
            )
        session.commit()


class OperationState(NamedTuple):
    """Where an outbox operation is, without its (large) arguments and raw transaction."""

    id: str
    status: str
    tx_hash: str | None
    block_number: int | None
    error_code: str | None
    error_message: str | None


_OPERATION_STATE = (
    Operation.id,
    Operation.status,
    Operation.tx_hash,
    Operation.block_number,
    Operation.error_code,
    Operation.error_message,
)


def operations(engine: Engine, ids: Sequence[str]) -> dict[str, OperationState]:
    """The outbox states of `ids`, read through this engine, not the outbox's (its SQLite reads take the write lock)."""
    found: dict[str, OperationState] = {}
    with Session(engine) as session:
        for part in _chunks(ids):
            for row in session.execute(select(*_OPERATION_STATE).where(Operation.id.in_(part))):  # type: ignore[attr-defined]
                found[row[0]] = OperationState(*row)
    return found


def confirm(engine: Engine, import_id: str, confirmed: Sequence[tuple[OpenBatch, OperationState]]) -> int:
    """Batches on-chain: their tx hash and block, and the job's confirmed counters; returns rows confirmed."""
    now = time.time()
    rows = batches = 0
    with Session(engine) as session:
        for batch, op in confirmed:
            if _move_batch(
                session,
                import_id,
                batch.batch,
                [BATCH_QUEUED],
                status=BATCH_CONFIRMED,
                tx_hash=op.tx_hash,
                block_number=op.block_number,
            ):
                rows += batch.rows
                batches += 1
        if batches:
            session.execute(
                update(ImportJob)
                .where(ImportJob.import_id == import_id)  # type: ignore[arg-type]
                .values(
                    rows_confirmed=ImportJob.rows_confirmed + rows,
                    batches_confirmed=ImportJob.batches_confirmed + batches,
                    updated_at=now,
                )
            )
        session.commit()
    return rows


def batch_rows(engine: Engine, import_id: str, batch: int) -> list[tuple[int, str]]:
    """(row number, code) of the rows accepted into a batch, in row order (the order of its DeviceInputs)."""
    with Session(engine) as session:
        return [
            (int(row), str(code))
            for row, code in session.execute(
                select(ImportRow.row, ImportRow.code)
                .where(ImportRow.import_id == import_id, ImportRow.batch == batch, ImportRow.outcome == ACCEPTED)
                .order_by(ImportRow.row)  # type: ignore[arg-type]
            )
        ]


@dataclass(frozen=True)
class Child:
    """A batch made of part of a refused one: its rows and their DeviceInputs, in row order."""

    rows: list[int]
    devices: list[dict[str, Any]]


def _reject_rows(session: Session, import_id: str, problems: Mapping[int, RowProblem]) -> None:
    if not problems:
        return
    table = ImportRow.__table__  # core, not ORM: an executemany UPDATE keyed by bound parameters
    session.execute(
        update(table)  # type: ignore[arg-type]
        .where(table.c.import_id == bindparam("b_import"), table.c.row == bindparam("b_row"))  # type: ignore[attr-defined]
        .values(
            outcome=REJECTED,
            reason_code=bindparam("b_reason"),
            message=bindparam("b_message"),
            column=bindparam("b_column"),
        ),
        [
            {"b_import": import_id, "b_row": row, "b_reason": p.reason, "b_message": p.message, "b_column": p.column}
            for row, p in problems.items()
        ],
    )


def split(
    engine: Engine,
    import_id: str,
    refused: OpenBatch,
    op: OperationState | Operation,
    problems: Mapping[int, RowProblem],
    children: Sequence[Child],
    key: Any,
) -> list[ImportBatch]:
    """A refused batch: its offending rows rejected, the others moved into new batches (recorded, to be sent).

    `key(batch_number)` names each new batch's idempotency key. Returns the new batches ([] if the refused
    batch was handled already).
    """
    now = time.time()
    with Session(engine, expire_on_commit=False) as session:
        if not _move_batch(
            session,
            import_id,
            refused.batch,
            [BATCH_QUEUED],
            status=BATCH_SPLIT,
            tx_hash=op.tx_hash,
            block_number=op.block_number,
            error_code=op.error_code,
            error_message=(op.error_message or "")[:MAX_ERROR_MESSAGE],
        ):
            session.rollback()
            return []
        job = session.get(ImportJob, import_id)
        assert job is not None
        _reject_rows(session, import_id, problems)
        created: list[ImportBatch] = []
        for number, child in enumerate(children, start=job.batches_total + 1):
            batch = ImportBatch(
                import_id=import_id,
                batch=number,
                parent=refused.batch,
                rows=len(child.rows),
                idempotency_key=key(number),
                args_json=args_json(child.devices),
            )
            session.add(batch)
            session.execute(
                update(ImportRow)
                .where(ImportRow.import_id == import_id, ImportRow.row.in_(child.rows))  # type: ignore[arg-type, attr-defined]
                .values(batch=number),
                execution_options={"synchronize_session": False},
            )
            created.append(batch)
        job.rows_accepted -= len(problems)
        job.rows_rejected += len(problems)
        job.batches_total += len(children)
        job.batches_split += 1
        job.updated_at = now
        session.commit()
    return created


def fail_batch(
    engine: Engine, import_id: str, batch: OpenBatch, problem: RowProblem, op: OperationState | Operation | None
) -> None:
    """A batch that will not be (re)sent because the import stopped: its rows are rejected with `problem`."""
    now = time.time()
    with Session(engine) as session:
        if not _move_batch(
            session,
            import_id,
            batch.batch,
            OPEN_BATCHES,
            status=BATCH_FAILED,
            args_json=None,
            tx_hash=op.tx_hash if op else None,
            block_number=op.block_number if op else None,
            error_code=problem.reason,
            error_message=problem.message[:MAX_ERROR_MESSAGE],
        ):
            session.rollback()
            return
        rejected = session.execute(
            update(ImportRow)
            .where(ImportRow.import_id == import_id, ImportRow.batch == batch.batch, ImportRow.outcome == ACCEPTED)  # type: ignore[arg-type]
            .values(outcome=REJECTED, reason_code=problem.reason, message=problem.message, column=problem.column),
            execution_options={"synchronize_session": False},
        ).rowcount  # type: ignore[attr-defined]
        session.execute(
            update(ImportJob)
            .where(ImportJob.import_id == import_id)  # type: ignore[arg-type]
            .values(
                rows_accepted=ImportJob.rows_accepted - rejected,
                rows_rejected=ImportJob.rows_rejected + rejected,
                batches_failed=ImportJob.batches_failed + 1,
                updated_at=now,
            )
        )
        session.commit()


def args_json(devices: Sequence[Mapping[str, Any]]) -> str:
    """The stored arguments of a batch: registerDevices([DeviceInput, ...]) as canonical JSON."""
    return canonical_json([list(devices)])


# ---------------------------------------------------------------- report

REPORT_PAGE = 5_000  # rows per query of the report


def report_page(engine: Engine, import_id: str, after_row: int, outcome: str | None) -> list[tuple[Any, ...]]:
    """Up to REPORT_PAGE rows after `after_row`: (row, line, code, outcome, operation id, tx hash, block, batch
    status, reason, message, column)."""
    query = (
        select(
            ImportRow.row,
            ImportRow.line,
            ImportRow.code,
            ImportRow.outcome,
            ImportBatch.operation_id,
            ImportBatch.tx_hash,
            ImportBatch.block_number,
            ImportBatch.status,
            ImportRow.reason_code,
            ImportRow.message,
            ImportRow.column,
        )
        .outerjoin(
            ImportBatch,
            (ImportBatch.import_id == ImportRow.import_id) & (ImportBatch.batch == ImportRow.batch),  # type: ignore[arg-type]
        )
        .where(ImportRow.import_id == import_id, ImportRow.row > after_row)  # type: ignore[arg-type]
        .order_by(ImportRow.row)  # type: ignore[arg-type]
        .limit(REPORT_PAGE)
    )
    if outcome is not None:
        query = query.where(ImportRow.outcome == outcome)
    with Session(engine) as session:
        return [tuple(r) for r in session.execute(query)]
