"""Mirror verification: rebuild every projection from the chain's logs into a scratch store and compare.

An auditor must not trust the live mirror. `verify_mirror` opens one read snapshot of the live database, reads its
checkpoint, replays the deployment's logs with the indexer's own handlers into a fresh scratch SQLite database up
to exactly that block, and compares the two table by table inside that snapshot (the live indexer goes on
meanwhile; what it writes later is not seen).

Rows (`compare_mirrors`): each row's chain-derived key (primary key, or block and log index for history rows)
finds its counterpart. A live SQLite mirror gets the scratch database attached to its snapshot connection and
the differences come from joins; any other database (PostgreSQL) is streamed in key order beside the scratch
store and merged, so memory stays bounded at any size. Rows are reported as `missing` (on the chain, not in the
mirror), `extra` (in the mirror only) and `differing` (same key, other values, with the columns).

Blocks: every row is attributed to the block that last shaped it (the newest of its block columns:
`updated_block`, `block_number`, `closed_block`, ...). A block's digest is the BLAKE2b of its rows' canonical
texts (formatted by the database, the same on SQLite and PostgreSQL) in (table, key) order, and the mirror's
digest chains the block digests in block order, like graph-node's proof of indexing: two mirrors with equal
digests are equal, and the first block whose digests differ is the first block where they diverge. A row edited
in SQL changes the digest of the block it claims (and of the block it should have, if its block column was
edited); a deleted or an extra row changes its block's.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Boolean, Column, Connection, Engine, Float, String, Table, create_engine, event, text

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
WORKER_FROM_BYTES = 64 * 2**20  # a rebuilt mirror this large is digested by a worker process (~2 s to start)

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
    engine = create_engine(f"sqlite:///{path}")

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


def _block_columns(table: Table) -> list[str]:
    """The columns naming a block: a row's block is the newest of them (the block whose logs last shaped it)."""
    return [c.name for c in _compared_columns(table) if c.name == "block_number" or c.name.endswith("_block")]


def _quoted(name: str, alias: str = "") -> str:
    return f'{alias}."{name}"' if alias else f'"{name}"'


def _block_sql(table: Table, dialect: str) -> str:
    """SQL for a row's block: the newest of its block columns (NULL as 0)."""
    columns = [f"coalesce({_quoted(c)}, 0)" for c in _block_columns(table)]
    if len(columns) == 1:
        return columns[0]
    return f"{'greatest' if dialect == 'postgresql' else 'max'}({', '.join(columns)})"


def _encoding_sql(table: Table, dialect: str) -> str:
    """SQL for a row's canonical text, the same on SQLite and PostgreSQL: `<table>` then, per compared column,
    `|~` for NULL or `|<length>:<text>` (booleans as 0/1, integers in decimal), so no two rows share a text."""
    parts = [f"'{table.name}'"]
    for column in _compared_columns(table):
        if isinstance(column.type, Float):
            raise TypeError(f"{table.name}.{column.name}: floats have no canonical text; store them as integers")
        value = _quoted(column.name)
        if dialect == "postgresql" and isinstance(column.type, Boolean):
            value = f"CAST({value} AS INTEGER)"
        text_value = f"CAST({value} AS TEXT)"
        parts.append(f"CASE WHEN {value} IS NULL THEN '|~' ELSE '|' || length({text_value}) || ':' || {text_value} END")
    return " || ".join(parts)


def _order_sql(table: Table, keys: Sequence[str], dialect: str, alias: str = "") -> str:
    """ORDER BY terms for `keys`, comparing strings byte by byte on every dialect."""
    terms = []
    for key in keys:
        term = _quoted(key, alias)
        if dialect == "postgresql" and isinstance(table.c[key].type, String):
            term += ' COLLATE "C"'
        terms.append(term)
    return ", ".join(terms)


def _block_digests(conn: Connection, schema: str | None = None) -> dict[int, Any]:
    """Per-block BLAKE2b hashers over every mirror table's rows, in (table, key) order.

    Rows come in key order (an index walk, no sort) and each goes to its block's hasher, so each block sees its
    own rows in key order.

    The database formats each row's canonical text (`_encoding_sql`); Python only hashes it, so a million rows
    cost seconds. `schema` names an attached database (SQLite) to read instead of the connection's own.
    """
    dialect = conn.dialect.name
    prefix = f'"{schema}".' if schema else ""
    digests: dict[int, Any] = {}
    cursor = _driver_cursor(conn, "verify_digest")
    try:
        for name, table in MIRROR_TABLES.items():
            block = _block_sql(table, dialect)
            sql = (
                f'SELECT {block}, {_encoding_sql(table, dialect)} FROM {prefix}"{name}" '
                f"ORDER BY {_order_sql(table, _key_columns(table), dialect)}"
            )
            cursor.execute(sql)
            while chunk := cursor.fetchmany(STREAM_ROWS):
                for number, encoded in chunk:
                    hasher = digests.get(number)
                    if hasher is None:
                        hasher = digests[number] = hashlib.blake2b(digest_size=DIGEST_SIZE)
                    hasher.update(encoded.encode())
                    hasher.update(b"\n")
            if dialect == "postgresql":  # a named (server-side) cursor runs one query
                cursor.close()
                cursor = _driver_cursor(conn, f"verify_digest_{name}")
    finally:
        cursor.close()
    return digests


def _driver_cursor(conn: Connection, name: str) -> Any:
    """The driver's own cursor in the connection's transaction (server-side on PostgreSQL, to stream)."""
    driver: Any = conn.connection.driver_connection
    return driver.cursor(name=name) if conn.dialect.name == "postgresql" else driver.cursor()


def _chain_digests(digests: dict[int, str]) -> str:
    """The proof of indexing: H(... H(H(b1 || d1) || b2 || d2) ...) over the blocks in ascending order."""
    running = b""
    for number in sorted(digests):
        running = hashlib.blake2b(running + number.to_bytes(8, "big") + bytes.fromhex(digests[number]),
                                  digest_size=DIGEST_SIZE).digest()  # fmt: skip
    return running.hex()


def mirror_digests(engine: Engine) -> tuple[str, dict[int, str]]:
    """The chained digest and the per-block digests of one mirror (e.g. to compare two indexers' mirrors)."""
    with read_snapshot(engine) as conn:
        blocks = {n: h.hexdigest() for n, h in _block_digests(conn).items()}
    return _chain_digests(blocks), blocks


# ---------------------------------------------------------------- row differences


class _Samples:
    """Counts and the first few differences of one table."""

    def __init__(self, name: str, table: Table, samples: int) -> None:
        self.columns = [c.name for c in _compared_columns(table)]
        self.keys = _key_columns(table)
        self.block_at = [self.columns.index(c) for c in _block_columns(table)]
        self.result = TableComparison(name)
        self.samples = samples

    def block_of(self, row: Sequence[Any]) -> int:
        return max((row[i] for i in self.block_at if row[i] is not None), default=0)

    def note(
        self, kind: Literal["missing", "extra", "differing"], live: Sequence[Any] | None, chain: Sequence[Any] | None
    ) -> None:
        result = self.result
        setattr(result, kind, getattr(result, kind) + 1)
        if sum(s.kind == kind for s in result.samples) >= self.samples:
            return
        row = live if live is not None else chain
        assert row is not None
        blocks = [self.block_of(r) for r in (live, chain) if r is not None]
        differ = [] if live is None or chain is None else [c for c, a, b in zip(self.columns, live, chain, strict=True)
                                                           if _normalise(a) != _normalise(b)]  # fmt: skip
        result.samples.append(
            RowDifference(
                table=result.table,
                kind=kind,
                key={k: row[self.columns.index(k)] for k in self.keys},
                block=min(blocks),
                live=dict(zip(self.columns, map(_normalise, live), strict=True)) if live is not None else None,
                chain=dict(zip(self.columns, map(_normalise, chain), strict=True)) if chain is not None else None,
                columns=differ,
            )
        )


def _normalise(value: Any) -> Any:
    """Values as both databases agree on them: booleans as 0/1 (PostgreSQL gives bool, SQLite int)."""
    return int(value) if isinstance(value, bool) else value


def _diff_attached(conn: Connection, name: str, table: Table, samples: int) -> TableComparison:
    """Differences between the live table and the rebuilt one attached as schema `chain` (SQLite), by joins."""
    found = _Samples(name, table, samples)
    columns = found.columns
    listed = lambda alias: ", ".join(_quoted(c, alias) for c in columns)  # noqa: E731
    on = " AND ".join(f"{_quoted(k, 'c')} = {_quoted(k, 'l')}" for k in found.keys)
    same = " AND ".join(f"{_quoted(c, 'l')} IS {_quoted(c, 'c')}" for c in columns)
    order = _order_sql(table, found.keys, "sqlite", "l")
    cursor = _driver_cursor(conn, "")
    try:
        cursor.execute(
            f'SELECT {listed("l")}, {listed("c")} FROM main."{name}" AS l LEFT JOIN chain."{name}" AS c ON {on} '
            f"WHERE {_quoted(found.keys[0], 'c')} IS NULL OR NOT ({same}) ORDER BY {order}"
        )
        for row in cursor:
            live, chain = row[: len(columns)], row[len(columns) :]
            found.note("extra" if chain[columns.index(found.keys[0])] is None else "differing", live,
                       None if chain[columns.index(found.keys[0])] is None else chain)  # fmt: skip
        cursor.execute(
            f'SELECT {listed("c")} FROM chain."{name}" AS c WHERE NOT EXISTS '
            f'(SELECT 1 FROM main."{name}" AS l WHERE {on}) ORDER BY {_order_sql(table, found.keys, "sqlite", "c")}'
        )
        for row in cursor:
            found.note("missing", None, row)
        found.result.live_rows = cursor.execute(f'SELECT count(*) FROM main."{name}"').fetchone()[0]
        found.result.chain_rows = cursor.execute(f'SELECT count(*) FROM chain."{name}"').fetchone()[0]
    finally:
        cursor.close()
    return found.result


def _stream(conn: Connection, table: Table) -> Iterator[tuple[Any, ...]]:
    """The table's compared columns in key order (strings byte by byte on every dialect), booleans as 0/1."""
    dialect = conn.dialect.name
    keys = _key_columns(table)
    columns = ", ".join(_quoted(c.name) for c in _compared_columns(table))
    cursor = _driver_cursor(conn, f"verify_{table.name}")
    try:
        cursor.execute(f'SELECT {columns} FROM "{table.name}" ORDER BY {_order_sql(table, keys, dialect)}')
        while chunk := cursor.fetchmany(STREAM_ROWS):
            for row in chunk:
                yield tuple(map(_normalise, row))
    finally:
        cursor.close()


def _diff_merged(live: Connection, chain: Connection, name: str, table: Table, samples: int) -> TableComparison:
    """Differences between two key-ordered row streams from separate databases (e.g. PostgreSQL and SQLite)."""
    found = _Samples(name, table, samples)
    key_at = [found.columns.index(k) for k in found.keys]
    result = found.result

    def key_of(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(row[i] for i in key_at)

    left, right = _stream(live, table), _stream(chain, table)
    a, b = next(left, None), next(right, None)
    while a is not None or b is not None:
        if a is not None and a == b:
            result.live_rows += 1
            result.chain_rows += 1
            a, b = next(left, None), next(right, None)
        elif b is None or (a is not None and key_of(a) < key_of(b)):
            result.live_rows += 1
            found.note("extra", a, None)
            a = next(left, None)
        elif a is None or key_of(b) < key_of(a):
            result.chain_rows += 1
            found.note("missing", None, b)
            b = next(right, None)
        else:
            result.live_rows += 1
            result.chain_rows += 1
            found.note("differing", a, b)
            a, b = next(left, None), next(right, None)
    return result


# ---------------------------------------------------------------- comparison


def _digest_file(path: str) -> dict[int, str]:
    """The per-block digests of a mirror in an SQLite file (run in a worker process, beside the live side's)."""
    engine = create_scratch_engine(Path(path))
    try:
        with engine.connect() as conn:
            return {n: h.hexdigest() for n, h in _block_digests(conn).items()}
    finally:
        engine.dispose()


def _worker_result(future: Future[dict[int, str]], rebuilt: Path) -> dict[int, str]:
    """The worker's digests; if the worker could not run (e.g. a `__main__` that cannot be re-imported), the same
    computed here."""
    try:
        return future.result()
    except BrokenProcessPool:
        return _digest_file(str(rebuilt))


def compare_mirrors(
    live: Connection,
    rebuilt: Path,
    *,
    attached: bool,
    samples: int = DEFAULT_SAMPLES,
    progress: VerifyProgress | None = None,
) -> MirrorComparison:
    """Compare the live mirror with the rebuilt one (an SQLite file), table by table and block by block.

    `attached`: the rebuilt file is attached to `live` as schema `chain` (both SQLite), so differences are found by
    joins inside SQLite; otherwise both are streamed in key order and merged. The rebuilt side's block digests are
    computed by a worker process meanwhile (the other core), from the file alone.
    """
    steps = len(MIRROR_TABLES) + 1
    in_process = rebuilt.stat().st_size < WORKER_FROM_BYTES
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as worker:
        chain_future = None if in_process else worker.submit(_digest_file, str(rebuilt))
        tables: list[TableComparison] = []
        engine = None if attached else create_scratch_engine(rebuilt)
        try:
            with contextlib.nullcontext() if engine is None else engine.connect() as chain:
                for done, (name, table) in enumerate(MIRROR_TABLES.items()):
                    if chain is None:
                        tables.append(_diff_attached(live, name, table, samples))
                    else:
                        tables.append(_diff_merged(live, chain, name, table, samples))
                    if progress is not None:
                        progress("compare", done + 1, steps)
        finally:
            if engine is not None:
                engine.dispose()
        live_blocks = {n: h.hexdigest() for n, h in _block_digests(live).items()}
        chain_blocks = _digest_file(str(rebuilt)) if chain_future is None else _worker_result(chain_future, rebuilt)
    if progress is not None:
        progress("compare", steps, steps)
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
def read_snapshot(engine: Engine, attach: Path | None = None) -> Iterator[Connection]:
    """A read transaction that sees one state of the live database for its whole life.

    `attach` (SQLite): a database file attached as schema `chain` before the transaction begins; its own read
    snapshot is taken when it is first read, so it may still be written until then.
    """
    if engine.dialect.name == "sqlite":
        # pysqlite begins transactions only before writes: BEGIN by hand; in WAL mode the first read takes the
        # snapshot and the transaction holds it until it ends.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if attach is not None:
                conn.exec_driver_sql("ATTACH DATABASE ? AS chain", (str(attach),))
            conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                conn.exec_driver_sql("ROLLBACK")
                if attach is not None:
                    conn.exec_driver_sql("DETACH DATABASE chain")
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
    with scratch_store(scratch_dir) as scratch:
        attach = Path(str(scratch.url.database)) if live_engine.dialect.name == "sqlite" else None
        with read_snapshot(live_engine, attach) as live:
            target = Store(live_engine).read_checkpoint(live)
            if target is None:
                raise VerifyError("the live mirror has no checkpoint yet: nothing indexed to verify")
            rebuilder = Indexer(
                scratch, rpc, deployment, finality_depth=1, max_block_range=max_block_range, read_indexes=False
            )

            def rebuild_progress(block: int, head: int) -> None:
                if progress is not None:
                    first = deployment["deploy_block"]
                    progress("rebuild", block - first + 1, head - first + 1)

            started = time.monotonic()
            result = rebuilder.sync_once(until=target.block_number, progress=rebuild_progress)
            rebuilt = rebuilder.store.checkpoint()
            _check_same_block(target, rebuilt)
            rebuild_seconds = time.monotonic() - started
            started = time.monotonic()
            scratch.dispose()  # the rebuild is written: from here on it is only read
            path = Path(str(scratch.url.database))
            comparison = compare_mirrors(live, path, attached=attach is not None, samples=samples, progress=progress)
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
