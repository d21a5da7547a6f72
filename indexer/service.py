"""The indexer service: mirror the deployment's events into SQL, from its deploy block to the chain head.

`Indexer.sync_once` is the whole algorithm (Safe's reorg service + Ponder's historical/realtime sync):
1. read the chain head; compare the checkpoint's block hash with the chain; on a mismatch find the newest
   stored block still on the chain (the common ancestor) and rewind the mirror to it in one transaction;
2. from checkpoint + 1 to the head, fetch ranges (`indexer.sync.fetch_range`, adaptive size) and apply each
   in one transaction with its block hashes and the new checkpoint (`indexer.store`).
Realtime indexing is the same call repeated every `poll_seconds` (`run` or `schedule`).

One writer per database (`indexer.leader`): every sync first holds the database's leader lock, and every range
checks it again before its commit. `run` and `schedule` keep the lock for the indexer's life and stand by
(healthy, `status.role == "standby"`) while another indexer holds it, taking over when it is released;
`sync_once` alone takes it for the call and raises `NotLeaderError` if another indexer holds it.

Invariant: after every commit the mirror equals a fresh replay of the chain up to the checkpoint.
Retries: only retryable errors (`indexer.errors.is_retryable`) are retried; fatal ones stop `run` and pause
the scheduled job, and are reported in `status`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Generator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import Engine, create_engine, event

from chain_gateway.deployments import Deployment, load_deployment
from chain_gateway.resources import OwnsResources
from chain_gateway.rpc import EndpointWatch, JsonRpcClient
from chain_gateway.settings import Settings
from indexer.abi import EventDecoder
from indexer.errors import ChainMovedError, HandlerError, ReorgTooDeepError, is_retryable
from indexer.handlers import HANDLERS, PREFETCH
from indexer.leader import LeadershipLostError, NotLeaderError, leader_lock
from indexer.prefetch import fetch_ahead_in_process, fetch_ahead_in_thread
from indexer.store import BlockRef, Checkpoint, Store
from indexer.sync import FetchedRange, RangeSizer, fetch_blocks, fetch_range, find_common_ancestor

__all__ = [
    "LEADER_EVENT",
    "LOST_EVENT",
    "STANDBY_EVENT",
    "Indexer",
    "IndexerStatus",
    "ReorgInfo",
    "SyncResult",
    "create_mirror_engine",
    "indexer_options",
]

log = logging.getLogger(__name__)

CHAIN_MOVED_ATTEMPTS = 5  # ranges re-fetched within one sync_once when the chain moves under them
JOB_ID = "indexer-sync"
FETCH_AHEAD = 2  # ranges fetched ahead of the one being applied
PROCESS_MIN_BLOCKS = 256  # a sync of at least this many blocks fetches in a child process (see indexer.prefetch)
CHILD_RPC_TIMEOUT = 120.0  # seconds: the fetching child asks for large log ranges

Progress = Callable[[int, int], None]  # (last indexed block, target block)
Role = Literal["leader", "standby"]
# log events of role changes (fixed texts: operators and tests look for them)
LEADER_EVENT = "indexer is the leader: it holds the leader lock and writes the mirror"
STANDBY_EVENT = "indexer standing by: another indexer holds the leader lock"
LOST_EVENT = "indexer lost the leader lock; standing by"


@dataclass(frozen=True)
class ReorgInfo:
    """A rewind done by a sync: the old checkpoint, the common ancestor and how many blocks were undone."""

    old_checkpoint: int
    ancestor: int
    depth: int
    rows_restored: int


@dataclass(frozen=True)
class SyncResult:
    """What one `sync_once` did; `from_block > to_block` when there was nothing new."""

    from_block: int
    to_block: int
    chain_head: int
    blocks: int
    events: int
    ranges: int
    seconds: float
    reorg: ReorgInfo | None = None


@dataclass(frozen=True)
class IndexerStatus:
    """Health of the mirror for /healthz, without touching the chain: lag = chain_head - checkpoint."""

    checkpoint: int | None
    checkpoint_hash: str | None
    chain_head: int | None
    lag: int | None
    synced_at: float | None  # unix seconds of the last successful sync
    last_error: str | None
    fatal: bool  # a non-retryable error stopped indexing
    role: Role  # leader: holds the database's leader lock (writes the mirror); standby: does not


def create_mirror_engine(database_url: str, **kwargs: Any) -> Engine:
    """An engine for the mirror; SQLite gets WAL (readers never block the indexer) and synchronous=NORMAL."""
    engine = create_engine(database_url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.execute("PRAGMA cache_size=-65536")  # KiB: 64 MiB keeps the indexes' hot pages in memory
            cursor.close()

    return engine


def indexer_options(settings: Settings) -> dict[str, Any]:
    """The `Indexer` keyword arguments that settings decide (for an indexer on an engine and client of one's own)."""
    return {
        "finality_depth": settings.indexer_finality_depth,
        "poll_seconds": settings.indexer_poll_seconds,
        "max_lag_blocks": settings.rpc_max_lag_blocks,
        "endpoint_check_seconds": settings.rpc_check_seconds,
    }


class Indexer(OwnsResources):
    """Mirrors the events of every contract in `deployment` into the SQL tables of `indexer.models`.

    A sync of at least `process_min_blocks` blocks is a catch-up: its ranges are fetched by a child process
    (`indexer.prefetch`), and when it builds the mirror from empty, the mirror's read indexes are dropped
    first and built once at the end (`read_indexes=False`: the indexer leaves them alone, e.g. for a
    scratch replay that never reads by them).
    """

    def __init__(
        self,
        engine: Engine,
        rpc: JsonRpcClient,
        deployment: Deployment,
        *,
        finality_depth: int = 64,
        max_block_range: int = 2_000,
        poll_seconds: float = 0.5,
        target_logs_per_call: int = 10_000,
        process_min_blocks: int = PROCESS_MIN_BLOCKS,
        read_indexes: bool = True,
        max_lag_blocks: int = 4,
        endpoint_check_seconds: float = 5.0,
    ) -> None:
        if finality_depth < 1 or max_block_range < 1:
            raise ValueError("finality_depth and max_block_range must be at least 1")
        self.engine = engine
        self.rpc = rpc
        self.deployment = deployment
        self.finality_depth = finality_depth
        self.poll_seconds = poll_seconds
        self.process_min_blocks = process_min_blocks
        self.read_indexes = read_indexes
        self.store = Store(engine)
        self.decoder = EventDecoder(deployment)
        self.sizer = RangeSizer(max_block_range, target_logs=target_logs_per_call)
        self._lock = threading.Lock()
        self._owned = []
        self._chain_head: int | None = None
        self._last_error: str | None = None
        self._fatal = False
        self._checkpoint: Checkpoint | None = None
        self._indexes_checked = False  # whether this instance made sure the read indexes exist
        # a node cut off from its peers answers with a chain that stopped: follow an endpoint that keeps up
        self._endpoints = EndpointWatch(rpc, max_lag_blocks, endpoint_check_seconds)
        self._leader = leader_lock(engine.url)
        self._stay_leader = False  # run/schedule keep the lock between syncs; a lone sync_once lets it go
        self._role_logged: Role | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Indexer:
        """An indexer with its own engine and RPC client (closed by `close`), configured by `settings`."""
        rpc = JsonRpcClient(settings.rpc_urls)
        try:
            chain_id = settings.chain_id or rpc.chain_id()
            deployment = load_deployment(settings.deployments_file(chain_id))
        except Exception:
            rpc.close()
            raise
        engine = create_mirror_engine(settings.database_url)
        indexer = cls(
            engine,
            rpc,
            deployment,
            **indexer_options(settings),
        )
        indexer._owned = [rpc, engine]
        return indexer

    def create_tables(self) -> None:
        self.store.create_tables()

    def close(self) -> None:
        """Let the leader lock go (a standby takes over), then close what `from_settings` created."""
        with self._lock:
            self._stay_leader = False
            self._leader.release()
        super().close()

    # ------------------------------------------------------------ health

    @property
    def head(self) -> int | None:
        """The chain head seen by the last sync."""
        return self._chain_head

    @property
    def checkpoint(self) -> int | None:
        """The last indexed block (read from SQL on first use, then kept by syncs)."""
        if self._checkpoint is None:
            self._checkpoint = self.store.checkpoint()
        return self._checkpoint.block_number if self._checkpoint else None

    @property
    def status(self) -> IndexerStatus:
        checkpoint = self.checkpoint
        cp = self._checkpoint
        head = self._chain_head if self._chain_head is not None else (cp.chain_head if cp else None)
        lag = max(0, head - checkpoint) if head is not None and checkpoint is not None else None
        return IndexerStatus(
            checkpoint=checkpoint,
            checkpoint_hash=cp.block_hash if cp else None,
            chain_head=head,
            lag=lag,
            synced_at=cp.synced_at if cp else None,
            last_error=self._last_error,
            fatal=self._fatal,
            role=self.role,
        )

    @property
    def role(self) -> Role:
        """leader if this indexer held the database's leader lock at its last sync or check, else standby."""
        return "leader" if self._leader.held else "standby"

    # ------------------------------------------------------------ sync

    def sync_once(self, until: int | None = None, progress: Progress | None = None) -> SyncResult:
        """Index from checkpoint + 1 to the chain head (or block `until` if lower), rewinding first if the chain
        reorganised; `progress(block, head)` is called after each range is committed.

        Raises `NotLeaderError` (nothing written) if another indexer holds the database's leader lock; the lock is
        kept after the call only under `run` or `schedule`.
        """
        with self._lock:
            try:
                if not self._leader.acquire():
                    self._note_role("standby")
                    raise NotLeaderError(f"another indexer holds the indexer leader lock ({self._leader.where})")
                self._note_role("leader")
                try:
                    moved = self._endpoints.check()
                    if moved is not None:
                        log.warning("RPC endpoint fell behind the others; moved to %s", moved)
                    result = self._sync(until, progress)
                finally:
                    if not self._stay_leader:
                        self._leader.release()
            except NotLeaderError as exc:
                if isinstance(exc, LeadershipLostError):
                    self._note_role("standby", lost=True)
                self._last_error = None  # a standby is healthy: not writing is its job
                raise
            except Exception as exc:
                self._last_error = f"{type(exc).__name__}: {exc}"
                self._fatal = not is_retryable(exc)
                raise
            self._last_error = None
            return result

    def _note_role(self, role: Role, lost: bool = False) -> None:
        """Log a change of role of a running indexer once (a standby tries the lock every poll)."""
        if not self._stay_leader or role == self._role_logged:
            return
        self._role_logged = role
        if lost:
            log.warning(LOST_EVENT)
        else:
            log.info(LEADER_EVENT if role == "leader" else STANDBY_EVENT)

    def _sync(self, until: int | None, progress: Progress | None) -> SyncResult:
        started = time.monotonic()
        head = self.rpc.block_number() if until is None else min(until, self.rpc.block_number())
        self._chain_head = head
        reorg = self._check_reorg()
        checkpoint = self.store.checkpoint()
        first = checkpoint.block_number + 1 if checkpoint else self.deployment["deploy_block"]
        build = self.read_indexes and checkpoint is None and head - first + 1 >= self.process_min_blocks
        if build:  # a mirror built from empty: its read indexes are built once, after the load
            self.store.drop_read_indexes()
        elif self.read_indexes and not self._indexes_checked:  # a build that crashed left them dropped
            self.store.create_read_indexes()
        self._indexes_checked = True
        try:
            return self._sync_from(started, head, reorg, checkpoint, first, progress)
        finally:
            if build:
                self.store.create_read_indexes()

    def _sync_from(
        self,
        started: float,
        head: int,
        reorg: ReorgInfo | None,
        checkpoint: Checkpoint | None,
        first: int,
        progress: Progress | None,
    ) -> SyncResult:
        start, events, ranges, attempts = first, 0, 0, 0
        keep_from = head - self.finality_depth
        while start <= head:
            cp_ref = BlockRef(checkpoint.block_number, checkpoint.block_hash, "") if checkpoint else None
            try:
                with closing(self._fetch_ahead(start, head, keep_from, cp_ref)) as ahead:
                    for fetched in ahead:
                        self._apply(fetched, head, keep_from)
                        checkpoint = Checkpoint(fetched.end, fetched.end_block.hash, head, time.time())
                        events += len(fetched.logs)
                        ranges += 1
                        start = fetched.end + 1
                        if progress is not None:
                            progress(fetched.end, head)
            except ChainMovedError:
                attempts += 1
                if attempts >= CHAIN_MOVED_ATTEMPTS:
                    raise
                log.info("chain moved while fetching from block %d; checking for a reorg", start)
                reorg = self._check_reorg() or reorg
                checkpoint = self.store.checkpoint()
                start = checkpoint.block_number + 1 if checkpoint else self.deployment["deploy_block"]
        if ranges == 0 and checkpoint is not None and checkpoint.chain_head != head:
            self._leader.check()
            self.store.note_head(head)
        self._checkpoint = self.store.checkpoint()
        return SyncResult(
            from_block=first,
            to_block=start - 1,
            chain_head=head,
            blocks=max(0, start - first),
            events=events,
            ranges=ranges,
            seconds=time.monotonic() - started,
            reorg=reorg,
        )

    def _fetch_ahead(
        self, start: int, head: int, keep_from: int, checkpoint: BlockRef | None
    ) -> Generator[FetchedRange, None, None]:
        """Ranges `start..head` in order, fetched ahead of the apply: by a forked process when at least
        `process_min_blocks` blocks are to be fetched (catch-up: both cores work), else by a thread."""
        if head - start + 1 >= self.process_min_blocks:
            url = self.rpc.url

            def fetch_in_child(at: int, previous: BlockRef | None) -> FetchedRange:
                if not own:
                    own.append(JsonRpcClient([url], timeout=CHILD_RPC_TIMEOUT))
                return fetch_range(own[0], self.decoder, at, head, self.sizer, keep_from=keep_from, checkpoint=previous)

            own: list[JsonRpcClient] = []  # the child's own client, made in the child
            return fetch_ahead_in_process(fetch_in_child, start, head, checkpoint, FETCH_AHEAD)

        def fetch(at: int, previous: BlockRef | None) -> FetchedRange:
            return fetch_range(self.rpc, self.decoder, at, head, self.sizer, keep_from=keep_from, checkpoint=previous)

        return fetch_ahead_in_thread(fetch, start, head, checkpoint, FETCH_AHEAD)

    def _check_reorg(self) -> ReorgInfo | None:
        """Rewind to the common ancestor if the checkpoint's block is no longer on the chain."""
        checkpoint = self.store.checkpoint()
        if checkpoint is None:
            return None
        try:
            current = fetch_blocks(self.rpc, [checkpoint.block_number])[checkpoint.block_number]
        except ChainMovedError:  # the chain is now shorter than the checkpoint
            current = None
        if current is not None and current["hash"] == checkpoint.block_hash:
            return None
        ancestor = find_common_ancestor(self.rpc, self.store.recent_blocks())
        if ancestor is None:
            raise ReorgTooDeepError(
                f"block {checkpoint.block_number} changed and no stored block hash (finality depth "
                f"{self.finality_depth}) is on the chain any more: rebuild the mirror"
            )
        self._leader.check()
        restored = self.store.rewind(ancestor.number)
        depth = checkpoint.block_number - ancestor.number
        log.warning("reorg: rewound %d blocks to %d (%d rows restored)", depth, ancestor.number, restored)
        self._checkpoint = None
        return ReorgInfo(checkpoint.block_number, ancestor.number, depth, restored)

    def _apply(self, fetched: FetchedRange, head: int, keep_from: int) -> None:
        """Apply one fetched range in one transaction: rows, block hashes, checkpoint."""
        self._leader.check()  # the lock's session may have ended since the last range: never write without it
        journal_from = keep_from if fetched.end >= keep_from else None
        with self.store.batch(journal_from) as batch:
            batch.block_times = fetched.block_times
            batch.senders = fetched.senders
            wanted: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
            for item in fetched.logs:
                prefetch = PREFETCH.get(item.key)
                if prefetch is not None:
                    table_name, key = prefetch(item)
                    wanted[table_name].append(key)
            for table_name, keys in wanted.items():
                batch.prefetch(table_name, keys)
            for item in fetched.logs:
                handler = HANDLERS.get(item.key)
                if handler is None:
                    continue
                batch.block_number = item.block_number
                try:
                    handler(item, batch)
                except (KeyError, ValueError) as exc:
                    raise HandlerError(f"{item.key} at block {item.block_number} log {item.log_index}: {exc}") from exc
            self.store.finish_range(batch, fetched.recent, fetched.end_block, head, keep_from)

    # ------------------------------------------------------------ loops

    def run(self, stop: threading.Event) -> None:
        """Sync every `poll_seconds` until `stop` is set; retry retryable errors with backoff, raise fatal ones.

        Holds the leader lock while it runs; without it, stands by and tries again every `poll_seconds`. The lock
        is released when `run` returns, so a standby takes over at once.
        """
        self._stay_leader = True
        try:
            self._run(stop)
        finally:
            with self._lock:
                self._stay_leader = False
                self._leader.release()

    def _run(self, stop: threading.Event) -> None:
        backoff = self.poll_seconds
        while not stop.is_set():
            try:
                self.sync_once()
                backoff = self.poll_seconds
            except NotLeaderError:
                backoff = self.poll_seconds
            except Exception as exc:
                if not is_retryable(exc):
                    log.error("indexer stopped: %s", exc)
                    raise
                log.warning("indexer sync failed, retrying in %.1f s: %s", backoff, exc)
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            stop.wait(self.poll_seconds)

    def schedule(self, scheduler: BaseScheduler) -> None:
        """Add a `sync_once` job to an APScheduler scheduler (one instance at a time, missed runs coalesced).

        A fatal error pauses the job (see `status`); retryable ones are retried at the next interval. The job keeps
        the leader lock between runs, or stands by while another indexer holds it; `close` releases it.
        """
        self._stay_leader = True

        def job() -> None:
            try:
                self.sync_once()
            except NotLeaderError:
                return  # standing by: the next run tries the lock again
            except Exception as exc:
                if is_retryable(exc):
                    log.warning("indexer sync failed, retrying next interval: %s", exc)
                    return
                log.error("indexer paused: %s", exc)
                scheduler.pause_job(JOB_ID)

        scheduler.add_job(
            job,
            "interval",
            seconds=self.poll_seconds,
            id=JOB_ID,
            max_instances=1,
            coalesce=True,
            replace_existing=True,
            next_run_time=datetime.now(UTC),  # first sync at once, not after one interval
        )
