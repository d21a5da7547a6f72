"""Mirror verification: rebuild every projection from the chain's logs into a scratch store and compare.

An auditor must not trust the live mirror. `verify_mirror` replays the deployment's logs with the indexer's own
handlers into a fresh scratch SQLite database up to the live mirror's checkpoint, then compares the two table by
table inside one read snapshot of the live database (the live indexer may go on meanwhile: if it moved on, the
scratch store follows it to the snapshot's checkpoint first).

Comparison (`compare_mirrors`): both sides are streamed in key order and merged, so memory stays bounded at any
size. Every row is attributed to a block: the newest of its block columns (`updated_block`, `block_number`,
`closed_block`, ...), i.e. the block whose logs last shaped it. A block's digest is the BLAKE2b of the canonical
encodings of its rows in (table, key) order, and the mirror's digest chains the block digests in block order,
like graph-node's proof of indexing: two mirrors with equal digests are equal, and the first block whose digests
differ is the first block where they diverge. A row edited in SQL changes the digest of the block it claims (and
of the block it should have, if its block column was edited); a deleted or an extra row changes its block's.

The rows that differ are reported by kind: `missing` (on the chain, not in the mirror), `extra` (in the mirror,
not on the chain) and `differing` (same key, other values, with the columns that differ).
"""

from __future__ import annotations

import hashlib
import itertools
import operator
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Boolean, Column, Connection, Engine, String, Table, collate, create_engine, event, select, text

from chain_gateway.deployments import Deployment
from chain_gateway.rpc import JsonRpcClient
from indexer.service import Indexer
from indexer.store import APPEND_TABLES, PROJECTION_TABLES, Checkpoint, Store

__all__ = [
    "BlockDigest",
    "MirrorComparison",
    "RowDifference",
    "TableComparison",
    "VerifyError",
    "VerifyReport",
    "compare_mirrors",
    "mirror_digests",
    "read_snapshot",
    "verify_mirror",
]

MIRROR_TABLES: dict[str, Table] = {**PROJECTION_TABLES, **APPEND_TABLES}
SURROGATE_COLUMNS = frozenset({"id"})  # insertion-order ids of history tables: not chain facts
STREAM_ROWS = 10_000  # rows fetched per round trip while streaming a table
DEFAULT_SAMPLES = 20  # differing rows reported per table and kind
DIGEST_SIZE = 16  # bytes of each BLAKE2b digest

Stage = Literal["rebuild", "compare"]
VerifyProgress = Callable[[Stage, int, int], None]  # (stage, done, total): blocks when rebuilding, tables comparing


class VerifyError(RuntimeError):
    """The verification could not run to the end (not a difference: a difference is a result)."""


@dataclass(frozen=True)
class RowDifference:
    """One row that is not the same in the live mirror and in the rebuild."""

    table: str
    kind: Literal["missing", "extra", "differing"]
    key: dict[str, Any]
    block: int  # the block the row is attributed to (for `differing`, the lower of the two sides)
    live: dict[str, Any] | None  # the live mirror's row (None when missing)
    chain: dict[str, Any] | None  # the row rebuilt from the chain (None when extra)
    columns: list[str] = field(default_factory=list)  # the columns that differ (`differing` only)


@dataclass
class TableComparison:
    """Row counts and differences of one table."""

    table: str
    live_rows: int = 0
    chain_rows: int = 0
    missing: int = 0
    extra: int = 0
    differing: int = 0
    samples: list[RowDifference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.missing == self.extra == self.differing == 0


@dataclass(frozen=True)
class BlockDigest:
    """A block whose digests differ: None on a side that has no rows attributed to the block."""

    number: int
    live: str | None
    chain: str | None


@dataclass
class MirrorComparison:
    """Everything `compare_mirrors` found."""

    tables: list[TableComparison]
    live_digest: str  # the chained digest of every block (a proof of indexing)
    chain_digest: str
    blocks: int  # blocks with at least one row on either side
    first_divergent_block: int | None
    divergent_blocks: list[BlockDigest]  # the first few, ascending
    divergent_block_count: int

    @property
    def ok(self) -> bool:
        return self.first_divergent_block is None and all(t.ok for t in self.tables)


@dataclass
class VerifyReport:
    """The result of `verify_mirror`: the comparison at `block`, and what it took."""

    block: int
    block_hash: str
    events: int  # logs replayed into the scratch store
    rebuild_seconds: float
    compare_seconds: float
    comparison: MirrorComparison

    @property
    def ok(self) -> bool:
        return self.comparison.ok


# ---------------------------------------------------------------- the scratch store


def create_scratch_engine(path: Path) -> Engine:
    """A throwaway SQLite database tuned for one writer: no journal, no fsync (a crash just discards it)."""
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})  # read ahead by a thread

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=OFF")
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.execute("PRAGMA cache_size=-262144")  # KiB: 256 MiB
        cursor.close()

    return engine


def _drop_secondary_indexes(engine: Engine) -> None:
    """Drop the indexes reads need but the replay does not (it reads by primary key only): faster inserts."""
    with engine.begin() as conn:
        names = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")).all()
        for name, sql in names:
            if "UNIQUE" not in sql.upper():
                conn.execute(text(f'DROP INDEX "{name}"'))


@contextmanager
def scratch_store(directory: Path | None = None) -> Iterator[Engine]:
    """A fresh scratch database with the mirror's tables, deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="dirchain-verify-", dir=directory) as tmp:
        engine = create_scratch_engine(Path(tmp) / "rebuild.db")
        try:
            Store(engine).create_tables()
            _drop_secondary_indexes(engine)
            yield engine
        finally:
            engine.dispose()


# ---------------------------------------------------------------- canonical rows and digests


def _compared_columns(table: Table) -> list[Column[Any]]:
    return [c for c in table.columns if c.name not in SURROGATE_COLUMNS]


def _key_columns(table: Table) -> list[str]:
    """The chain-derived key: the primary key, or for history tables with a surrogate id, (block, log index)."""
    pk = [c.name for c in table.primary_key.columns]
    if set(pk) & SURROGATE_COLUMNS:
        return ["block_number", "log_index"]
    return pk


def _block_columns(table: Table) -> list[int]:
    """Positions (among the compared columns) of the columns naming a block: the row's block is their max."""
    names = [c.name for c in _compared_columns(table)]
    return [i for i, n in enumerate(names) if n == "block_number" or n.endswith("_block")]


def _normalise(value: Any) -> Any:
    """Values as both databases agree on them: booleans as 0/1 (PostgreSQL gives bool, SQLite int)."""
    if isinstance(value, bool):
        return int(value)
    return value


def _stream(conn: Connection, table: Table, keys: Sequence[str]) -> Iterator[list[tuple[Any, ...]]]:
    """The table's compared columns in key order (byte-wise string collation on every dialect), in chunks.

    Read through the driver's own cursor, in the connection's transaction: SQLAlchemy's row objects cost more
    than the comparison itself. PostgreSQL streams from a server-side cursor.
    """
    postgres = conn.dialect.name == "postgresql"
    order = [collate(table.c[k], "C") if postgres and isinstance(table.c[k].type, String) else table.c[k] for k in keys]
    sql = str(select(*_compared_columns(table)).order_by(*order).compile(dialect=conn.dialect))
    driver: Any = conn.connection.driver_connection
    cursor = driver.cursor(name=f"verify_{table.name}") if postgres else driver.cursor()
    bools = [i for i, c in enumerate(_compared_columns(table)) if isinstance(c.type, Boolean)]
    try:
        cursor.execute(sql)
        while chunk := cursor.fetchmany(STREAM_ROWS):
            if bools:  # PostgreSQL answers bool, SQLite 0/1: compare and digest them as 0/1
                chunk = [tuple(int(v) if i in bools and v is not None else v for i, v in enumerate(r)) for r in chunk]
            yield chunk
    finally:
        cursor.close()


def _rows_ahead(chunks: Iterator[list[tuple[Any, ...]]]) -> Iterator[tuple[Any, ...]]:
    """The rows of `chunks`, read by a background thread a few chunks ahead (the driver reads outside the GIL)."""
    ready: queue.Queue[list[tuple[Any, ...]] | BaseException | None] = queue.Queue(maxsize=4)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        ready.put(chunk, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(None)
        except BaseException as exc:  # handed to the consumer
            ready.put(exc)

    worker = threading.Thread(target=produce, name="verify-read", daemon=True)
    worker.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        worker.join()


class _Digests:
    """Per-block BLAKE2b digests of one side's rows, fed in (table, key) order."""

    def __init__(self) -> None:
        self.blocks: dict[int, Any] = {}

    def add(self, block: int, encoded: bytes) -> None:
        hasher = self.blocks.get(block)
        if hasher is None:
            hasher = self.blocks[block] = hashlib.blake2b(digest_size=DIGEST_SIZE)
        hasher.update(encoded)

    def finish(self) -> dict[int, str]:
        return {number: hasher.hexdigest() for number, hasher in self.blocks.items()}


class _PairDigests:
    """Per-block digests of both sides at the cost of one while they agree.

    A block's rows are hashed once into a shared hasher until the first row where the sides differ; then the
    block forks into a copy per side (`hashlib` hashers copy their state), which is exactly what hashing each
    side on its own would give.
    """

    def __init__(self) -> None:
        self.shared: dict[int, Any] = {}
        self.forked: dict[int, tuple[Any, Any]] = {}  # block -> (live hasher, chain hasher)

    def both(self, block: int, encoded: bytes) -> None:
        pair = self.forked.get(block)
        if pair is not None:
            pair[0].update(encoded)
            pair[1].update(encoded)
            return
        hasher = self.shared.get(block)
        if hasher is None:
            hasher = self.shared[block] = hashlib.blake2b(digest_size=DIGEST_SIZE)
        hasher.update(encoded)

    def one(self, side: int, block: int, encoded: bytes) -> None:
        """Add a row to side 0 (live) or 1 (chain) only."""
        pair = self.forked.get(block)
        if pair is None:
            shared = self.shared.pop(block, None) or hashlib.blake2b(digest_size=DIGEST_SIZE)
            pair = self.forked[block] = (shared, shared.copy())
        pair[side].update(encoded)

    def finish(self) -> tuple[dict[int, str], dict[int, str]]:
        """(live, chain) digests per block; a side without rows in a block has none for it."""
        empty = hashlib.blake2b(digest_size=DIGEST_SIZE).hexdigest()
        live = {n: h.hexdigest() for n, h in self.shared.items()}
        chain = dict(live)
        for n, (a, b) in self.forked.items():
            live[n], chain[n] = a.hexdigest(), b.hexdigest()
        # a block whose rows are all on one side: the other side has no digest for it
        return {n: d for n, d in live.items() if d != empty}, {n: d for n, d in chain.items() if d != empty}


def _encode(table_name: str, row: tuple[Any, ...]) -> bytes:
    """A row's canonical bytes: its table and values, unambiguous (repr of a tuple of str/int/None)."""
    return repr((table_name, row)).encode()


def _chain_digests(digests: dict[int, str]) -> str:
    """The proof of indexing: H(... H(H(b1 || d1) || b2 || d2) ...) over the blocks in ascending order."""
    running = b""
    for number in sorted(digests):
        running = hashlib.blake2b(running + number.to_bytes(8, "big") + bytes.fromhex(digests[number]),
                                  digest_size=DIGEST_SIZE).digest()  # fmt: skip
    return running.hex()


def _block_getter(table: Table) -> Callable[[tuple[Any, ...]], int]:
    """The function giving a row's block: the newest of its block columns."""
    positions = _block_columns(table)
    if len(positions) == 1:
        return operator.itemgetter(positions[0])
    return lambda row: max((row[i] for i in positions if row[i] is not None), default=0)


def mirror_digests(engine: Engine) -> tuple[str, dict[int, str]]:
    """The chained digest and the per-block digests of one mirror (e.g. to compare two indexers' mirrors)."""
    digests = _Digests()
    with engine.connect() as conn:
        for name, table in MIRROR_TABLES.items():
            block_of = _block_getter(table)
            for chunk in _stream(conn, table, _key_columns(table)):
                for row in chunk:
                    digests.add(block_of(row), _encode(name, row))
    blocks = digests.finish()
    return _chain_digests(blocks), blocks


# ---------------------------------------------------------------- comparison


def _compare_table(
    name: str,
    table: Table,
    live: Iterator[tuple[Any, ...]],
    chain: Iterator[tuple[Any, ...]],
    digests: _PairDigests,
    samples: int,
) -> TableComparison:
    """Merge two key-ordered row streams: count and sample the differences, feed both sides' digests."""
    columns = [c.name for c in _compared_columns(table)]
    keys = _key_columns(table)
    key_at = [columns.index(k) for k in keys]
    block_of = _block_getter(table)
    result = TableComparison(name)
    a: tuple[Any, ...] | None = None
    b: tuple[Any, ...] | None = None

    def key_of(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(row[i] for i in key_at)

    def note(kind: Literal["missing", "extra", "differing"], a: tuple[Any, ...] | None, b: tuple[Any, ...] | None,
             block: int) -> None:  # fmt: skip
        if len(result.samples) >= samples * 3 or sum(s.kind == kind for s in result.samples) >= samples:
            return
        row = a if a is not None else b
        assert row is not None
        differ = [c for c, x, y in zip(columns, a, b, strict=True) if x != y] if a is not None and b is not None else []
        result.samples.append(
            RowDifference(
                table=name,
                kind=kind,
                key=dict(zip(keys, key_of(row), strict=True)),
                block=block,
                live=dict(zip(columns, a, strict=True)) if a is not None else None,
                chain=dict(zip(columns, b, strict=True)) if b is not None else None,
                columns=differ,
            )
        )

    while True:
        a = next(live, None) if a is None else a
        b = next(chain, None) if b is None else b
        if a is not None and a == b:  # the common case first: no key to build
            block = block_of(a)
            digests.both(block, _encode(name, a))
            result.live_rows += 1
            result.chain_rows += 1
            a = b = None
        elif a is None and b is None:
            break
        elif b is None or (a is not None and key_of(a) < key_of(b)):
            assert a is not None
            block = block_of(a)
            digests.one(0, block, _encode(name, a))
            result.live_rows += 1
            result.extra += 1
            note("extra", a, None, block)
            a = None
        elif a is None or key_of(b) < key_of(a):
            block = block_of(b)
            digests.one(1, block, _encode(name, b))
            result.chain_rows += 1
            result.missing += 1
            note("missing", None, b, block)
            b = None
        else:
            live_block, chain_block = block_of(a), block_of(b)
            digests.one(0, live_block, _encode(name, a))
            digests.one(1, chain_block, _encode(name, b))
            result.live_rows += 1
            result.chain_rows += 1
            result.differing += 1
            note("differing", a, b, min(live_block, chain_block))
            a = b = None
    return result


def compare_mirrors(
    live: Connection,
    chain: Connection,
    *,
    samples: int = DEFAULT_SAMPLES,
    progress: VerifyProgress | None = None,
) -> MirrorComparison:
    """Compare the live mirror with a rebuilt one (`chain`), table by table and block by block."""
    digests = _PairDigests()
    tables: list[TableComparison] = []
    for done, (name, table) in enumerate(MIRROR_TABLES.items()):
        keys = _key_columns(table)
        tables.append(
            _compare_table(
                name,
                table,
                itertools.chain.from_iterable(_stream(live, table, keys)),
                _rows_ahead(_stream(chain, table, keys)),
                digests,
                samples,
            )
        )
        if progress is not None:
            progress("compare", done + 1, len(MIRROR_TABLES))
    live_blocks, chain_blocks = digests.finish()
    divergent = sorted(n for n in live_blocks.keys() | chain_blocks.keys() if live_blocks.get(n) != chain_blocks.get(n))
    return MirrorComparison(
        tables=tables,
        live_digest=_chain_digests(live_blocks),
        chain_digest=_chain_digests(chain_blocks),
        blocks=len(live_blocks.keys() | chain_blocks.keys()),
        first_divergent_block=divergent[0] if divergent else None,
        divergent_blocks=[BlockDigest(n, live_blocks.get(n), chain_blocks.get(n)) for n in divergent[:samples]],
        divergent_block_count=len(divergent),
    )


# ---------------------------------------------------------------- the whole verification


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """A read transaction that sees one state of the live database for its whole life."""
    if engine.dialect.name == "sqlite":
        # pysqlite begins transactions only before writes: BEGIN by hand; in WAL mode the first read takes the
        # snapshot and the transaction holds it until it ends.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                conn.exec_driver_sql("ROLLBACK")
        return
    options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    with engine.connect().execution_options(**options) as conn, conn.begin():
        yield conn


def verify_mirror(
    live_engine: Engine,
    rpc: JsonRpcClient,
    deployment: Deployment,
    *,
    scratch_dir: Path | None = None,
    samples: int = DEFAULT_SAMPLES,
    progress: VerifyProgress | None = None,
    max_block_range: int = 2_000,
) -> VerifyReport:
    """Rebuild the mirror from the chain into a scratch store and compare it with `live_engine`'s mirror.

    Raises VerifyError when the live mirror has no checkpoint, or is on blocks the chain no longer has.
    """
    with scratch_store(scratch_dir) as scratch, read_snapshot(live_engine) as live:
        target = Store(live_engine).read_checkpoint(live)
        if target is None:
            raise VerifyError("the live mirror has no checkpoint yet: nothing indexed to verify")
        rebuilder = Indexer(scratch, rpc, deployment, finality_depth=1, max_block_range=max_block_range)

        def rebuild_progress(block: int, head: int) -> None:
            if progress is not None:
                progress("rebuild", block - deployment["deploy_block"] + 1, head - deployment["deploy_block"] + 1)

        started = time.monotonic()
        result = rebuilder.sync_once(until=target.block_number, progress=rebuild_progress)
        rebuilt = rebuilder.store.checkpoint()
        _check_same_block(target, rebuilt)
        rebuild_seconds = time.monotonic() - started
        started = time.monotonic()
        with scratch.connect() as chain:
            comparison = compare_mirrors(live, chain, samples=samples, progress=progress)
        return VerifyReport(
            block=target.block_number,
            block_hash=target.block_hash,
            events=result.events,
            rebuild_seconds=rebuild_seconds,
            compare_seconds=time.monotonic() - started,
            comparison=comparison,
        )


def _check_same_block(live: Checkpoint, rebuilt: Checkpoint | None) -> None:
    if rebuilt is None or rebuilt.block_number != live.block_number:
        reached = rebuilt.block_number if rebuilt else None
        raise VerifyError(f"the chain has no block {live.block_number} (the rebuild reached {reached})")
    if rebuilt.block_hash != live.block_hash:
        raise VerifyError(
            f"the live mirror's checkpoint {live.block_number} has hash {live.block_hash}, the chain "
            f"{rebuilt.block_hash}: the mirror is on a reorganised fork; let the indexer catch up and verify again"
        )
