"""The indexer's leader lock: at most one indexer writes a database's mirror, whatever runs.

Why: an indexer reads its checkpoint, fetches the next blocks' logs and applies them with the new checkpoint in
one transaction. Two indexers on one database would apply the same range twice (history rows twice, key
failures) and interleave reorg rewinds. Several `dirchain serve` processes (each runs an indexer unless
DIRCHAIN_RUN_INDEXER_IN_API=false) or several `dirchain indexer run` are therefore safe only if one of them
writes: each indexer takes this lock before it writes, the holder is the *leader*, the others *stand by* and
try again every poll, taking over when the leader stops, dies (SIGKILL too) or loses its lock.

- PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`, key `LEADER_LOCK_KEY`) held on one
  connection of its own (NullPool, autocommit: never a transaction left open) for the indexer's life. The server
  releases it when that session ends: the process died, the connection dropped, or the server restarted. So the
  leader checks, before each write, that its session still holds the lock (`check`); if not, another indexer
  may be writing already, so it stops and competes again (`acquire`). The session's `application_name` names
  the holder's host and pid, for operators. Advisory locks are per database: one key serves every deployment.
- SQLite file: `flock` on `<database>.indexer.lock` beside the file (only processes of one host share a
  SQLite file); the kernel releases it when the process dies. A forked child (the catch-up fetcher) closes its
  copy of the descriptor at once, so a killed leader's child cannot keep holding the lock.
- SQLite in memory: private to its process; no lock, always the leader.

    NotLeaderError (IndexerRetryableError)   another indexer holds the lock: do not write, try again later
    └── LeadershipLostError                  the lock was held and is gone (session ended, file replaced)
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import weakref
import zlib
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import URL, Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from indexer.errors import IndexerRetryableError

__all__ = [
    "LEADER_LOCK_KEY",
    "LEADER_LOCK_NAME",
    "LeaderLock",
    "LeadershipLostError",
    "NotLeaderError",
    "leader_lock",
]

log = logging.getLogger(__name__)

LEADER_LOCK_NAME = "dirchain indexer leader"
LEADER_LOCK_KEY = zlib.crc32(LEADER_LOCK_NAME.encode())  # the advisory lock's key (pg_locks: classid 0, objid key)
# a leader must learn within seconds that its lock session is dead: libpq's own timeouts, not the kernel's defaults
_PG_CONNECT_ARGS = {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
                    "keepalives_count": 3, "tcp_user_timeout": 10_000}  # fmt: skip
_HOLDS_LOCK = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted"
    " AND classid = 0 AND objid = :key AND objsubid = 1"
)


class NotLeaderError(IndexerRetryableError):
    """Another indexer holds the leader lock of this database: this one must not write (try again later)."""


class LeadershipLostError(NotLeaderError):
    """The leader lock this indexer held is gone (its database session ended): stop writing, compete again."""


class LeaderLock(Protocol):
    """What the indexer needs of a leader lock, on any backend."""

    @property
    def held(self) -> bool:
        """Whether this lock was held at the last `acquire` or `check` (no round trip)."""

    @property
    def where(self) -> str:
        """The lock, for messages (no password)."""

    def acquire(self) -> bool:
        """Hold the lock without waiting: True if held now (checked if it was held, else just taken)."""

    def check(self) -> None:
        """Raise `LeadershipLostError` unless the lock is still held (called before every write)."""

    def release(self) -> None:
        """Let the lock go (nothing if not held); a standby takes it at its next try."""


class MemoryLock:
    """An in-memory SQLite database: nothing is shared, so nothing to lock."""

    held = True
    where = "an in-memory database (no lock)"

    def acquire(self) -> bool:
        return True

    def check(self) -> None:
        return None

    def release(self) -> None:
        return None


_forked_away: weakref.WeakSet[FileLock] = weakref.WeakSet()


def _close_in_child() -> None:
    """In a forked child: close the inherited lock descriptors (the parent's lock stays the parent's)."""
    for lock in list(_forked_away):
        lock.forget()


os.register_at_fork(after_in_child=_close_in_child)


class FileLock:
    """`flock` on a file beside the SQLite database, held while its descriptor is open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    @property
    def where(self) -> str:
        return str(self.path)

    def acquire(self) -> bool:
        if self._handle is not None:
            try:
                self.check()
                return True
            except LeadershipLostError:
                pass
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._handle = handle
        _forked_away.add(self)
        return True

    def check(self) -> None:
        if self._handle is None:
            raise LeadershipLostError(f"the indexer leader lock {self.path} is not held")
        try:
            same = os.path.samestat(os.fstat(self._handle.fileno()), os.stat(self.path))
        except FileNotFoundError:
            same = False
        if not same:  # the file was deleted or replaced: a newcomer locks the new file, so ours protects nothing
            self.forget()
            raise LeadershipLostError(f"the indexer leader lock file {self.path} was removed or replaced")

    def release(self) -> None:
        self.forget()  # closing the descriptor releases the flock

    def forget(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        _forked_away.discard(self)


class AdvisoryLock:
    """A session-level PostgreSQL advisory lock on a connection of its own."""

    def __init__(self, url: URL) -> None:
        name = f"dirchain-indexer {socket.gethostname()}:{os.getpid()}"[:63]  # NAMEDATALEN - 1
        self._engine: Engine = create_engine(
            url, poolclass=NullPool, connect_args={**_PG_CONNECT_ARGS, "application_name": name}
        )
        self._conn: Connection | None = None
        self._held = False
        self._where = f"advisory lock {LEADER_LOCK_KEY} on {url.render_as_string(hide_password=True)}"

    @property
    def held(self) -> bool:
        return self._held

    @property
    def where(self) -> str:
        return self._where

    def acquire(self) -> bool:
        if self._held:
            try:
                self.check()
                return True
            except LeadershipLostError as exc:
                log.warning("%s; taking it again if free", exc)
        kept = self._conn is not None
        try:
            return self._try_lock()
        except DBAPIError as exc:
            if not (kept and exc.connection_invalidated):
                raise
            # a standby's kept connection ended with its session (a server restart): once more on a new one
            return self._try_lock()

    def _try_lock(self) -> bool:
        if self._conn is None:  # raises a retryable DBAPIError while the database is out of reach
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = self._conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LEADER_LOCK_KEY}).scalar()
        except DBAPIError:
            self._drop()
            raise
        self._held = bool(taken)
        return self._held

    def check(self) -> None:
        if not self._held or self._conn is None:
            raise LeadershipLostError(f"the indexer leader lock ({self._where}) is not held")
        try:
            holds = self._conn.execute(_HOLDS_LOCK, {"key": LEADER_LOCK_KEY}).scalar()
        except DBAPIError as exc:
            self._drop()
            raise LeadershipLostError(f"the indexer leader lock's database session ended ({self._where})") from exc
        if not holds:
            self._drop()
            raise LeadershipLostError(f"the indexer leader lock is no longer held by its session ({self._where})")

    def release(self) -> None:
        if self._conn is not None and self._held:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LEADER_LOCK_KEY})
            except DBAPIError:
                pass  # the session is gone, and the lock with it
        self._drop()
        self._engine.dispose()

    def _drop(self) -> None:
        self._held = False
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()  # ending the session releases any lock it still held
            except DBAPIError:
                pass


def leader_lock(database_url: str | URL) -> LeaderLock:
    """The leader lock of the mirror at `database_url` (see the module docstring for each backend)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return AdvisoryLock(url)
    database = url.database or ""
    if database.startswith("file:"):  # a URI (`?uri=true`): its parameters are the URL's query
        database = "" if url.query.get("mode") == "memory" else database[5:]
    if not database or database == ":memory:":
        return MemoryLock()
    return FileLock(Path(database + ".indexer.lock"))
