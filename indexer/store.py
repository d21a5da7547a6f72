"""SQL side of the indexer: one transaction per block range, checkpoint, indexed block hashes, reorg rewind.

Invariants (each holds after every commit):
- The mirror tables are the projection of every log of blocks `deploy_block..checkpoint` and nothing else.
  A range's rows, its block hashes and the new checkpoint are written in ONE transaction (`Store.batch`),
  so a crash mid-range leaves the previous consistent state.
- `indexed_blocks` holds (number, hash, parent hash) of every indexed block that was within the finality
  depth of the chain head when it was indexed, and nothing older than `head - finality_depth`.
- Undo journal (`indexer_undo`, Safe's reorg model with a Ponder-like journal): for every projection row a
  block changed while the block was within the finality depth, the row as it was before that block. It covers
  exactly the blocks in `indexed_blocks`, so deep catch-up pays no journal cost. Rewinding to an ancestor A
  restores, for each journaled key, the prior of its earliest entry above A (the row as it stood after A),
  deletes the history rows (`APPEND_TABLES`) above A, and drops journal and hashes above A.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Index,
    Table,
    and_,
    bindparam,
    delete,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlmodel import SQLModel

from indexer import models
from indexer.errors import ReorgTooDeepError
from indexer.spatial import create_spatial_index

__all__ = ["APPEND_TABLES", "PROJECTION_TABLES", "Batch", "BlockRef", "Checkpoint", "Store", "bulk_insert"]

CHECKPOINT_NAME = "mirror"
PREFETCH_CHUNK = 500  # keys per SELECT ... IN (...)


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


# Projection tables: rows are current state, keyed by their primary key, journaled for rewinds.
PROJECTION_TABLES: dict[str, Table] = {
    t.name: t
    for t in map(
        _table,
        (
            models.Member,
            models.Account,
            models.AccountRole,
            models.CodeRule,
            models.Device,
            models.Proposal,
            models.CatalogEntry,
            models.CatalogLineage,
            models.CatalogSearch,
            models.SharingRequest,
            models.ApprovalThreshold,
            models.Algorithm,
            models.EntryAlgorithm,
            models.ReviewLead,
            models.Project,
            models.Carrier,
            models.CarrierReuseRequest,
        ),
    )
}
# History tables: append-only, one row per log, removed on rewind by block number.
APPEND_TABLES: dict[str, Table] = {
    t.name: t
    for t in map(
        _table,
        (
            models.DeviceEvent,
            models.Inspection,
            models.CatalogEntryVersion,
            models.SharingApproval,
            models.AlgorithmEvaluation,
            models.ReceiptBatch,
            models.ProjectDevice,
        ),
    )
}

_BLOCKS = _table(models.IndexedBlock)
_CHECKPOINTS = _table(models.IndexerCheckpoint)
_UNDO = _table(models.UndoEntry)

Key = tuple[Any, ...]
Row = dict[str, Any]
_UNKNOWN = object()  # the database state of a key not read yet


@dataclass(frozen=True)
class BlockRef:
    """A block as the reorg check needs it."""

    number: int
    hash: str
    parent_hash: str


@dataclass(frozen=True)
class Checkpoint:
    """The last fully indexed block, and the chain head seen by the last sync."""

    block_number: int
    block_hash: str
    chain_head: int | None
    synced_at: float | None


@cache
def _read_indexes() -> tuple[Index, ...]:
    """The secondary (non-unique) indexes of the mirror's tables, as the models declare them."""
    tables = [*PROJECTION_TABLES.values(), *APPEND_TABLES.values()]
    return tuple(sorted((i for t in tables for i in t.indexes if not i.unique), key=lambda i: str(i.name)))


@cache
def _pk_columns(table: Table) -> tuple[str, ...]:
    return tuple(c.name for c in table.primary_key.columns)


def bulk_insert(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT `rows` (all with the same keys) in the connection's transaction, by the fastest path available.

    SQLAlchemy's executemany spends ~20 us per row building parameters, more than the indexer's whole
    per-event budget, so SQLite gets the driver's executemany with tuples and PostgreSQL (psycopg) gets COPY;
    other dialects use SQLAlchemy.
    """
    if not rows:
        return
    columns = [c.name for c in table.columns if c.name in rows[0]]
    values = itemgetter(*columns) if len(columns) > 1 else (lambda r: (r[columns[0]],))
    quoted = ", ".join(f'"{c}"' for c in columns)
    driver = conn.connection.dbapi_connection
    if conn.dialect.name == "sqlite" and driver is not None:
        cursor = driver.cursor()
        try:
            sql = f'INSERT INTO "{table.name}" ({quoted}) VALUES ({", ".join("?" * len(columns))})'
            cursor.executemany(sql, [values(r) for r in rows])
        finally:
            cursor.close()
    elif conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg" and driver is not None:
        with driver.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
            for r in rows:
                copy.write_row(values(r))
    else:
        conn.execute(insert(table), list(rows))


class Batch:
    """The writes of one block range, buffered in memory and flushed in the range's transaction.

    Handlers read rows with `get` (a copy), write them with `put`/`insert`/`delete` and append history with
    `append`; `block_number` is the block of the log being applied. `journal_from` is the first block whose
    changes are journaled (None: none are).
    """

    def __init__(self, conn: Connection, journal_from: int | None) -> None:
        self.conn = conn
        self.journal_from = journal_from
        self.block_number = 0
        self.block_times: dict[int, int] = {}
        self.senders: dict[str, str] = {}
        self._original: dict[str, dict[Key, Any]] = defaultdict(dict)  # DB state: row, None (absent)
        self._current: dict[str, dict[Key, Row | None]] = defaultdict(dict)
        self._appends: dict[str, list[Row]] = defaultdict(list)
        self._journal: list[Row] = []
        self._journaled: set[tuple[str, Key, int]] = set()

    # ------------------------------------------------------------ reads

    def prefetch(self, table_name: str, keys: Iterable[Key]) -> None:
        """Read the rows of `keys` in bulk so that later `get`s need no query."""
        table = PROJECTION_TABLES[table_name]
        known = self._original[table_name]
        wanted = sorted({k for k in keys if k not in known and k not in self._current[table_name]})
        pk = _pk_columns(table)
        for i in range(0, len(wanted), PREFETCH_CHUNK):
            chunk = wanted[i : i + PREFETCH_CHUNK]
            if len(pk) == 1:
                where = table.c[pk[0]].in_([k[0] for k in chunk])
            else:
                where = tuple_(*(table.c[c] for c in pk)).in_(chunk)
            for row in self.conn.execute(select(table).where(where)).mappings():
                known[tuple(row[c] for c in pk)] = dict(row)
            for key in chunk:
                known.setdefault(key, None)

    def get(self, table_name: str, key: Key) -> Row | None:
        """The row as the logs applied so far left it (a copy), or None."""
        current = self._current[table_name]
        if key in current:
            row = current[key]
        else:
            row = self._load(table_name, key)
        return dict(row) if row is not None else None

    def _load(self, table_name: str, key: Key) -> Row | None:
        known = self._original[table_name]
        if key not in known:
            table = PROJECTION_TABLES[table_name]
            pk = _pk_columns(table)
            found = self.conn.execute(
                select(table).where(and_(*(table.c[c] == v for c, v in zip(pk, key, strict=True))))
            ).first()
            known[key] = dict(found._mapping) if found is not None else None
        row: Row | None = known[key]
        return row

    def sender(self, tx_hash: str) -> str | None:
        return self.senders.get(tx_hash)

    def block_time(self, number: int) -> int:
        return self.block_times[number]

    # ------------------------------------------------------------ writes

    def _journal_prior(self, table_name: str, key: Key, prior: Row | None) -> None:
        if self.journal_from is None or self.block_number < self.journal_from:
            return
        mark = (table_name, key, self.block_number)
        if mark in self._journaled:
            return
        self._journaled.add(mark)
        self._journal.append(
            {
                "block_number": self.block_number,
                "table_name": table_name,
                "key": json.dumps(list(key)),
                "prior": None if prior is None else json.dumps(prior, sort_keys=True),
            }
        )

    def _key(self, table_name: str, row: Mapping[str, Any]) -> Key:
        return tuple(row[c] for c in _pk_columns(PROJECTION_TABLES[table_name]))

    def insert(self, table_name: str, row: Row) -> None:
        """Write a row the contract guarantees is new (no read: the fast path of registrations)."""
        key = self._key(table_name, row)
        current = self._current[table_name]
        if key in current or key in self._original[table_name]:
            self.put(table_name, row)
            return
        self._original[table_name][key] = _UNKNOWN  # asserted absent; an existing row fails the INSERT
        self._journal_prior(table_name, key, None)
        current[key] = row

    def put(self, table_name: str, row: Row) -> None:
        """Create or replace a row."""
        key = self._key(table_name, row)
        prior = self._current[table_name][key] if key in self._current[table_name] else self._load(table_name, key)
        self._journal_prior(table_name, key, prior)
        self._current[table_name][key] = row

    def delete(self, table_name: str, key: Key) -> None:
        """Remove a row if it exists."""
        prior = self._current[table_name][key] if key in self._current[table_name] else self._load(table_name, key)
        if prior is None:
            return
        self._journal_prior(table_name, key, prior)
        self._current[table_name][key] = None

    def append(self, table_name: str, row: Row) -> None:
        """Add a history row (device_events, inspections)."""
        self._appends[table_name].append(row)

    # ------------------------------------------------------------ flush

    def flush(self) -> int:
        """Write everything buffered; returns the number of rows written."""
        written = 0
        for table_name, current in self._current.items():
            table = PROJECTION_TABLES[table_name]
            pk = _pk_columns(table)
            original = self._original[table_name]
            inserts: list[Row] = []
            updates: list[Row] = []
            deletes: list[Row] = []
            for key, row in current.items():
                before = original.get(key, _UNKNOWN)
                absent = before is None or before is _UNKNOWN
                if row is None:
                    if not absent:
                        deletes.append({f"pk_{c}": v for c, v in zip(pk, key, strict=True)})
                elif absent:
                    inserts.append(row)
                elif row != before:
                    updates.append({**row, **{f"pk_{c}": v for c, v in zip(pk, key, strict=True)}})
            where = and_(*(table.c[c] == bindparam(f"pk_{c}") for c in pk))
            if deletes:
                self.conn.execute(delete(table).where(where), deletes)
            if updates:
                self.conn.execute(update(table).where(where), updates)
            bulk_insert(self.conn, table, inserts)
            written += len(inserts) + len(updates) + len(deletes)
        for table_name, rows in self._appends.items():
            bulk_insert(self.conn, APPEND_TABLES[table_name], rows)
            written += len(rows)
        bulk_insert(self.conn, _UNDO, self._journal)
        self._current.clear()
        self._original.clear()
        self._appends.clear()
        self._journal.clear()
        self._journaled.clear()
        return written


class Store:
    """The indexer's SQL store over an SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, name: str = CHECKPOINT_NAME) -> None:
        self.engine = engine
        self.name = name

    def create_tables(self) -> None:
        """Create the mirror and indexer tables that do not exist yet (with their indexes).

        Writes nothing when they exist: a second process opening the store while a build has the read indexes
        dropped must not wait on (or undo) it; the indexer's sync puts them back (`create_read_indexes`).
        """
        tables = [*PROJECTION_TABLES.values(), *APPEND_TABLES.values(), _BLOCKS, _CHECKPOINTS, _UNDO]
        SQLModel.metadata.create_all(self.engine, tables=tables)
        create_spatial_index(self.engine)  # an expression index: created here, not by the model

    def drop_read_indexes(self) -> None:
        """Drop the mirror's secondary indexes (reads need them, the indexer reads by primary key only).

        For a mirror built from empty: building an index once over loaded rows costs far less than updating
        it row by row (SQLite: inserts ~40 % faster). `create_read_indexes` puts them back. The spatial index
        stays, so that `create_tables` (which makes sure of it) never writes while a build runs.
        """
        with self.engine.begin() as conn:
            for index in _read_indexes():
                conn.execute(text(f'DROP INDEX IF EXISTS "{index.name}"'))

    def create_read_indexes(self) -> None:
        """Create the secondary indexes of the mirror that are missing (idempotent)."""
        with self.engine.begin() as conn:
            # Names from the catalog, not `checkfirst` (SQLAlchemy's reflection warns on the expression index).
            catalog = (
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
                if conn.dialect.name == "postgresql"
                else "SELECT name FROM sqlite_master WHERE type = 'index'"
            )
            present = set(conn.execute(text(catalog)).scalars())
            for index in _read_indexes():
                if index.name not in present:
                    index.create(conn)

    def checkpoint(self) -> Checkpoint | None:
        with self.engine.connect() as conn:
            return self.read_checkpoint(conn)

    def read_checkpoint(self, conn: Connection) -> Checkpoint | None:
        """The checkpoint as `conn`'s transaction sees it."""
        row = conn.execute(select(_CHECKPOINTS).where(_CHECKPOINTS.c.name == self.name)).first()
        if row is None:
            return None
        return Checkpoint(row.block_number, row.block_hash, row.chain_head, row.synced_at)

    def recent_blocks(self) -> list[BlockRef]:
        """The stored block hashes, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(_BLOCKS).order_by(_BLOCKS.c.number.desc())).all()
        return [BlockRef(r.number, r.hash, r.parent_hash) for r in rows]

    @contextmanager
    def batch(self, journal_from: int | None) -> Iterator[Batch]:
        """A `Batch` in one transaction: committed with everything when the block exits, else rolled back."""
        with self.engine.begin() as conn:
            batch = Batch(conn, journal_from)
            yield batch
            batch.flush()

    def finish_range(
        self, batch: Batch, blocks: Sequence[BlockRef], checkpoint: BlockRef, chain_head: int, keep_from: int
    ) -> None:
        """In `batch`'s transaction: store block hashes, prune old ones and the journal, move the checkpoint."""
        conn = batch.conn
        batch.flush()
        bulk_insert(conn, _BLOCKS, [{"number": b.number, "hash": b.hash, "parent_hash": b.parent_hash} for b in blocks])
        conn.execute(delete(_BLOCKS).where(_BLOCKS.c.number < keep_from))
        conn.execute(delete(_UNDO).where(_UNDO.c.block_number < keep_from))
        self._set_checkpoint(conn, checkpoint.number, checkpoint.hash, chain_head)

    def _set_checkpoint(self, conn: Connection, number: int, block_hash: str, chain_head: int | None) -> None:
        values = {"block_number": number, "block_hash": block_hash, "chain_head": chain_head, "synced_at": time.time()}
        done = conn.execute(update(_CHECKPOINTS).where(_CHECKPOINTS.c.name == self.name).values(**values))
        if done.rowcount == 0:
            conn.execute(insert(_CHECKPOINTS).values(name=self.name, **values))

    def note_head(self, chain_head: int) -> None:
        """Record the chain head seen by a sync that had nothing to index (for lag reports elsewhere)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(_CHECKPOINTS)
                .where(_CHECKPOINTS.c.name == self.name)
                .values(chain_head=chain_head, synced_at=time.time())
            )

    def rewind(self, ancestor: int) -> int:
        """Undo every block above `ancestor` in one transaction; returns how many projection rows were restored.

        Requires `ancestor` to be a stored indexed block (the journal covers exactly the stored blocks).
        """
        with self.engine.begin() as conn:
            anchor = conn.execute(select(_BLOCKS).where(_BLOCKS.c.number == ancestor)).first()
            if anchor is None:
                raise ReorgTooDeepError(f"block {ancestor} is not among the stored block hashes; cannot rewind")
            entries = conn.execute(
                select(_UNDO.c.table_name, _UNDO.c.key, _UNDO.c.prior)
                .where(_UNDO.c.block_number > ancestor)
                .order_by(_UNDO.c.block_number, _UNDO.c.id)
            ).all()
            earliest: dict[tuple[str, str], str | None] = {}
            for entry in entries:
                earliest.setdefault((entry.table_name, entry.key), entry.prior)
            for (table_name, key_json), prior in earliest.items():
                table = PROJECTION_TABLES[table_name]
                key = json.loads(key_json)
                pk = _pk_columns(table)
                conn.execute(delete(table).where(and_(*(table.c[c] == v for c, v in zip(pk, key, strict=True)))))
                if prior is not None:
                    conn.execute(insert(table).values(**json.loads(prior)))
            for table in APPEND_TABLES.values():
                conn.execute(delete(table).where(table.c.block_number > ancestor))
            conn.execute(delete(_UNDO).where(_UNDO.c.block_number > ancestor))
            conn.execute(delete(_BLOCKS).where(_BLOCKS.c.number > ancestor))
            checkpoint = self.read_checkpoint(conn)
            self._set_checkpoint(conn, ancestor, anchor.hash, checkpoint.chain_head if checkpoint else None)
            return len(earliest)
