"""The import runner: reads uploaded files into validated rows and batches, sends the batches through the
gateway, follows them to the chain, and splits the ones the chain refuses.

It keeps nothing in memory that matters: every pass starts from SQL (`registry_api.imports.store`), so a
runner started after a crash (kill -9 included) goes on where the last one stopped:
- rows are read from the job's recorded file position; a chunk of rows and its batches are recorded in one
  transaction that moves the position, so no row is read into two batches;
- a batch is recorded with its arguments before it is queued in the outbox under the idempotency key
  `import:<import id>:batch:<n>`; a crash in between queues it again under the same key, which the gateway
  answers with the operation it already holds: a batch is never enqueued twice, a device never sent twice;
- a refused batch (e.g. a code registered meanwhile by another org: DeviceRegistryDuplicateCode) is split
  in one transaction: the rows its decoded error names are rejected with that reason, rows the ledger now
  holds are rejected as duplicates, the rest go into a new batch; an error that names no row halves the batch
  until it does; an error of the caller itself (role or membership lost) stops the import, as a cancel does:
  batches in the outbox still land, recorded ones are not sent and their rows are rejected with the reason.

Memory does not grow with the file: the file is read row by row from its recorded offset, a chunk holds at
most BATCHES_PER_READ batches of rows, and duplicates within the file are looked up chunk by chunk in
`import_rows` through its (import_id, code) index rather than in an in-memory set of codes (0 bytes of memory
per code; on disk a row takes ~260 bytes in SQLite, indexes included: ~260 MB per million rows). Duplicates
against the ledger are looked up in the mirror, chunk by chunk; the contract has the last word (refused
batches, above).

Reading does not wait for the chain (rows are validated and recorded as fast as the process allows, so the
report of rejected rows fills ahead of the confirmations); sending is held to `import_max_inflight_batches`
batches per import in the outbox at once, so other writes are not queued behind a million-row import.
Imports run side by side, round-robin.

One runner per import directory: the thread holds an exclusive `flock` on `<import_dir>/.runner.lock`
(released by the kernel when the process dies), so API workers sharing a directory never run one twice.

Crash-test hook: with `DIRCHAIN_IMPORT_CRASH_AT=after_record:<n>` the process exits with `os._exit(137)`
right after recording batch n and before queueing it (tests only).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from chain_gateway.errors import GatewayConfigError, GatewayRPCError, InvalidCall
from chain_gateway.gateway import Gateway, WriteRequest
from chain_gateway.outbox import CONFIRMED, Operation
from chain_gateway.outbox import FAILED as OP_FAILED
from chain_gateway.settings import Settings
from indexer.models import CodeRule
from registry_api.errors import describe_revert
from registry_api.imports import store
from registry_api.imports.formats import FileLayout, Position, RawRecord, RowProblem, iter_records
from registry_api.imports.rows import AcceptedRow, RowValidator
from registry_api.models import ImportBatch, ImportJob

__all__ = ["CRASH_ENV", "CRASH_EXIT_CODE", "ImportRunner", "batch_key", "layout_of"]

log = logging.getLogger(__name__)

CONTRACT, FUNCTION = "DeviceRegistry", "registerDevices"
CRASH_ENV = "DIRCHAIN_IMPORT_CRASH_AT"
CRASH_EXIT_CODE = 137
MAX_ROWS_PER_CHUNK = 5_000  # rows read per batch's worth even when few are accepted
BATCHES_PER_READ = 4  # batches recorded per transaction: its fixed cost (job update, lookups, commit) shared
SLICE_SECONDS = 0.5  # reading of one import per pass, so that imports (and sending) take turns
RULES_TTL_SECONDS = 5.0
LOCK_RETRY_SECONDS = 2.0
ERROR_BACKOFF_SECONDS = 2.0
# Errors of the caller, not of a row: every batch would fail the same way, so the import stops.
_CALLER_ERRORS = frozenset({"ConsortiumMissingRole", "ConsortiumUnknownAccount", "ConsortiumOrgInactive"})
# Where a field named by a contract error sits in an import row.
_COLUMNS = {"code": "code", "location": "lat", "status": "status", "type": "type", "built_at": "built_at"}


def batch_key(import_id: str, batch: int) -> str:
    """The Idempotency-Key of an import's batch in the outbox."""
    return f"import:{import_id}:batch:{batch}"


def layout_of(job: ImportJob) -> FileLayout:
    """How to read a job's file (the CSV columns were checked at upload)."""
    columns = tuple(json.loads(job.columns_json)) if job.columns_json else None
    return FileLayout(job.format, columns, Position(job.offset, job.lines_read, job.rows_read))


@dataclass
class _Chunk:
    """Rows read in one go: (record, outcome) in file order, where reading stopped, and whether the file ended."""

    items: list[tuple[RawRecord, AcceptedRow | RowProblem]] = field(default_factory=list)
    after: Position | None = None
    eof: bool = False


class ImportRunner:
    """Moves imports along: `run_once` is one pass over every unfinished import; `start` runs it in a thread."""

    def __init__(self, engine: Engine, gateway: Gateway, settings: Settings, *, owns_engine: bool = False) -> None:
        self.engine = engine
        self._owns_engine = owns_engine  # `close` disposes it once the thread is stopped
        self.gateway = gateway
        self.directory = Path(settings.import_dir)
        self.batch_rows = settings.import_batch_size
        self.batch_bytes = settings.import_batch_max_bytes
        self.max_inflight = settings.import_max_inflight_batches
        self.poll_seconds = settings.import_poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rules: tuple[float, dict[str, CodeRule]] = (0.0, {})
        crash = os.environ.get(CRASH_ENV, "")
        self._crash_batch = int(crash.split(":", 1)[1]) if crash.startswith("after_record:") else None

    def create_tables(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        store.create_import_tables(self.engine)

    # ------------------------------------------------------------ thread

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="dirchain-imports", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def close(self) -> None:
        """Stop the thread, then release the engine if the runner owns it."""
        self.stop()
        if self._owns_engine:
            self.engine.dispose()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """Look for work now (a new upload)."""
        self._wake.set()

    def _run(self) -> None:
        with self._exclusive() as held:
            while not held() and not self._stop.wait(LOCK_RETRY_SECONDS):
                pass
            while not self._stop.is_set():
                try:
                    changed = self.run_once()
                except (GatewayRPCError, OperationalError) as exc:
                    log.warning("import pass failed, retrying: %s", str(exc).splitlines()[0])
                    changed = 0
                    self._stop.wait(ERROR_BACKOFF_SECONDS)
                except Exception:  # the thread must not die: log and go on after a pause
                    log.exception("import pass failed")
                    changed = 0
                    self._stop.wait(ERROR_BACKOFF_SECONDS)
                if changed == 0:
                    self._wake.wait(self.poll_seconds)
                    self._wake.clear()

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[Any]:
        """A callable that takes (or tells it holds) the runner lock of the import directory."""
        self.directory.mkdir(parents=True, exist_ok=True)
        handle: IO[bytes] = (self.directory / ".runner.lock").open("ab")
        held = False

        def take() -> bool:
            nonlocal held
            if not held:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    held = True
                except BlockingIOError:
                    log.info("another runner holds %s; waiting", self.directory / ".runner.lock")
            return held

        try:
            yield take
        finally:
            handle.close()  # releases the lock

    # ------------------------------------------------------------ one pass

    def run_once(self) -> int:
        """One pass over every unfinished import; returns how much changed (0: nothing to do)."""
        return sum(self._advance(job) for job in store.active_jobs(self.engine))

    def _advance(self, job: ImportJob) -> int:
        """One import's turn: follow its batches, send, read a slice, finish. While the chain works through a
        backlog most turns change nothing, so such a turn costs two queries."""
        changed = 0
        if job.status == store.QUEUED:
            store.start(self.engine, job.import_id)
            changed += 1
        changed += self._follow(job, store.finished_batches(self.engine, job.import_id))
        if changed or job.status == store.VALIDATING:  # moved (started, split, stopped) or about to read
            fresh = store.get_job(self.engine, job.import_id)
            if fresh is None or fresh.status not in store.ACTIVE:
                return changed
            job = fresh
        sent, still_open = self._send_recorded(job)
        changed += sent
        deadline = time.monotonic() + SLICE_SECONDS
        readable = bool(self._code_rules())  # a mirror not yet caught up would make every row UNKNOWN_TYPE
        read = 0
        while readable and job.status == store.VALIDATING and job.error_code is None and time.monotonic() < deadline:
            progressed = self._read_chunk(job)
            read += progressed
            fresh = store.get_job(self.engine, job.import_id)
            assert fresh is not None
            job = fresh
            if not progressed:
                break
        if read:
            changed += read
            sent, still_open = self._send_recorded(job)
            changed += sent
        if (job.status == store.SUBMITTING or job.error_code) and not still_open:
            status = store.finish(self.engine, job.import_id)
            self._remove_file(job)
            log.info("import %s %s: %d rows, %d rejected", job.import_id, status, job.rows_read, job.rows_rejected)
            changed += 1
        return changed

    # ------------------------------------------------------------ reading

    def _code_rules(self) -> dict[str, CodeRule]:
        """The mirror's code rules (re-read every few seconds; an empty mirror is asked again each time)."""
        loaded_at, rules = self._rules
        if not rules or time.monotonic() - loaded_at > RULES_TTL_SECONDS:
            rules = store.code_rules(self.engine)
            self._rules = (time.monotonic(), rules)
        return rules

    def _read(self, job: ImportJob) -> list[_Chunk]:
        """Rows from the job's position, a batch's worth per chunk (rows or calldata bytes), until BATCHES_PER_READ
        batches are full or the file ends."""
        chunks = [_Chunk()]
        validator = RowValidator(self._code_rules(), job.org_code)
        accepted = size = 0
        layout = layout_of(job)
        records = iter_records(Path(job.file_path), layout, layout.start)
        try:
            for record in records:
                result = validator.check(record)
                if isinstance(result, AcceptedRow):
                    if accepted and size + result.size > self.batch_bytes:  # the row starts the next batch
                        if len(chunks) == BATCHES_PER_READ:
                            return chunks
                        chunks.append(_Chunk())
                        accepted = size = 0
                    accepted += 1
                    size += result.size
                chunks[-1].items.append((record, result))
                chunks[-1].after = record.after
                if accepted >= self.batch_rows or len(chunks[-1].items) >= MAX_ROWS_PER_CHUNK:
                    if len(chunks) == BATCHES_PER_READ:
                        return chunks
                    chunks.append(_Chunk())
                    accepted = size = 0
            chunks[-1].eof = True
            return chunks
        finally:
            records.close()

    def _read_chunk(self, job: ImportJob) -> int:
        """Read, check and record a few batches' worth of rows (and their batches) in one transaction; 0 if the job
        could not move."""
        try:
            chunks = self._read(job)
        except OSError as exc:
            store.stop(self.engine, job.import_id, "IMPORT_FILE_UNREADABLE", f"the uploaded file cannot be read: {exc}")
            return 1
        rows, batches = self._outcomes(job, chunks)
        after = next((c.after for c in reversed(chunks) if c.after is not None), None)
        after = after or Position(job.offset, job.lines_read, job.rows_read)
        status = store.SUBMITTING if chunks[-1].eof else store.VALIDATING
        if not store.record_chunk(self.engine, job, after, rows, batches, status):
            return 0
        if any(batch.batch == self._crash_batch for batch in batches):
            os._exit(CRASH_EXIT_CODE)  # crash-test hook, see the module docstring
        return max(1, len(rows))

    def _outcomes(self, job: ImportJob, chunks: list[_Chunk]) -> tuple[list[dict[str, Any]], list[ImportBatch]]:
        """The chunks' rows for `import_rows` and a batch of each chunk's accepted rows, duplicates rejected."""
        codes = [r.code for chunk in chunks for _, r in chunk.items if isinstance(r, AcceptedRow)]
        earlier = store.accepted_rows_of(self.engine, job.import_id, codes) if codes else {}
        on_ledger = store.ledger_codes(self.engine, codes) if codes else set()
        first_row: dict[str, int] = {}
        rows: list[dict[str, Any]] = []
        batches: list[ImportBatch] = []
        for chunk in chunks:
            number = job.batches_total + len(batches) + 1
            devices = self._chunk_outcomes(job, chunk, number, earlier, on_ledger, first_row, rows)
            if devices:
                batches.append(
                    ImportBatch(
                        import_id=job.import_id,
                        batch=number,
                        rows=len(devices),
                        idempotency_key=batch_key(job.import_id, number),
                        args_json=store.args_json(devices),
                    )
                )
        return rows, batches

    @staticmethod
    def _chunk_outcomes(
        job: ImportJob,
        chunk: _Chunk,
        number: int,
        earlier: dict[str, int],
        on_ledger: set[str],
        first_row: dict[str, int],
        rows: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """Append one chunk's rows to `rows` (accepted ones in batch `number`); the DeviceInputs of that batch."""
        devices: list[dict[str, Any]] = []
        for record, result in chunk.items:
            if isinstance(result, AcceptedRow):
                seen = first_row.get(result.code, earlier.get(result.code))
                if seen is not None:
                    result = RowProblem(
                        "DUPLICATE_CODE_IN_FILE", f"code {result.code} is already on row {seen} of this file", "code"
                    )
                elif result.code in on_ledger:
                    result = RowProblem("DUPLICATE_CODE", f"device code {result.code} is already registered", "code")
            row: dict[str, Any] = {"import_id": job.import_id, "row": record.row, "line": record.line}
            if isinstance(result, AcceptedRow):
                first_row[result.code] = record.row
                devices.append(result.device)
                row.update(code=result.code, outcome=store.ACCEPTED, batch=number)
            else:
                row.update(
                    code=_code_of(record),
                    outcome=store.REJECTED,
                    batch=None,
                    reason_code=result.reason,
                    message=result.message,
                    column=result.column,
                )
            rows.append(row)
        return devices

    # ------------------------------------------------------------ sending

    def _send_recorded(self, job: ImportJob) -> tuple[int, int]:
        """Queue recorded batches in the outbox while fewer than `max_inflight` of the import's are there (all of
        them are failed instead if the import stopped); (batches moved, batches still open)."""
        counts = store.batch_counts(self.engine, job.import_id)
        recorded, queued = counts[store.BATCH_RECORDED], counts[store.BATCH_QUEUED]
        if job.error_code is not None:
            problem = RowProblem(job.error_code, f"not sent: the import stopped ({job.error_message})")
            failed = store.open_batches(self.engine, job.import_id, [store.BATCH_RECORDED]) if recorded else []
            for batch in failed:
                store.fail_batch(self.engine, job.import_id, batch, problem, None)
            return len(failed), queued + recorded - len(failed)
        room = self.max_inflight - queued
        if room <= 0 or not recorded:
            return 0, queued + recorded
        return self._send(job, store.recorded_batches(self.engine, job.import_id, room)), queued + recorded

    def _send(self, job: ImportJob, batches: list[tuple[store.OpenBatch, str]]) -> int:
        """Queue recorded batches in the outbox in one commit (each under its idempotency key); how many."""
        requests = [
            WriteRequest(job.org_code, job.account, CONTRACT, FUNCTION, json.loads(args), batch.idempotency_key)
            for batch, args in batches
        ]
        try:
            # no simulation: the chain's refusal is handled per batch (see _refused)
            ops = self.gateway.enqueue_many(requests)
        except (GatewayConfigError, InvalidCall) as exc:
            store.stop(self.engine, job.import_id, "GATEWAY_UNAVAILABLE", f"the gateway cannot send the batches: {exc}")
            return 0
        store.mark_queued(
            self.engine, job.import_id, [(b.batch, op.id) for (b, _), op in zip(batches, ops, strict=True)]
        )
        return len(ops)

    # ------------------------------------------------------------ following

    def _follow(self, job: ImportJob, finished: list[tuple[store.OpenBatch, store.OperationState]]) -> int:
        """Record the job's batches whose operations are confirmed, and split the ones the chain refused."""
        confirmed = [(b, op) for b, op in finished if op.status == CONFIRMED]
        changed = store.confirm(self.engine, job.import_id, confirmed) if confirmed else 0
        for batch, state in finished:
            if state.status == OP_FAILED:
                op = self.gateway.get_operation(state.id)  # with its arguments and decoded error
                assert op is not None
                self._refused(job, batch, op)
                changed += 1
        return changed

    def _refused(self, job: ImportJob, batch: store.OpenBatch, op: Operation) -> None:
        """Split a batch the chain refused (see the module docstring)."""
        name, args = op.error_code or "", op.error_args or {}
        info = describe_revert(name, args)
        rows = store.batch_rows(self.engine, job.import_id, batch.batch)
        devices: list[dict[str, Any]] = list(op.args[0])
        if name in _CALLER_ERRORS or job.error_code is not None or len(devices) != len(rows):
            store.stop(self.engine, job.import_id, info.code, f"the chain refused batch {batch.batch}: {info.message}")
            store.fail_batch(self.engine, job.import_id, batch, RowProblem(info.code, info.message), op)
            return
        problems = _named_rows(name, args, devices, info)
        halve = not problems and len(rows) > 1
        if not problems and not halve:
            problems = {0: RowProblem(info.code, info.message, _COLUMNS.get(info.field or ""))}
        rest = [i for i in range(len(rows)) if i not in problems]
        registered = store.ledger_codes(self.engine, [devices[i]["code"] for i in rest])
        for i in rest:
            if devices[i]["code"] in registered:
                problems[i] = RowProblem(
                    "DUPLICATE_CODE", f"device code {devices[i]['code']} is already registered", "code"
                )
        rest = [i for i in rest if i not in problems]
        groups = [rest[: len(rest) // 2], rest[len(rest) // 2 :]] if halve and len(rest) > 1 else [rest]
        children = [store.Child([rows[i][0] for i in g], [devices[i] for i in g]) for g in groups if g]
        log.info(
            "import %s: batch %d refused (%s): %d rows rejected, %d new batches",
            job.import_id, batch.batch, name, len(problems), len(children),
        )  # fmt: skip
        store.split(
            self.engine,
            job.import_id,
            batch,
            op,
            {rows[i][0]: p for i, p in problems.items()},
            children,
            lambda n: batch_key(job.import_id, n),
        )

    def _remove_file(self, job: ImportJob) -> None:
        with contextlib.suppress(FileNotFoundError):
            Path(job.file_path).unlink()


def _code_of(record: RawRecord) -> str | None:
    code = (record.values or {}).get("code")
    if not isinstance(code, str):
        return None
    return code.strip()[:128] or None


# Contract errors that name their rows by a DeviceInput field other than the code: error arg -> input field.
_NAMED_BY = {
    "DeviceRegistryBadTime": {"time": "builtAt"},
    "DeviceRegistryBadLocation": {"lat": "lat", "lon": "lon"},
    "DeviceRegistryUnknownType": {"typeId": "typeId"},
}


def _named_rows(name: str, args: dict[str, Any], devices: list[dict[str, Any]], info: Any) -> dict[int, RowProblem]:
    """The rows (by index in the batch) a contract error names, with the problem to report for each."""
    problem = RowProblem(info.code, info.message, _COLUMNS.get(info.field or ""))
    if name == "DeviceRegistryBadTime":
        problem = RowProblem("BUILT_AT_IN_FUTURE", "built_at is later than the chain's latest block time", "built_at")
    elif name == "DeviceRegistryBadLocation":
        problem = problem._replace(column="lat")
    elif name == "DeviceRegistryUnknownType":
        problem = problem._replace(column="type")
    fields = {"code": "code"} if isinstance(args.get("code"), str) else _NAMED_BY.get(name, {})
    if not fields:
        return {}
    return {i: problem for i, d in enumerate(devices) if all(d.get(f) == args.get(a) for a, f in fields.items())}
